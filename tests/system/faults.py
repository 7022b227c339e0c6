"""The scenario every fault test of tests/system/test_faults_*.py runs: cases posted
(over HTTP and duban.inbound) by POSTERS threads from FLOW_S before a fault until FLOW_S
after it, so that some are on their way through the services when it strikes, and
actions on earlier cases while it lasts; then:
- every case intake answered 202 for (or accepted from duban.inbound) has its full
  state in all four services: intake's status "accepted", an assignment to one of the
  unit's officers, a deadline document with its timer, a notification planned;
- every action answered 202 is applied;
- nothing reached duban.dlq as "internal", and none of the module's cases at all;
- no case was received or assigned twice (two events; a copy of one event, as an
  at-least-once write again after a lost acknowledgement, is counted);
- /readyz said 503 with the reason while the fault lasted, and every service is ready
  again by itself within 60 s."""
import collections
import json
import threading
import time
import urllib.parse

import pytest
import requests

from assigning import OwnUnit, problem, subject_of
from conftest import HOTLINE, UNIT_OA, wait_until

SERVICES = ("intake", "assignment", "deadline", "notification")
READY_AGAIN_S = 60
SETTLE_S = 120  # for the backlog of the fault to pass through every service
POSTERS = 3     # threads posting cases
FLOW_S = 3      # cases flow this long before the fault and after it


def own_stack_and_unit(prefix, **unit_args):
    """The fixtures 'stack' and 'unit' of a module that runs on a stack of its own
    (conftest's own_stack) with a unit of its own there (OwnUnit(stack, prefix)):
    assign both to module globals of those names."""
    @pytest.fixture(scope="module")
    def stack(own_stack):
        return own_stack

    @pytest.fixture(scope="module")
    def unit(stack):
        u = OwnUnit(stack, prefix, **unit_args)
        yield u
        u.close()
    return stack, unit


def case_event(event_id, subject):
    """A new problem reported now (no "time": the deadlines lie ahead, so every case
    has a pending timer to check)."""
    ev = problem(event_id, subject)
    ev.pop("time", None)
    return ev


def event_status(stack, source, event_id):
    path = "/v1/events/{}/{}".format(urllib.parse.quote(source, safe=""),
                                     urllib.parse.quote(event_id, safe=""))
    return stack.get("intake", path, token=HOTLINE)


def readyz(stack, svc):
    try:
        r = stack.get(svc, "/readyz", token=None)
        return r.status_code, r.text
    except Exception as e:  # a service busy past the timeout answers nothing
        return None, repr(e)


def full_state(stack, unit, case_id):
    """What is missing of the case's state in the four services (empty when none)."""
    missing = []
    a = stack.get("assignment", f"/v1/assignments/{case_id}")
    if a.status_code != 200 or a.json().get("officer") not in unit.officers:
        missing.append(f"assignment {a.status_code} {a.text[:200]}")
    d = stack.get("deadline", f"/v1/cases/{case_id}")
    if d.status_code != 200 or not d.json().get("accept_by"):
        missing.append(f"deadline {d.status_code} {d.text[:200]}")
    else:
        keys = stack.redis("KEYS", "duban:deadline:timers:*").split()
        if not any(stack.redis("ZSCORE", key, case_id) for key in keys):
            missing.append(f"deadline timer (none in {keys}; "
                           f"accept_by {d.json().get('accept_by')})")
    n = stack.get("notification", f"/v1/notifications?case_id={case_id}")
    if n.status_code != 200 or not n.json().get("notifications"):
        missing.append(f"notification {n.status_code} {n.text[:200]}")
    return missing



