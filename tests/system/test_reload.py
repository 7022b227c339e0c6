"""SIGHUP reloads the configuration; an invalid file is refused and the running
configuration stays in force."""
import json
import os
import signal

from assigning import wait_log
from conftest import problem_event


def test_bad_rules_are_refused_and_good_ones_applied(stack):
    path = os.path.join(stack.config_dir, "rules.json")
    original = open(path, encoding="utf-8").read()
    pid = stack.pid("assignment")
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write('{"rules": [{"id": "R-X", "match": {}, "unit": "U-CMO"}]}')
        since = len(stack.log("assignment"))
        os.kill(pid, signal.SIGHUP)
        assert wait_log(stack, "assignment", "configuration reload refused", since)
        # Still routed by the running rules.
        r = stack.post_event(problem_event("reload-1"))
        case = r.json()["case_id"]
        a = stack.wait_for("assignment", f"/v1/assignments/{case}").json()
        assert a["rule"] == "R-STREETS"

        # Now a valid file that sends everything to the 3rd inspection group.
        rules = {"rules": [{"id": "R-ALL", "match": {}, "unit": "U-IG-03",
                            "strategy": "round_robin"}], "fallback_unit": "U-CMO"}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(rules, f)
        since = len(stack.log("assignment"))
        os.kill(pid, signal.SIGHUP)
        assert wait_log(stack, "assignment", "configuration reloaded", since)
        r = stack.post_event(problem_event("reload-2"))
        case = r.json()["case_id"]
        a = stack.wait_for("assignment", f"/v1/assignments/{case}").json()
        assert a["rule"] == "R-ALL" and a["unit"] == "U-IG-03"
    finally:
        with open(path, "w", encoding="utf-8") as f:
            f.write(original)
        since = len(stack.log("assignment"))
        os.kill(pid, signal.SIGHUP)
        wait_log(stack, "assignment", "configuration reloaded", since)
