"""Assignment over the real stack: routing by rules.json, both strategies, recusal,
returns, closing, the workload endpoint and metrics, dead letters that never block a
partition, a redelivery of everything that changes nothing, the workload rebuilt after
Redis lost it, and a configuration refused for a dangling reference."""
import json
import os
import signal

import pytest

from assigning import (GROUP_TOOL, OwnUnit, assigned_copies, assignment, case_events,
                       dead_letters, kafka_tool, post_action, post_case, settled, units,
                       wait_log, wait_no_lag, workloads)
from conftest import wait_until


def metrics_show(stack, text, timeout=10):
    r = stack.wait_for("assignment", "/metrics", pred=lambda r: text in r.text,
                       timeout=timeout)
    return text in r.text


@pytest.fixture(scope="module")
def load_unit(stack):
    """The module's own unit (U-AS): its officers' counts are this module's cases."""
    unit = OwnUnit(stack, "AS")
    yield unit
    unit.close()


def test_first_rule_routes_and_the_only_handler_gets_it(stack):
    # R-CLUES comes first: a clue about a street office goes to the case management
    # office, not to the street rule's group; QIAN is its only handler.
    case = post_case(stack, "as-clue-1", "U-STREET-07", kind="clue")
    a = assignment(stack, case)
    assert (a["unit"], a["rule"], a["officer"]) == ("U-CMO", "R-CLUES", "O-CMO-QIAN")
    assert a["strategy"] == "least_loaded" and a["cause"] == "received"
    assert a["attempt"] == 1 and a["needs_manual"] is False and a["recused"] == []
    assert a["input"] == {"type": "duban.case.received", "source": "/duban/intake",
                          "id": f"{case}.received"}
    assert a["event_id"] == f"{case}.assigned.1" and a["open"] is True
    # The same decision is on duban.cases, once (it is written a moment after the
    # answer is there).
    copies = wait_until(lambda: assigned_copies(case_events(stack)).get(f"{case}.assigned.1"),
                        30, "the assignment on duban.cases")
    assert len(copies) == 1
    assert copies[0]["officer"] == "O-CMO-QIAN" and copies[0]["rule"] == "R-CLUES"


def test_conflicted_officer_is_recused_and_the_subject_unit_never_handles(stack):
    # R-BUREAUS sends bureau cases to the 3rd group; ZHOU declared a conflict with the
    # market bureau and WU is inactive, so LI is the only one left.
    case = post_case(stack, "as-mkt-1", "U-BUREAU-MKT")
    a = assignment(stack, case)
    assert (a["unit"], a["rule"], a["strategy"]) == ("U-IG-03", "R-BUREAUS", "round_robin")
    assert a["officer"] == "O-IG03-LI"
    assert a["recused"] == [{"officer": "O-IG03-ZHOU", "reason": "conflict"}]
    # Counted once the event is published, a moment after the answer is there.
    assert metrics_show(stack, 'duban_assignment_recusals_total{rule="R-BUREAUS",'
                        'unit="U-IG-03",reason="conflict"}')
    assert metrics_show(stack, 'duban_assignment_total{rule="R-BUREAUS",unit="U-IG-03",'
                        'outcome="assigned"}')


def test_round_robin_alternates_between_eligible_handlers(stack):
    # About the housing bureau LI and ZHOU are both eligible (WU is inactive and takes
    # no turn): consecutive cases alternate between them.
    seen = []
    for i in range(4):
        case = post_case(stack, f"as-rr-{i}", "U-BUREAU-HOUSING")
        seen.append(assignment(stack, case)["officer"])
    assert set(seen) == {"O-IG03-LI", "O-IG03-ZHOU"}, seen
    assert seen[0] != seen[1] and seen[0] == seen[2] and seen[1] == seen[3], seen


def test_least_loaded_spreads_cases_evenly(stack, load_unit):
    before, _ = workloads(stack, [load_unit.unit])
    for i in range(16):
        assignment(stack, post_case(stack, f"as-ll-{i}", load_unit.subjects["least_loaded"]))
    after, _ = workloads(stack, [load_unit.unit])
    added = [after[o] - before[o] for o in load_unit.officers]
    counts = [after[o] for o in load_unit.officers]
    assert sum(added) == 16
    # Nobody is given a case while a colleague has fewer.
    assert max(counts) - min(counts) <= 1, counts


