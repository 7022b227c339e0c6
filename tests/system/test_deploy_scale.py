"""Scaling out by adding replicas, over real Kafka and Redis: three instances each of
assignment, deadline and notification in their consumer groups (the stack's own are
stopped for the test), 10,000 cases posted to intake, and midway one instance of each
killed with SIGKILL and a new one added. Then, counted on what the services wrote:
- every case assigned once: one duban.case.assigned event id per case on duban.cases
  (a redelivered record must repeat the same decision);
- every due timer fired once: the cases' accept deadline falls during the run (deadline's
  clock is moved with DUBAN_DEADLINE_CLOCK_OFFSET_MS, as tests/system/test_deadline.py
  does), after deadline's kill and addition, and each case has exactly one
  accept-overdue record, some fired by the instance added;
- no notification sent twice: in the notification instances' shared outbox no two
  messages go to the same recipient about the same case with the same template, and
  every case's (non-anonymous) reporter got at least one.
The figures are printed (pytest -s shows them). The module runs on a stack of its own:
the 10,000 cases and their notifications stay out of the topics that every later
rebuild after a Redis loss would read."""
import collections
import datetime
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import uuid

import pytest
import requests

from assigning import OwnUnit, subject_of, wait_no_lag
from conftest import OPS, partition_of, problem_event, wait_until
from test_deadline import SHANGHAI, previous_working, records, shanghai

CASES = 10_000
BATCH = 500
LEAD_S = 35  # deadline's clock starts this long before the cases' accept deadline
SCALED = ("assignment", "deadline", "notification")
PREFIX = "SC"  # the module's own unit


@pytest.fixture(scope="module")
def stack(own_stack):
    """Every test of this module runs on the module's own stack."""
    return own_stack


class Instances:
    """The test's own service processes, by name (e.g. "deadline-2")."""

    def __init__(self, stack, extra_env):
        self.stack = stack
        self.extra_env = extra_env
        self.procs = {}
        self.ports = {}
        # The instances' ports: scale-first and the 11 after it, moved as the stack's.
        self.next_port = stack.ports["scale-first"]
        self.killed = []

    def add(self, service, n):
        name = f"{service}-{n}"
        port = self.next_port
        self.next_port += 1
        self.procs[name] = self.stack.spawn(service, name, port, **self.extra_env)
        self.ports[name] = port
        return name

    def kill9(self, name):
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        self.killed.append(name)

    def wait_ready(self, names, timeout=90):
        until = time.monotonic() + timeout
        for name in names:
            while True:
                assert self.procs[name].poll() is None, f"{name} exited"
                try:
                    r = requests.get(f"http://127.0.0.1:{self.ports[name]}/readyz", timeout=2)
                    if r.status_code == 200:
                        break
                except requests.RequestException:
                    pass
                assert time.monotonic() < until, f"{name} not ready after {timeout}s"
                time.sleep(0.2)

    def metric(self, name, family, where=""):
        return self.stack.metric(self.ports[name], family, where)

    def partitions(self, name):
        """The partitions of duban.cases the instance was given at its last rebalance
        (notification's sender also consumes duban.notifications, in a group of its
        own)."""
        with open(os.path.join(self.stack.var_dir, "log", f"{name}.log"), encoding="utf-8",
                  errors="replace") as f:
            found = [m for m in re.findall(r"kafka partitions assigned: ([^\"]*)", f.read())
                     if m == "(none)" or m.startswith("duban.cases[")]
        return found[-1].split() if found and found[-1] != "(none)" else []

    def peak_rss_mb(self, name):
        try:
            with open(f"/proc/{self.procs[name].pid}/status") as f:
                return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) / 1024
        except (OSError, AttributeError):
            return None

    def stop_all(self):
        """SIGTERM to all, as an orchestrator does; returns {name: (exit code, seconds)}."""
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        stopped = {}
        started = time.monotonic()
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=max(0.1, started + 15 - time.monotonic()))
                stopped[name] = (proc.returncode, time.monotonic() - started)
            except Exception:  # noqa: BLE001 - still running: the assertion says so
                proc.kill()
                proc.wait(timeout=10)
                stopped[name] = (None, time.monotonic() - started)
        self.procs = {}
        return stopped


