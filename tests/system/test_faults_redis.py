"""Redis refusing writes while cases flow: nothing accepted is lost.

Each test posts cases (over HTTP and duban.inbound) and actions on earlier cases while
Redis refuses writes for 20 s, then lets it take writes again, and requires:
- every case intake answered 202 for (or accepted from duban.inbound) has its full
  state in all four services: intake's status "accepted", an assignment to one of the
  unit's officers, a deadline document with its timer, a notification planned;
- every action answered 202 is applied;
- nothing reached duban.dlq as "internal", and none of the module's cases at all;
- /readyz said 503 with the reason while Redis refused writes, and every service is
  ready again by itself within 60 s.

The faults are real ones on the real redis-server: maxmemory with noeviction (OOM),
REPLICAOF a master that does not answer (READONLY). The module runs on a stack of its
own, since it breaks Redis for everyone using it."""
import json
import socket
import time
import urllib.parse

import pytest

from assigning import OwnUnit, problem, subject_of
from conftest import HOTLINE, UNIT_OA, wait_until

PREFIX = "RF"
SERVICES = ("intake", "assignment", "deadline", "notification")
FAULT_S = 20
READY_AGAIN_S = 60
SETTLE_S = 120  # for the backlog of the fault to pass through every service


@pytest.fixture(scope="module")
def stack(own_stack):
    return own_stack


@pytest.fixture(scope="module")
def unit(stack):
    u = OwnUnit(stack, PREFIX)
    yield u
    u.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def oom_fault(stack):
    """maxmemory just above what Redis uses, with noeviction: the first writes go in,
    then every write is refused with OOM (also half-way through a pipeline)."""
    policy = stack.redis("CONFIG", "GET", "maxmemory-policy").split()[-1]
    used = int(next(line.split(":")[1] for line in stack.redis("INFO", "memory").split()
                    if line.startswith("used_memory:")))
    stack.redis("CONFIG", "SET", "maxmemory-policy", "noeviction")
    stack.redis("CONFIG", "SET", "maxmemory", str(used + 256 * 1024))

    def restore():
        stack.redis("CONFIG", "SET", "maxmemory", "0")
        stack.redis("CONFIG", "SET", "maxmemory-policy", policy)
    return restore, "OOM"


def readonly_fault(stack):
    """Redis made a replica of a master that does not answer, as after a failover that
    left the services on the old master: it keeps its data and refuses writes."""
    stack.redis("REPLICAOF", "127.0.0.1", str(free_port()))
    return (lambda: stack.redis("REPLICAOF", "NO", "ONE")), "READONLY"


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


@pytest.mark.parametrize("make_fault", [oom_fault, readonly_fault],
                         ids=["oom", "readonly"])
def test_nothing_accepted_is_lost_while_redis_refuses_writes(stack, unit, make_fault):
    tag = f"rf-{make_fault.__name__}-{int(time.time())}"
    subject = subject_of(PREFIX)
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

    restore, word = make_fault(stack)
    accepted, refused, actions, inbound = [], 0, [], []
    said_why = {}
    try:
        until = time.monotonic() + FAULT_S
        i = 0
        while time.monotonic() < until:
            r = post_case(i)
            if r.status_code == 202:
                accepted.append(r.json()["case_id"])
            else:
                assert r.status_code == 503, r.text
                assert r.json()["error"]["code"] == "unavailable", r.text
                refused += 1
            if i % 4 == 0:
                ev = case_event(f"{tag}-in{i}", subject)
                stack.produce("duban.inbound", json.dumps(ev), key=ev["id"],
                              headers=[("content-type", "application/cloudevents+json")])
                inbound.append(ev["id"])
            if i < len(before):
                act = {"specversion": "1.0", "id": f"{tag}-acc{i}", "source": "/gov/unit-oa",
                       "type": "duban.case.accepted", "data": {"case_id": before[i]}}
                ra = stack.post_event(act, token=UNIT_OA)
                assert ra.status_code in (202, 503), ra.text
                if ra.status_code == 202:
                    actions.append(before[i])
            for svc in SERVICES:
                code, text = readyz(stack, svc)
                if code == 503 and "refuses writes" in text:
                    said_why[svc] = text
            i += 1
            time.sleep(0.2)  # pacing the load, not waiting for anything
    finally:
        restore()
    restored = time.monotonic()

    # Every service ready again by itself.
    def all_ready():
        return all(readyz(stack, svc)[0] == 200 for svc in SERVICES)
    wait_until(all_ready, READY_AGAIN_S, "every /readyz 200 after the fault",
               step=0.2, show=lambda: {s: readyz(stack, s) for s in SERVICES})
    ready_after = time.monotonic() - restored

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

    print(f"\n{word}: {len(accepted)} cases accepted during {FAULT_S} s "
          f"({len(inbound)} through duban.inbound), {refused} answered 503, "
          f"{len(actions)} actions accepted, lost {len(lost)}, dead-lettered {len(dlq)}, "
          f"ready again {ready_after:.1f} s after; 503 with the reason from "
          f"{sorted(said_why)}")
    assert not lost, f"{len(lost)} accepted cases lost state: {lost}"
    assert not dlq, f"dead-lettered during the fault: {dlq[:5]}"
    assert said_why.get("intake"), "intake's /readyz never said Redis refuses writes"
    assert word in said_why["intake"], said_why
