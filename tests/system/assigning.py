"""Helpers of the assignment system tests: a load-test unit added to the stack's
configuration, case actions posted by a unit's OA system, reading duban.cases and
duban.dlq, and the workload recounted from duban.cases."""
import collections
import json
import os
import signal
import subprocess
import time

import requests

from conftest import PORTS, ROOT, UNIT_OA, problem_event

LOAD_UNIT = "U-LOAD"
LOAD_OFFICERS = [f"O-LOAD-{i:02d}" for i in range(8)]
# Cases about these subject units go to U-LOAD, by the strategy named.
LOAD_SUBJECTS = {"least_loaded": "U-LOADTEST-LL", "round_robin": "U-LOADTEST-RR"}


def wait_log(stack, service, text, since=0, timeout=15):
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if text in stack.log(service)[since:]:
            return True
        time.sleep(0.05)
    return False


def reload_all(stack):
    """SIGHUP to every service that reads directory.json or rules.json; waits until each
    says it reloaded."""
    for svc in ("assignment", "notification"):
        since = len(stack.log(svc))
        os.kill(stack.pid(svc), signal.SIGHUP)
        assert wait_log(stack, svc, "configuration reloaded", since), \
            stack.log(svc)[since:]


class LoadUnit:
    """Adds U-LOAD (8 handlers, no caps) and two rules in front that send cases about
    LOAD_SUBJECTS there; restores the configuration on close()."""

    def __init__(self, stack):
        self.stack = stack
        self.paths = {name: os.path.join(stack.config_dir, name)
                      for name in ("directory.json", "rules.json")}
        self.saved = {name: open(p, encoding="utf-8").read()
                      for name, p in self.paths.items()}
        directory = json.loads(self.saved["directory.json"])
        rules = json.loads(self.saved["rules.json"])
        if not any(u["id"] == LOAD_UNIT for u in directory["units"]):
            directory["units"].append({"id": LOAD_UNIT, "name": "压力测试组",
                                       "kind": "inspection_group"})
            for i, oid in enumerate(LOAD_OFFICERS):
                directory["officers"].append({
                    "id": oid, "name": f"测试{i}", "unit": LOAD_UNIT,
                    "roles": ["handler"], "phone": f"+86139000000{i:02d}",
                    "email": f"load{i}@duban.example", "active": True})
            rules["rules"][:0] = [
                {"id": f"R-LOAD-{s.upper()}", "match": {"subject_unit": [subject]},
                 "unit": LOAD_UNIT, "strategy": s}
                for s, subject in LOAD_SUBJECTS.items()]
        for name, doc in (("directory.json", directory), ("rules.json", rules)):
            with open(self.paths[name], "w", encoding="utf-8") as f:
                json.dump(doc, f, ensure_ascii=False)
        reload_all(stack)

    def close(self):
        for name, text in self.saved.items():
            with open(self.paths[name], "w", encoding="utf-8") as f:
                f.write(text)
        reload_all(self.stack)


def problem(event_id, subject, kind="complaint", **data):
    d = {"kind": kind, "category": "work_style", "severity": "normal",
         "title": "测试事项", "subject": {"unit_id": subject},
         "reporter": {"anonymous": True}}
    d.update(data)
    return problem_event(event_id, data=d)


def post_case(stack, event_id, subject, **data):
    r = stack.post_event(problem(event_id, subject, **data))
    assert r.status_code == 202, r.text
    return r.json()["case_id"]


def action(event_id, type_, case_id, **data):
    return {"specversion": "1.0", "id": event_id, "source": "/gov/unit-oa",
            "type": f"duban.case.{type_}", "time": "2026-11-21T10:00:00+08:00",
            "datacontenttype": "application/json", "data": {"case_id": case_id, **data}}


def post_action(stack, event_id, type_, case_id, **data):
    r = stack.post_event(action(event_id, type_, case_id, **data), token=UNIT_OA)
    assert r.status_code == 202, r.text


def assignment(stack, case_id, attempt=1, timeout=30):
    """The query answer once the case's assignment 'attempt' is there."""
    r = stack.wait_for("assignment", f"/v1/assignments/{case_id}",
                       pred=lambda r: r.status_code == 200
                       and r.json()["attempt"] >= attempt, timeout=timeout)
    assert r.status_code == 200 and r.json()["attempt"] >= attempt, r.text
    return r.json()


