"""Rebalances in the middle of batches (issue 12, review C5): for a minute, an instance of
assignment, deadline or notification is added or removed (SIGTERM, as an orchestrator
scales in) every few seconds, while cases flow in through intake and warnings reach
notification on duban.cases. The stack's own instance of each service runs throughout.
Then, counted on what the services wrote and what reached the real gateways:
- assignment: one duban.case.assigned record per case, never two;
- deadline: every case's accept timer fired (the cases were reported two working days
  ago, so it is overdue when deadline loads the case), and no timer event twice;
- notification: every warning's SMS at the fake SMSC and its email at the SMTP server
  exactly once, and no email (by its Message-ID, derived from the idempotency key) twice
  over everything the run sent.
The module runs on a stack of its own: it stops and starts instances in the consumer
groups, which would disturb any test sharing them."""
import collections
import datetime
import json
import os
import signal
import time
import uuid


from assigning import problem, subject_of, wait_no_lag
from conftest import wait_until
from faults import own_stack_and_unit
from notify_helpers import (ARRIVAL_S, deadline_events, gateway, gateway_env,  # noqa: F401
                            notifications, settled_states)
from test_deadline import SHANGHAI, previous_working, records, shanghai

PREFIX = "RB"
UNIT = f"U-{PREFIX}"
CHURN_S = int(os.environ.get("DUBAN_TEST_CHURN_S", "60"))  # how long instances come and go
STEP_S = 3       # one instance added or removed this often
CASES_PER_STEP = 20     # cases posted to intake (one batch) before each step
WARNINGS_PER_STEP = int(os.environ.get("DUBAN_TEST_CHURN_WARNINGS", "30"))  # in one burst
SCALED = ("assignment", "deadline", "notification")
MAX_EXTRA = 2    # extra instances of a service at most, beside the stack's own


# The module's own stack, and its own unit on it.
stack, unit = own_stack_and_unit(PREFIX, handlers=4)