def test_returns_reassign_never_to_a_returner_and_the_third_needs_manual(stack,
                                                                          load_unit):
    case = post_case(stack, "as-ret-1", load_unit.subjects["round_robin"])
    first = assignment(stack, case)
    returners = [first["officer"]]
    manual_before = workloads(stack, [load_unit.unit])[1][load_unit.unit]
    for n in (1, 2):
        post_action(stack, f"as-ret-1-r{n}", "returned", case, reason_code="wrong_unit",
                    reason="不属于本组职责")
        a = assignment(stack, case, attempt=n + 1)
        assert a["cause"] == "returned" and a["reason_code"] == "wrong_unit"
        assert a["returns"] == n and a["event_id"] == f"{case}.assigned.{n + 1}"
        assert a["previous"] == {"unit": load_unit.unit, "officer": returners[-1]}
        assert a["officer"] not in returners and a["officer"] in load_unit.officers
        assert sorted(a["excluded"]) == sorted(returners)
        assert a["input"]["id"] == f"as-ret-1-r{n}"
        returners.append(a["officer"])
    # Five officers are still free, but a case returned three times goes to a person.
    post_action(stack, "as-ret-1-r3", "returned", case, reason_code="other", reason="再退")
    a = assignment(stack, case, attempt=4)
    assert a["needs_manual"] is True and a["officer"] is None
    assert a["unit"] == load_unit.unit and a["returns"] == 3
    officers, manual = workloads(stack, [load_unit.unit])
    assert manual[load_unit.unit] == manual_before + 1
    # Needs-manual is in the metrics too.
    assert metrics_show(stack, f'unit="{load_unit.unit}",outcome="needs_manual"')
    assert metrics_show(stack, 'duban_assignment_returns_total{reason_code="wrong_unit"}')


def test_a_return_never_goes_to_someone_recused(stack):
    # In the 5th group WANG declared a conflict with U-STREET-07; ZHENG and FENG are
    # the others. After both returned it nobody is eligible: needs_manual, not WANG.
    case = post_case(stack, "as-ret-2", "U-STREET-07")
    a = assignment(stack, case)
    assert a["officer"] in ("O-IG05-ZHENG", "O-IG05-FENG")
    post_action(stack, "as-ret-2-r1", "returned", case, reason_code="conflict_of_interest",
                reason="本人回避")
    b = assignment(stack, case, attempt=2)
    assert b["officer"] in ("O-IG05-ZHENG", "O-IG05-FENG")
    assert b["officer"] != a["officer"]
    assert {"officer": "O-IG05-WANG", "reason": "conflict"} in b["recused"]
    post_action(stack, "as-ret-2-r2", "returned", case, reason_code="wrong_unit",
                reason="不属于本组")
    c = assignment(stack, case, attempt=3)
    assert c["officer"] is None and c["needs_manual"] is True
    assert {"officer": "O-IG05-WANG", "reason": "conflict"} in c["recused"]


def test_closed_and_cancelled_cases_leave_the_workload(stack, load_unit):
    a = assignment(stack, post_case(stack, "as-close-1", load_unit.subjects["least_loaded"]))
    b = assignment(stack, post_case(stack, "as-close-2", load_unit.subjects["least_loaded"]))
    before, _ = workloads(stack, [load_unit.unit])
    post_action(stack, "as-close-1-c", "cancelled", a["case_id"], reason="重复")
    post_action(stack, "as-close-2-c", "closed", b["case_id"])
    expected = before.copy()
    expected[a["officer"]] -= 1
    expected[b["officer"]] -= 1
    wait_until(lambda: workloads(stack, [load_unit.unit])[0] == +expected, 30,
               "the workload without the two cases",
               show=lambda: f"{workloads(stack, [load_unit.unit])[0]} != {+expected}")
    assert assignment(stack, a["case_id"])["open"] is False
    # A return of a closed case is refused (dead-lettered), not reassigned.
    post_action(stack, "as-close-1-r", "returned", a["case_id"], reason_code="other",
                reason="x")
    assert wait_dlq(stack, "as-close-1-r", lambda d: d["reason"] == "conflict")
    assert assignment(stack, a["case_id"])["attempt"] == 1


