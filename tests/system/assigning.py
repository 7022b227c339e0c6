"""Helpers of the system tests: a unit of a test module's own added to the stack's
configuration, case actions posted by a unit's OA system, reading duban.cases and
duban.dlq, and the workload recounted from duban.cases."""
import base64
import collections
import json
import os
import signal
import subprocess
import time

import requests

from conftest import ROOT, UNIT_OA, problem_event, wait_until


def wait_log(stack, service, text, since=0, timeout=15):
    """Whether 'text' appears in the service's log after offset 'since' within
    'timeout' seconds (the callers assert, showing the log)."""
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if text in stack.log(service)[since:]:
            return True
        time.sleep(0.05)
    return False


# How long a reload may take: a service rebuilding its Redis state from the topics may
# answer SIGHUP only once that is done.
RELOAD_S = 60


def reload_all(stack):
    """SIGHUP to every service that reads directory.json or rules.json; waits until each
    says it reloaded, or fails with what it logged meanwhile and its /readyz."""
    for svc in ("assignment", "notification"):
        since = len(stack.log(svc))
        os.kill(stack.pid(svc), signal.SIGHUP)
        if not wait_log(stack, svc, "configuration reloaded", since, timeout=RELOAD_S):
            try:
                ready = stack.get(svc, "/readyz", token=None).text
            except requests.RequestException as e:
                ready = repr(e)
            raise AssertionError(f"{svc} did not reload within {RELOAD_S} s; /readyz: "
                                 f"{ready}; its log since the SIGHUP:\n"
                                 f"{stack.log(svc)[since:][-4000:]}")


# Each module's own unit has its own two digits in its officers' phone numbers.
MODULE_CODES = {"AS": 11, "AC": 12, "DL": 13, "SC": 14, "IC": 15, "NT": 16, "NF": 17, "RF": 18, "OB": 19, "RB": 20, "KF": 21, "CK": 22}


def subject_of(prefix, strategy="least_loaded"):
    """The subject unit whose cases OwnUnit(stack, prefix) routes to its unit by
    'strategy'."""
    return f"U-{prefix}-{'LL' if strategy == 'least_loaded' else 'RR'}"


class OwnUnit:
    """A unit of one test module's own, so that what the module counts (open cases per
    officer, SMS per recipient) is what the module itself did, whatever ran before:
    U-<prefix> with 'handlers' handlers O-<prefix>-00... (no caps, each with a phone
    and an address of its own), and two rules in front that send cases about
    subject_of(prefix, strategy) there. Written into the stack's copy of the
    configuration and reloaded; close() restores the configuration as it was."""

    def __init__(self, stack, prefix, handlers=8, head=None):
        code = MODULE_CODES[prefix]
        self.stack = stack
        self.unit = f"U-{prefix}"
        self.officers = [f"O-{prefix}-{i:02d}" for i in range(handlers)]
        self.phones = {o: f"+8613910{code:02d}{i:04d}" for i, o in enumerate(self.officers)}
        self.emails = {o: f"{prefix.lower()}{i}@duban.example"
                       for i, o in enumerate(self.officers)}
        self.subjects = {s: subject_of(prefix, s) for s in ("least_loaded", "round_robin")}
        self.paths = {name: os.path.join(stack.config_dir, name)
                      for name in ("directory.json", "rules.json")}
        self.saved = {name: open(p, encoding="utf-8").read()
                      for name, p in self.paths.items()}
        directory = json.loads(self.saved["directory.json"])
        rules = json.loads(self.saved["rules.json"])
        assert not any(u["id"] == self.unit for u in directory["units"]), self.unit
        own = {"id": self.unit, "name": f"测试组{prefix}", "kind": "inspection_group"}
        if head is not None:  # the index of the officer who heads the unit
            own["head"] = self.officers[head]
        directory["units"].append(own)
        for i, oid in enumerate(self.officers):
            directory["officers"].append({
                "id": oid, "name": f"测试{prefix}{i}", "unit": self.unit,
                "roles": ["handler"], "phone": self.phones[oid],
                "email": self.emails[oid], "active": True})
        rules["rules"][:0] = [
            {"id": f"R-{prefix}-{'LL' if s == 'least_loaded' else 'RR'}",
             "match": {"subject_unit": [subject]}, "unit": self.unit, "strategy": s}
            for s, subject in self.subjects.items()]
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


def dead_letters(stack, marker):
    """The records of duban.dlq whose original value holds 'marker', decoded."""
    found = []
    for _, _, value in records(stack, "duban.dlq"):
        try:
            d = json.loads(value)
            original = base64.b64decode(d["original"]["value_b64"] or "")
        except (ValueError, KeyError, TypeError):
            continue
        if marker.encode() in original:
            found.append(d)
    return found


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
    the events it was made from, or fails with both."""
    seen = {}

    def same():
        seen["events"] = case_events(stack)
        seen["expected"] = recount_known(stack, seen["events"])
        seen["got"] = workloads(stack, units(stack))
        return seen["got"] == seen["expected"]
    wait_until(same, timeout, "workloads equal to the recount of duban.cases", step=0.3,
               show=lambda: f"workloads {seen['got']}, recount {seen['expected']}")
    return seen["expected"], seen["events"]


def directory(stack):
    with open(os.path.join(stack.config_dir, "directory.json"), encoding="utf-8") as f:
        return json.load(f)


def units(stack):
    return [u["id"] for u in directory(stack)["units"]]


def recount_known(stack, events):
    """recount(events) for the officers and units directory.json has now: the workload
    endpoint answers only for those, and the units other modules added and removed
    again still have open cases on duban.cases."""
    d = directory(stack)
    officers = {o["id"] for o in d["officers"]}
    unit_ids = {u["id"] for u in d["units"]}
    open_cases, manual = recount(events)
    return (collections.Counter({o: n for o, n in open_cases.items() if o in officers}),
            collections.Counter({u: n for u, n in manual.items() if u in unit_ids}))


def kafka_tool(*args, timeout=60):
    """Runs a Kafka command-line tool class from deploy/kafka/lib."""
    cmd = ["java", "-Xmx128m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
           "-Dlog4j2.configurationFile=" + os.path.join(ROOT, "deploy", "local",
                                                       "log4j2-tools.properties"),
           "-cp", os.path.join(ROOT, "deploy", "kafka", "lib", "*"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


GROUP_TOOL = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"


def group_lag(stack, group="duban-assignment", topic="duban.cases"):
    """Total lag of the group on the topic, or None when the tool cannot tell. A
    partition without a committed offset lags by all its records (the tool shows '-')."""
    out = kafka_tool(GROUP_TOOL, "--bootstrap-server", f"127.0.0.1:{stack.ports['kafka']}",
                     "--describe", "--group", group)
    total, seen = 0, False
    for line in out.stdout.splitlines():
        cols = line.split()
        if len(cols) >= 6 and cols[1] == topic and cols[4].isdigit():
            seen = True
            current = int(cols[3]) if cols[3].isdigit() else 0
            total += max(0, int(cols[4]) - current)
    return total if seen else None


def wait_no_lag(stack, group="duban-assignment", topic="duban.cases", timeout=120):
    """Waits until the group has committed every record of the topic (positive evidence
    that it has handled all of them); fails with the last lag seen."""
    last = []

    def caught_up():
        last[:] = [group_lag(stack, group, topic)]
        return last[0] == 0
    wait_until(caught_up, timeout, f"{group} caught up with {topic}", step=1,
               show=lambda: f"lag {last[0] if last else '-'}")


def metric(port, name):
    """The sum of every series of a counter of the service listening on 'port'."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))