def nothing_lost(stack, unit, make_fault, part, fault_s):
    """The scenario of the module docstring with one fault of 'part' ("redis" or
    "kafka"), whose /readyz reasons it collects; returns what it counted."""
    tag = f"{unit.unit}-{make_fault.__name__}-{int(time.time())}"
    subject = subject_of(unit.unit[2:])
    start_ms = int(time.time() * 1000)

    def post_case(i):
        return stack.post_event(case_event(f"{tag}-{i}", subject))

    # Cases from before the fault, to act on during it.
    before = []
    for i in range(10):
        r = post_case(f"pre{i}")
        assert r.status_code == 202, r.text
        before.append(r.json()["case_id"])
    for case_id in before:
        wait_until(lambda: not full_state(stack, unit, case_id), 60,
                   f"case {case_id} before the fault", step=0.3,
                   show=lambda: full_state(stack, unit, case_id))

    # The flow: posters that keep posting from FLOW_S before the fault to FLOW_S after
    # it, so that cases are on their way through the services when it strikes.
    accepted, refused, actions, inbound = [], [0], [], []
    errors, stop = [], threading.Event()

    def poster(n):
        i = 0
        try:
            while not stop.is_set():
                try:
                    r = post_case(f"{n}-{i}")
                except requests.RequestException:  # no answer in 15 s: not accepted
                    r = None
                if r is not None and r.status_code == 202:
                    accepted.append(r.json()["case_id"])
                else:
                    assert r is None or (r.status_code == 503 and
                                         r.json()["error"]["code"] == "unavailable"), r.text
                    refused[0] += 1
                if i % 4 == 0 and part != "kafka":  # kcat would wait for the broker
                    ev = case_event(f"{tag}-in{n}-{i}", subject)
                    stack.produce("duban.inbound", json.dumps(ev), key=ev["id"],
                                  headers=[("content-type", "application/cloudevents+json")])
                    inbound.append(ev["id"])
                i += 1
                time.sleep(0.1)  # pacing the load, not waiting for anything
        except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(e)

    posters = [threading.Thread(target=poster, args=(n,), daemon=True)
               for n in range(POSTERS)]
    for t in posters:
        t.start()
    time.sleep(FLOW_S)  # the flow before the fault, the scenario's own length
    restore, word = make_fault(stack)
    said_why = {}  # service: the reasons its /readyz gave for a 503 about 'part'
    try:
        until = time.monotonic() + fault_s
        i = 0
        while time.monotonic() < until and not errors:
            if i < len(before):
                act = {"specversion": "1.0", "id": f"{tag}-acc{i}", "source": "/gov/unit-oa",
                       "type": "duban.case.accepted", "data": {"case_id": before[i]}}
                try:
                    ra = stack.post_event(act, token=UNIT_OA)
                except requests.RequestException:
                    ra = None
                assert ra is None or ra.status_code in (202, 503), ra.text
                if ra is not None and ra.status_code == 202:
                    actions.append(before[i])
            for svc in SERVICES:
                code, text = readyz(stack, svc)
                if code == 503 and part in text:
                    said_why.setdefault(svc, set()).add(text)
            i += 1
            time.sleep(0.2)  # the pace of the checks
    finally:
        restore()
    restored = time.monotonic()

    # Every service ready again by itself, while the posters go on for FLOW_S more.
    def all_ready():
        return all(readyz(stack, svc)[0] == 200 for svc in SERVICES)
    wait_until(all_ready, READY_AGAIN_S, "every /readyz 200 after the fault",
               step=0.2, show=lambda: {s: readyz(stack, s) for s in SERVICES})
    ready_after = time.monotonic() - restored
    while time.monotonic() - restored < FLOW_S:
        time.sleep(0.1)  # the flow after the fault
    stop.set()
    for t in posters:
        t.join(timeout=60)
    assert not errors, errors[0]
    refused = refused[0]


    # duban.inbound: Kafka holds them, intake takes each once Redis takes writes.
    def inbound_case(event_id):
        r = event_status(stack, "/gov/hotline-12345", event_id)
        return r.status_code == 200 and r.json().get("status") == "accepted" and \
            r.json()["case_id"]
    for event_id in inbound:
        accepted.append(wait_until(
            lambda: inbound_case(event_id), SETTLE_S, f"inbound {event_id} accepted",
            step=0.3, show=lambda: event_status(stack, "/gov/hotline-12345", event_id).text))

    lost = {}
    deadline = time.monotonic() + SETTLE_S
    for case_id in accepted + before:
        missing = full_state(stack, unit, case_id)
        while missing and time.monotonic() < deadline:
            time.sleep(0.3)
            missing = full_state(stack, unit, case_id)
        if missing:
            lost[case_id] = missing
    for case_id in actions:
        wait_until(lambda: stack.get("deadline", f"/v1/cases/{case_id}").json()
                   .get("state") == "accepted", SETTLE_S,
                   f"the acceptance of {case_id} applied", step=0.3,
                   show=lambda: stack.get("deadline", f"/v1/cases/{case_id}").text[:300])

    ours = set(accepted + before)
    dlq = []
    for line in stack.topic("duban.dlq", since_ms=start_ms).decode().splitlines():
        key, _, value = line.split("\t", 2)
        record = json.loads(value)
        if record.get("reason") == "internal" or key in ours:
            dlq.append(record)

    # Nothing twice: one duban.case.received and one duban.case.assigned event per case.
    # A second copy of the same event (same id, same content: a write whose
    # acknowledgement the fault swallowed, written again) is at-least-once delivery,
    # which every consumer skips by id; it is counted, not failed. Two events (two ids)
    # would be two decisions.
    ids, copies = collections.defaultdict(set), 0
    for line in stack.topic("duban.cases", since_ms=start_ms).decode().splitlines():
        key, _, value = line.split("\t", 2)
        if key in ours:
            event = json.loads(value)
            if event["type"] in ("duban.case.received", "duban.case.assigned"):
                copies += event["id"] in ids[(key, event["type"])]
                ids[(key, event["type"])].add(event["id"])
    twice = sorted(k for k, v in ids.items() if len(v) > 1)

    print(f"\n{word}: {len(accepted)} cases accepted during {fault_s} s and {FLOW_S} s "
          f"before and after "
          f"({len(inbound)} through duban.inbound), {refused} answered 503, "
          f"{len(actions)} actions accepted, lost {len(lost)}, twice {len(twice)} "
          f"({copies} copies of one event), "
          f"dead-lettered {len(dlq)}, "
          f"ready again {ready_after:.1f} s after; 503 with the reason from "
          f"{sorted(said_why)}")
    assert not lost, f"{len(lost)} accepted cases lost state: {lost}"
    assert not dlq, f"dead-lettered during the fault: {dlq[:5]}"
    assert not twice, f"written twice: {twice[:5]}"
    assert said_why.get("intake"), f"intake's /readyz never gave {part} as its reason"
    assert any(word in text for text in said_why["intake"]), said_why
    return {"accepted": len(accepted), "inbound": len(inbound), "refused": refused,
            "actions": len(actions), "lost": len(lost), "twice": len(twice),
            "copies": copies,
            "dlq": len(dlq), "ready_after_s": ready_after}