def test_workload_endpoint(stack):
    r = stack.get("assignment", "/v1/units/U-IG-03/workload")
    assert r.status_code == 200
    body = r.json()
    assert body["unit"] == "U-IG-03"
    by_id = {o["officer"]: o for o in body["officers"]}
    assert set(by_id) == {"O-IG03-LI", "O-IG03-ZHOU", "O-IG03-WU"}
    assert by_id["O-IG03-WU"]["active"] is False and by_id["O-IG03-LI"]["max_open"] == 15
    assert body["open"] == sum(o["open"] for o in body["officers"]) >= 5
    assert stack.get("assignment", "/v1/units/U-NOWHERE/workload").status_code == 404
    assert stack.get("assignment", "/v1/units/U-IG-03/workload",
                     token=None).status_code == 401


def wait_dlq(stack, marker, pred=lambda d: True, timeout=30):
    """A dead letter whose original value holds 'marker' and that 'pred' accepts (the
    other consumers of duban.cases may dead-letter the same record for their reasons)."""
    return wait_until(lambda: [d for d in dead_letters(stack, marker) if pred(d)],
                      timeout, f"a dead letter for {marker}", step=0.3,
                      show=lambda: dead_letters(stack, marker))[0]


def test_bad_input_is_dead_lettered_and_never_blocks(stack):
    known = assignment(stack, post_case(stack, "as-dlq-known", "U-BUREAU-HOUSING"))
    case = known["case_id"]
    # Written straight to duban.cases, as no service would: marked, so that tests that
    # check what the services wrote can tell them apart. Each is JSON with a type, so
    # that readers of the whole topic keep working.
    ce = [("content-type", "application/cloudevents+json"), ("duban-test", "bad-input")]

    def event(eid, type_, data, specversion="1.0"):
        return json.dumps({"specversion": specversion, "id": eid, "source": "/gov/unit-oa",
                           "type": type_, "data": data})

    # Not a CloudEvent 1.0: malformed, whatever else it says.
    stack.produce("duban.cases", event("as-bad-json", "duban.case.returned",
                                       {"case_id": case, "reason": "r",
                                        "reason_code": "other"}, specversion="0.3"),
                  key=case, headers=ce)
    stack.produce("duban.cases", event("as-bad-noreason", "duban.case.returned",
                                       {"case_id": case, "reason": "no code"}),
                  key=case, headers=ce)
    stack.produce("duban.cases", event("as-bad-unknown", "duban.case.returned",
                                       {"case_id": "DB-NO-SUCH-CASE", "reason": "r",
                                        "reason_code": "other"}),
                  key="DB-NO-SUCH-CASE", headers=ce)
    stack.produce("duban.cases", event("as-bad-close", "duban.case.closed",
                                       {"case_id": "DB-NO-SUCH-CASE"}),
                  key="DB-NO-SUCH-CASE", headers=ce)
    # Behind them on the same partition, a good return is still taken.
    post_action(stack, "as-dlq-good-return", "returned", case, reason_code="other",
                reason="behind the bad ones")
    a = assignment(stack, case, attempt=2)
    assert a["officer"] != known["officer"]

    assert wait_dlq(stack, "as-bad-json", lambda d: d["reason"] == "malformed")
    d = wait_dlq(stack, "as-bad-noreason", lambda d: d["reason"] == "schema_violation")
    assert "/reason_code" in d["detail"] or "reason_code" in d["detail"], d
    assert d["origin"]["topic"] == "duban.cases"
    wait_dlq(stack, "as-bad-unknown", lambda d: d["reason"] == "not_found"
             and "return of case DB-NO-SUCH-CASE" in d["detail"])
    wait_dlq(stack, "as-bad-close", lambda d: d["reason"] == "not_found"
             and "assignment does not know" in d["detail"])
    # The return without a reason code changed nothing: one return counted.
    assert a["returns"] == 1