def outbox_messages(outbox):
    """(case id, channel, recipient, template or subject) of every message in the
    outbox, from the files themselves: SMS as JSON, email as RFC 5322 text."""
    found = []
    for top, _, files in os.walk(outbox):
        for name in files:
            if name.startswith("."):
                continue
            # newline="": an email's CRLF line ends are part of what is checked.
            with open(os.path.join(top, name), encoding="utf-8", errors="replace",
                      newline="") as f:
                text = f.read()
            if name.endswith(".json"):
                doc = json.loads(text)
                found.append((doc["case_id"], "sms", doc["to"], doc["template"]))
            else:
                head, _, body = text.partition("\r\n\r\n")
                headers = dict(line.split(": ", 1) for line in head.split("\r\n")
                               if ": " in line)
                cases = set(re.findall(r"DB[0-9A-Z]{26}", body))
                assert cases and headers.get("To") and headers.get("Subject"), name
                # One message per Message-ID (derived from the idempotency key): a case
                # may also be listed in another message, e.g. a digest.
                found += [(c, "email", headers["To"], headers.get("Message-ID", name))
                          for c in cases]
    return found


@pytest.fixture
def instances(stack):
    """Stops the stack's assignment, deadline and notification; afterwards stops the
    test's instances and starts the stack's again, deadline on the real clock."""
    # The cases go to the module's own uncapped unit (configured before the instances
    # start, so all of them route alike): 10,000 open cases must not fill the demo
    # officers' max_open.
    load = OwnUnit(stack, PREFIX)
    for svc in SCALED:
        stack.kill(svc, signal.SIGTERM)
    outbox = tempfile.mkdtemp(prefix="duban-scale-outbox-", dir=os.environ.get("TMPDIR"))
    today = datetime.datetime.now(SHANGHAI).date()
    w2 = previous_working(today)
    w1 = previous_working(w2)
    moment = shanghai(w2, 23, 59, 59)  # accept deadline of a case reported on w1
    offset_ms = int((moment.timestamp() - LEAD_S - time.time()) * 1000)
    # One outbox for all notification instances, as the compose file's volume is; the
    # moved clock for every deadline instance (the others ignore the variable).
    run = Instances(stack, {"DUBAN_OUTBOX_DIR": outbox,
                            "DUBAN_DEADLINE_CLOCK_OFFSET_MS": str(offset_ms)})
    run.reported = shanghai(w1, 10, 0, 0).isoformat()
    run.moment = moment
    run.moment_monotonic = time.monotonic() + LEAD_S
    run.outbox = outbox
    try:
        yield run
    finally:
        for proc in run.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        stack.start_missing(DUBAN_DEADLINE_CLOCK_OFFSET_MS="0")
        load.close()
        shutil.rmtree(outbox, ignore_errors=True)


def post_cases(stack, prefix, start, end, reported, retried=None):
    """Posts the cases in batches; returns their case ids in order. An event refused as
    'unavailable' (503: intake could not reach Kafka or Redis in time, on a machine this
    test keeps busy) is posted again, as DESIGN.md asks of a publisher, at most 5 times;
    'retried' (a Counter) counts those. Any other refusal fails the test."""
    ids = []
    for first in range(start, end, BATCH):
        batch = []
        for i in range(first, min(end, first + BATCH)):
            e = problem_event(f"{prefix}-{i}", time=reported)
            e["data"]["subject"] = {"unit_id": subject_of(PREFIX)}
            batch.append(e)
        got = {}
        for attempt in range(6):
            r = stack.post_event(json.dumps(batch),
                                 content_type="application/cloudevents-batch+json")
            assert r.status_code == 207, r.text
            results = r.json()["results"]
            got.update((x["id"], x["case_id"]) for x in results if "case_id" in x)
            refused = [x for x in results if x["status"] not in ("accepted", "duplicate")]
            if not refused:
                break
            assert attempt < 5 and all(x["error"]["code"] == "unavailable" for x in refused), \
                f"{len(refused)} of {len(results)}: {refused[:3]}"
            if retried is not None:
                retried["unavailable"] += len(refused)
            again = {x["id"] for x in refused}
            batch = [e for e in batch if e["id"] in again]
            time.sleep(1)
        ids += [got[f"{prefix}-{i}"] for i in range(first, min(end, first + BATCH))]
    return ids


def progress(stack, run, since_ms, wanted=None):
    """How far each service is: assigned cases and fired accept timers (on duban.cases,
    of the 'wanted' cases or of every case), messages in the outbox."""
    assigned, fired = set(), set()
    for key, event in records(stack, since_ms=since_ms):
        if wanted is None or key in wanted:
            if event["type"] == "duban.case.assigned":
                assigned.add(key)
            elif ".overdue.accept." in event["id"]:
                fired.add(key)
    files = sum(len(f) for _, _, f in os.walk(run.outbox))
    return {"assignment": len(assigned), "deadline": len(fired), "notification": files}