def records(stack, topic):
    """Every record of a topic: (key, headers, value bytes)."""
    out = []
    for line in stack.topic(topic).split(b"\n"):
        if line:
            key, headers, value = line.split(b"\t", 2)
            out.append((key.decode(), headers.decode(), value))
    return out


def case_events(stack):
    """Every event of duban.cases that parses, in topic order per partition."""
    events = []
    for _, _, value in records(stack, "duban.cases"):
        try:
            events.append(json.loads(value))
        except ValueError:
            pass
    return events


def assigned_copies(events):
    """event id -> list of the data of every copy of that duban.case.assigned."""
    copies = collections.defaultdict(list)
    for e in events:
        if e.get("type") == "duban.case.assigned" and e.get("source") == "/duban/assignment":
            copies[e["id"]].append(e["data"])
    return copies


def recount(events):
    """Open cases per officer and per unit waiting for manual assignment, from the
    events alone: the latest assignment of each case not closed or cancelled. A close
    counts once its case was received (before it in the case's partition); the
    assignment of the case may come after it in the topic."""
    latest, received, closed = {}, set(), set()
    for e in events:
        data = e.get("data") or {}
        if e.get("type") == "duban.case.assigned" and e.get("source") == "/duban/assignment":
            known = latest.get(data["case_id"])
            if not known or known["attempt"] < data["attempt"]:
                latest[data["case_id"]] = data
        elif e.get("type") == "duban.case.received":
            received.add(data.get("case_id"))
        elif e.get("type") in ("duban.case.closed", "duban.case.cancelled"):
            if data.get("case_id") in received:
                closed.add(data["case_id"])
    officers, manual = collections.Counter(), collections.Counter()
    for case_id, data in latest.items():
        if case_id in closed:
            continue
        if data["officer"]:
            officers[data["officer"]] += 1
        else:
            manual[data["unit"]] += 1
    return officers, manual


def workloads(stack, units):
    """What GET /v1/units/{unit}/workload says: (officer -> open, unit -> manual)."""
    officers, manual = collections.Counter(), collections.Counter()
    for unit in units:
        r = stack.get("assignment", f"/v1/units/{unit}/workload")
        assert r.status_code == 200, r.text
        body = r.json()
        for o in body["officers"]:
            if o["open"]:
                officers[o["officer"]] = o["open"]
        if body["needs_manual"]:
            manual[unit] = body["needs_manual"]
    return officers, manual


def settled(stack, timeout=30):
    """Waits until the workloads equal a recount of duban.cases (an assignment is in the
    query answer a moment before its event is in the topic); returns the recount and
    the events it was made from."""
    until = time.monotonic() + timeout
    while True:
        events = case_events(stack)
        expected = recount(events)
        if workloads(stack, units(stack)) == expected or time.monotonic() > until:
            return expected, events
        time.sleep(0.3)


def units(stack):
    with open(os.path.join(stack.config_dir, "directory.json"), encoding="utf-8") as f:
        return [u["id"] for u in json.load(f)["units"]]


def kafka_tool(*args, timeout=60):
    """Runs a Kafka command-line tool class from deploy/kafka/lib."""
    cmd = ["java", "-Xmx128m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
           "-Dlog4j2.configurationFile=" + os.path.join(ROOT, "deploy", "local",
                                                       "log4j2-tools.properties"),
           "-cp", os.path.join(ROOT, "deploy", "kafka", "lib", "*"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


GROUP_TOOL = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"


def group_lag(group="duban-assignment"):
    """Total lag of the group on duban.cases, or None when the tool cannot tell."""
    out = kafka_tool(GROUP_TOOL, "--bootstrap-server", f"127.0.0.1:{PORTS['kafka']}",
                     "--describe", "--group", group)
    total, seen = 0, False
    for line in out.stdout.splitlines():
        cols = line.split()
        if len(cols) >= 6 and cols[1] == "duban.cases":
            seen = True
            total += int(cols[5]) if cols[5].isdigit() else 0
    return total if seen else None


def wait_no_lag(group="duban-assignment", timeout=90):
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if group_lag(group) == 0:
            return True
        time.sleep(1)
    return False


def metric(port, name):
    """The sum of every series of a counter of the service listening on 'port'."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))