def test_redelivering_everything_changes_nothing(stack, load_unit):
    """The consumer group is rewound to the beginning of duban.cases: every input comes
    again, and the same assignments come out (none published twice), with the same
    workloads."""
    case = post_case(stack, "as-again-1", load_unit.subjects["round_robin"])
    assignment(stack, case)
    post_action(stack, "as-again-1-r", "returned", case, reason_code="other", reason="x")
    assignment(stack, case, attempt=2)
    before_load, events = settled(stack)
    assert workloads(stack, units(stack)) == before_load
    before_copies = assigned_copies(events)
    assert f"{case}.assigned.2" in before_copies
    stack.kill("assignment", signal.SIGTERM)
    out = kafka_tool(GROUP_TOOL, "--bootstrap-server", f"127.0.0.1:{stack.ports['kafka']}",
                     "--reset-offsets", "--to-earliest", "--execute", "--group",
                     "duban-assignment", "--topic", "duban.cases")
    assert out.returncode == 0, out.stdout + out.stderr
    stack.start_missing()
    wait_no_lag(stack)
    after_copies = assigned_copies(case_events(stack))
    assert after_copies == before_copies
    assert workloads(stack, units(stack)) == before_load


def test_workload_is_rebuilt_after_redis_lost_it(stack, load_unit):
    some_case = post_case(stack, "as-rebuild-1", load_unit.subjects["least_loaded"])
    answer = assignment(stack, some_case)
    expected, _ = settled(stack)
    assert workloads(stack, units(stack)) == expected
    # Everything assignment keeps in Redis goes.
    keys = stack.redis("--scan", "--pattern", "duban:assignment*").split() + \
        stack.redis("--scan", "--pattern", "duban:workload:*").split()
    assert keys
    since = len(stack.log("assignment"))
    for i in range(0, len(keys), 200):
        stack.redis("DEL", *keys[i:i + 200])
    # Not ready until rebuilt; then the same workloads and answers.
    r = stack.wait_for("assignment", "/readyz", pred=lambda r: r.status_code == 503,
                       timeout=10)
    assert "rebuild" in r.json()["error"]["message"]
    assert stack.get("assignment", "/v1/units/U-IG-03/workload").status_code == 503
    r = stack.wait_for("assignment", "/readyz", timeout=60)
    assert r.status_code == 200, r.text
    assert wait_log(stack, "assignment", "rebuilt from duban.cases", since)
    assert workloads(stack, units(stack)) == expected
    assert assignment(stack, some_case) == answer
    # A return after the rebuild still knows who returned what before.
    post_action(stack, "as-rebuilt-r", "returned", some_case, reason_code="other",
                reason="after the rebuild")
    a = assignment(stack, some_case, attempt=answer["attempt"] + 1)
    assert a["officer"] != answer["officer"]
    assert answer["officer"] in a["excluded"]


def test_rules_naming_a_missing_unit_are_refused(stack):
    path = os.path.join(stack.config_dir, "rules.json")
    original = open(path, encoding="utf-8").read()
    rules = json.loads(original)
    rules["rules"].insert(0, {"id": "R-GHOST", "match": {}, "unit": "U-GHOST",
                              "strategy": "least_loaded"})
    since = len(stack.log("assignment"))
    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(rules, f)
        os.kill(stack.pid("assignment"), signal.SIGHUP)
        assert wait_log(stack, "assignment", "configuration reload refused", since)
        log = stack.log("assignment")[since:]
        assert "rules.json: /rules/0/unit: no unit 'U-GHOST' in directory.json" in log
        # The running rules still route.
        a = assignment(stack, post_case(stack, "as-ghost-1", "U-BUREAU-HOUSING"))
        assert a["rule"] == "R-BUREAUS"
    finally:
        with open(path, "w", encoding="utf-8") as f:
            f.write(original)
        since = len(stack.log("assignment"))
        os.kill(stack.pid("assignment"), signal.SIGHUP)
        wait_log(stack, "assignment", "configuration reloaded", since)