# Cases whose earliest timer is at ARGV[1], over the timer sets of every partition, in
# one round trip (deadline keeps one sorted set per partition of duban.cases).
DUE = ("local n = 0 for _, k in ipairs(redis.call('KEYS', 'duban:deadline:timers:*')) do "
       "n = n + redis.call('ZCOUNT', k, ARGV[1], ARGV[1]) end return n")


def loaded_timers(stack, moment):
    return int(stack.redis("EVAL", DUE, "0", str(int(moment.timestamp() * 1000))))


class Watcher(threading.Thread):
    """progress() over and over in the background (reading the topic takes a while),
    so that the test's loop can look at deadline's timers every few milliseconds."""

    def __init__(self, stack, run, since_ms):
        super().__init__(daemon=True)
        self.args = (stack, run, since_ms)
        self.latest = {}
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            self.latest = progress(*self.args)


def no_more_copies(stack, run):
    """Waits for positive evidence that no copy of a decision, timer or message the test
    counts can still come: every deadline instance's scheduler has finished a round
    that began after its timers at the moment were all read back and moved on (a case
    reported 90 days ago, on one of its partitions, gets its level-4 escalation), and
    each consumer group has committed everything on its topic (a redelivery after the
    kills is handled, and its outcome written, before its offset is committed)."""
    wait_until(lambda: loaded_timers(stack, run.moment) == 0, 60,
               "every timer at the moment fired and moved on",
               show=lambda: f"{loaded_timers(stack, run.moment)} left")
    owners = {name: set(run.partitions(name)) for name in run.procs
              if name.startswith("deadline-")}
    reported = (datetime.datetime.now(SHANGHAI) - datetime.timedelta(days=90)).isoformat()
    markers = {}
    for attempt in range(10):
        if len(markers) == len(owners):
            break
        batch = [problem_event(f"scale-round-{uuid.uuid4().hex[:12]}", time=reported)
                 for _ in range(20)]
        r = stack.post_event(json.dumps(batch),
                             content_type="application/cloudevents-batch+json")
        assert r.status_code == 207, r.text
        for x in r.json()["results"]:
            if "case_id" not in x:
                continue
            part = f"duban.cases[{partition_of(x['case_id'], 12)}]"
            for name, parts in owners.items():
                if part in parts and name not in markers:
                    markers[name] = x["case_id"]
    assert len(markers) == len(owners), (owners, markers)
    for name, case_id in markers.items():
        def escalated(name=name, case_id=case_id):
            r = requests.get(f"http://127.0.0.1:{run.ports[name]}/v1/cases/{case_id}",
                             headers={"Authorization": f"Bearer {OPS}"}, timeout=10)
            return r.status_code == 200 and r.json()["escalation_level"] == 4 and r
        wait_until(escalated, 90, f"{name}'s round marker {case_id} at level 4")
    wait_no_lag(stack, "duban-assignment")
    wait_no_lag(stack, "duban-notification")
    wait_no_lag(stack, "duban-notification-sender", "duban.notifications")