class Churn:
    """Extra instances of the scaled services, added and removed by the test."""

    def __init__(self, stack, gateway_urls):
        self.stack = stack
        self.env = {k: str(v) for k, v in gateway_env(*gateway_urls).items()}
        self.free_ports = list(range(stack.ports["scale-first"],
                                     stack.ports["scale-first"] + 12))
        self.extra = {svc: [] for svc in SCALED}  # [(name, proc, port)], oldest first
        self.log = []  # (seconds, what)
        self.exits = []  # (name, exit code, seconds to exit)
        self.serial = 0

    def add(self, svc):
        self.serial += 1
        name = f"{svc}-rb{self.serial}"
        port = self.free_ports.pop(0)
        proc = self.stack.spawn(svc, name, port, **self.env)
        self.extra[svc].append((name, proc, port))
        return name

    def remove(self, svc):
        name, proc, port = self.extra[svc].pop(0)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
            code = proc.returncode
        except Exception:  # noqa: BLE001 - still running: the assertion says so
            proc.kill()
            proc.wait(timeout=10)
            code = None
        self.exits.append((name, code, time.monotonic() - t0))
        self.free_ports.append(port)
        return name

    def step(self, k):
        """Step k: the services in turn, each added twice then removed twice."""
        svc = SCALED[k % len(SCALED)]
        adding = (k // len(SCALED)) % 4 < 2
        if adding and len(self.extra[svc]) < MAX_EXTRA:
            return "added " + self.add(svc)
        if self.extra[svc]:
            return "removed " + self.remove(svc)
        return "added " + self.add(svc)

    def stop_all(self):
        for svc in SCALED:
            while self.extra[svc]:
                self.remove(svc)


def sms_counts(kannel, cases):
    found = {c: 0 for c in cases}
    for _, text, _ in kannel.received():
        for c in cases:
            if c in text:
                found[c] += 1
    return found


def mail_counts(mailbox, cases):
    found = {c: 0 for c in cases}
    for m in mailbox.messages():
        for c in cases:
            if c in (m["Subject"] or ""):
                found[c] += 1
    return found


def test_rebalances_every_few_seconds_send_nothing_twice(stack, unit, gateway):
    kannel, mailbox, urls = gateway
    officer = unit.officers[0]
    since_ms = int(time.time() * 1000) - 1000
    today = datetime.datetime.now(SHANGHAI).date()
    reported = shanghai(previous_working(previous_working(today)), 10, 0, 0).isoformat()
    tag = uuid.uuid4().hex[:8]
    churn = Churn(stack, urls)
    posted, warned = [], []
    seq = iter(range(10**9))

    def burst():
        """A batch of cases to intake and a burst of warnings straight onto duban.cases,
        just before an instance comes or goes: the rebalance then meets a backlog, and
        batches being gathered or handled (the case of review C5)."""
        batch = []
        for _ in range(CASES_PER_STEP):
            ev = problem(f"rb-{tag}-{next(seq)}", subject_of(PREFIX))
            ev["time"] = reported
            batch.append(ev)
        for attempt in range(20):
            r = stack.post_event(json.dumps(batch),
                                 content_type="application/cloudevents-batch+json")
            assert r.status_code == 207, r.text
            results = r.json()["results"]
            posted.extend(x["case_id"] for x in results
                          if x["status"] in ("accepted", "duplicate"))
            again = {x["id"] for x in results if x["status"] not in ("accepted", "duplicate")}
            assert all(x["error"]["code"] == "unavailable" for x in results
                       if x["id"] in again), results
            batch = [e for e in batch if e["id"] in again]
            if not batch:
                break
            time.sleep(0.5)  # a publisher's pause before it posts what was refused again
        assert not batch, f"{len(batch)} cases refused 20 times"
        cases = [f"DBRB{uuid.uuid4().hex[:22].upper()}" for _ in range(WARNINGS_PER_STEP)]
        deadline_events(stack, "duban.case.warning", cases, clock="resolve",
                        due_at="2026-10-12T23:59:59+08:00", unit=UNIT, officer=officer)
        warned.extend(cases)

    t0 = time.monotonic()
    k = 0
    try:
        while time.monotonic() - t0 < CHURN_S:
            burst()
            churn.log.append((time.monotonic() - t0, churn.step(k)))
            k += 1
            next_at = t0 + k * STEP_S
            while time.monotonic() < next_at:
                time.sleep(0.1)  # the pace of the churn
    except BaseException:
        churn.stop_all()
        raise
    churned_s = time.monotonic() - t0

    # Everything gets through the services left running (the stack's own and the extras
    # still there), with no further churn.
    def progress():
        assigned, accept_fired = collections.defaultdict(set), set()
        timer_events = collections.Counter()
        wanted = set(posted)
        for key, event in records(stack, since_ms=since_ms):
            if key not in wanted:
                continue
            if event["type"] == "duban.case.assigned":
                assigned[key].add(event["id"])  # two ids: two decisions
            elif event.get("source") == "/duban/deadline":
                timer_events[event["id"]] += 1
                if ".overdue.accept." in event["id"]:
                    accept_fired.add(key)
        return assigned, accept_fired, timer_events

    def all_through():
        assigned, fired, _ = progress()
        sms, mail = sms_counts(kannel, warned), mail_counts(mailbox, warned)
        return (len(assigned) == len(posted) and len(fired) == len(posted) and
                all(sms.values()) and all(mail.values()))
    wait_until(all_through, 240, "every case assigned and overdue, every warning sent",
               step=2, show=lambda: (len(posted), [len(x) for x in progress()[:2]],
                                     sum(1 for v in sms_counts(kannel, warned).values() if v),
                                     sum(1 for v in mail_counts(mailbox, warned).values() if v),
                                     len(warned)))
    # Nothing more can come: the warnings' messages are settled, and every group has
    # committed all of its topic (a record handed over at a rebalance is handled before
    # its offset is committed).
    wait_until(lambda: settled_states(stack, warned, per_case=2), ARRIVAL_S + 60,
               "every warning's SMS and email settled", step=1,
               show=lambda: [(c, [(n["channel"], n["status"]) for n in notifications(stack, c)])
                             for c in warned[:5]])
    for group, topic in (("duban-assignment", "duban.cases"),
                         ("duban-deadline", "duban.cases"),
                         ("duban-notification", "duban.cases"),
                         ("duban-notification-sender", "duban.notifications")):
        wait_no_lag(stack, group, topic, timeout=180)
    churn.stop_all()

    assigned, fired, timer_events = progress()
    sms, mail = sms_counts(kannel, warned), mail_counts(mailbox, warned)
    ids = collections.Counter(m["Message-ID"] for m in mailbox.messages())
    sms_twice = [c for c, n in sms.items() if n > 1]
    mail_twice = [c for c, n in mail.items() if n > 1]
    timers_twice = [i for i, n in timer_events.items() if n > 1]
    assigned_twice = [c for c, v in assigned.items() if len(v) > 1]
    ids_twice = [i for i, n in ids.items() if n > 1]
    added = sum(1 for _, what in churn.log if what.startswith("added"))
    print(f"\nrebalance churn: {len(churn.log)} steps in {churned_s:.0f} s ({added} added, "
          f"{len(churn.log) - added} removed with SIGTERM, each exit "
          f"{max((e[2] for e in churn.exits), default=0):.1f} s at most); "
          f"{len(posted)} cases, {len(warned)} warnings")
    print(f"  assigned {len(assigned)} cases, twice {len(assigned_twice)}; timers: "
          f"{sum(timer_events.values())} events, {len(fired)} cases' accept timer fired, "
          f"twice {len(timers_twice)}")
    print(f"  warnings: {sum(sms.values())} SMS and {sum(mail.values())} emails for "
          f"{len(warned)}, SMS twice {len(sms_twice)}, email twice {len(mail_twice)}; "
          f"{len(ids)} emails in all, {len(ids_twice)} Message-IDs twice")
    assert len(churn.log) >= CHURN_S // STEP_S - 1, churn.log
    assert not assigned_twice, assigned_twice[:5]
    assert not timers_twice, timers_twice[:5]
    assert not sms_twice and not mail_twice, (sms_twice[:5], mail_twice[:5])
    assert not ids_twice, ids_twice[:5]
    for name, code, seconds in churn.exits:
        assert code == 0, (name, code, seconds, churn.log)