def test_three_instances_each_one_killed_one_added(stack, instances):
    run = instances
    since_ms = int(time.time() * 1000) - 1000
    for svc in SCALED:
        for n in (1, 2, 3):
            run.add(svc, n)
    run.wait_ready(list(run.procs))
    before = {name: run.partitions(name) for name in run.procs}

    prefix = f"scale-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    posted = {}
    retried = collections.Counter()

    def poster():
        try:
            posted["ids"] = post_cases(stack, prefix, 0, CASES, run.reported, retried)
        except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread
            posted["error"] = e
        posted["s"] = time.monotonic() - started

    posting = threading.Thread(target=poster)
    posting.start()

    # Midway through each service's share of the work, one of its instances dies
    # without a word (SIGKILL) and a new one joins: assignment and notification when
    # half the cases are through them, deadline when half the timers are loaded, before
    # they fall due, so that the instance added must fire those of the partitions it
    # takes over.
    at_kill = {}
    until = time.monotonic() + 150
    watcher = Watcher(stack, run, since_ms)
    watcher.start()
    while len(at_kill) < len(SCALED):
        assert time.monotonic() < until, f"never halfway: {at_kill}"
        assert "error" not in posted, posted.get("error")
        done = {**watcher.latest, "deadline": loaded_timers(stack, run.moment)}
        for svc, count in done.items():
            if svc not in at_kill and count >= CASES // 2:
                run.kill9(f"{svc}-1")
                run.add(svc, 4)
                at_kill[svc] = (count, time.monotonic() - started)
        time.sleep(0.02)
    watcher.stopping.set()
    posting.join(timeout=300)
    if "error" in posted:
        raise posted["error"]
    case_ids, posted_s = posted["ids"], posted["s"]
    assert len(set(case_ids)) == CASES
    wanted = set(case_ids)

    done_at = {}
    until = time.monotonic() + 150
    while time.monotonic() < until and len(done_at) < len(SCALED):
        now = progress(stack, run, since_ms, wanted)
        notified = {m[0] for m in outbox_messages(run.outbox)} & wanted
        for svc, complete in (("assignment", now["assignment"] == CASES),
                              ("deadline", now["deadline"] == CASES),
                              ("notification", len(notified) == CASES)):
            if complete and svc not in done_at:
                done_at[svc] = time.monotonic() - started
        time.sleep(1)
    if len(done_at) == len(SCALED):
        no_more_copies(stack, run)
    assigned = collections.defaultdict(list)
    fired = collections.Counter()
    for key, event in records(stack, since_ms=since_ms):
        if key in wanted and event["type"] == "duban.case.assigned":
            assigned[key].append(event)
        elif key in wanted and ".overdue.accept." in event["id"]:
            fired[event["id"]] += 1
    messages = [m for m in outbox_messages(run.outbox) if m[0] in wanted]
    per_message = collections.Counter(messages)
    notified = {m[0] for m in messages}
    channels = collections.Counter(m[1] for m in messages)

    work = {}
    for name in run.procs:
        family = {"assignment": ("duban_assignment_total", ""),
                  "deadline": ("duban_deadline_timers_fired_total", ""),
                  "notification": ("duban_notifications_total", 'status="sent"')}
        work[name] = run.metric(name, *family[name.rsplit("-", 1)[0]])
    after = {name: run.partitions(name) for name in run.procs}
    rss = {name: run.peak_rss_mb(name) for name in run.procs}
    with open(f"/proc/{stack.pid('intake')}/status") as f:
        intake_rss = int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) / 1024
    stopped = run.stop_all()

    decisions = {k: {(e["id"], e["data"].get("unit"), e["data"].get("officer")) for e in v}
                 for k, v in assigned.items()}
    redelivered = sum(len(v) - 1 for v in assigned.values())
    print(f"\nscale-out: {CASES} cases posted in {posted_s:.1f} s ({CASES / posted_s:.0f}/s), "
          f"{retried['unavailable']} posted again after 'unavailable', "
          f"intake peak RSS {intake_rss:.0f} MB; the timers fell due at "
          f"{run.moment_monotonic - started:.1f} s")
    print("  killed -9 and replaced at: " + ", ".join(
        f"{svc}-1 after {n:.0f} done, {t:.1f} s" for svc, (n, t) in at_kill.items()))
    print("  all done at: " + ", ".join(f"{k} {v:.1f} s" for k, v in done_at.items()))
    print(f"  assigned: {len(assigned)} cases, {sum(len(v) for v in assigned.values())} "
          f"records ({redelivered} redelivered), "
          f"{sum(len(d) > 1 for d in decisions.values())} with two decisions")
    print(f"  accept-overdue timers: {len(fired)} fired, {sum(fired.values())} records, "
          f"{sum(n > 1 for n in fired.values())} twice")
    print(f"  notifications: {len(messages)} in the outbox ({dict(channels)}) for "
          f"{len(notified)} cases, {sum(n > 1 for n in per_message.values())} sent twice")
    for name in sorted(after):
        print(f"  {name}: partitions {len(before.get(name, []))} -> {len(after[name])}, "
              f"work {work[name]}, peak RSS {rss[name]:.0f} MB, "
              f"SIGTERM: exit {stopped[name][0]} in {stopped[name][1]:.2f} s")

    assert len(assigned) == CASES, f"{CASES - len(assigned)} cases never assigned"
    assert all(len(d) == 1 for d in decisions.values()), \
        "a case got two different assignments"
    assert at_kill["deadline"][1] < run.moment_monotonic - started, \
        "deadline's instance was killed after the timers fell due: raise LEAD_S"
    assert len(fired) == CASES, f"{CASES - len(fired)} timers never fired"
    assert work["deadline-4"] > 0, "the deadline instance added fired no timer"
    assert set(fired.values()) == {1}, "some timer fired twice"
    assert len(notified) == CASES, f"{CASES - len(notified)} cases without a notification"
    assert set(per_message.values()) == {1}, [m for m, n in per_message.items() if n > 1][:5]
    # The groups spread the partitions over the surviving instances, the new ones too.
    for svc in SCALED:
        owned = [after[f"{svc}-{n}"] for n in (2, 3, 4)]
        assert all(owned), (svc, owned)
        flat = [p for parts in owned for p in parts]
        assert len(flat) == len(set(flat)) == 12, (svc, owned)
    for name, (code, seconds) in stopped.items():
        assert code == 0 and seconds < 10, (name, code, seconds)
