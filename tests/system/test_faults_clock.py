"""The wall clock stepped back and forward by an hour under deadline while timers are
pending (issue 12): no timer fires early, none is lost, none fires twice, and deadline
goes on taking cases while its clock is behind.

deadline runs with tests/clockshift preloaded, which moves CLOCK_REALTIME, time() and
gettimeofday() (and only those: the monotonic clock is left alone, as an NTP step leaves
it) by the shift in a file mapped into the process, in force for every thread from the
first call after the file is written. Its clock starts LEAD_S before the accept deadline
of the module's cases (DUBAN_DEADLINE_CLOCK_OFFSET_MS, as in test_deadline.py). Once
their timers are loaded the clock steps back an hour: for OBSERVE_S, longer than LEAD_S,
not one of them may fire (a wait computed from the clock before the step would). Then it
steps forward an hour, back to where it was: every one fires at once, and once.

The steps are back and then forward, not forward and then back: Kafka 4 refuses
records stamped more than an hour ahead of the broker (log.message.timestamp.after.max.ms),
so a producer whose clock runs an hour fast is a fault of another kind. The module runs
on a stack of its own, whose deadline it replaces.

The step is shown by the instance itself: its HTTP Date header, which libmicrohttpd takes
from time(), moves by the hour. This module used libfaketime before, which proved unfit
for a process of many threads (tests/clockshift/clockshift.c says why): in 4 of 20 runs
deadline's scheduler read the unstepped clock for a moment while the clock was back and
fired every timer an hour early."""
import collections
import datetime
import email.utils
import os
import signal
import struct
import tempfile
import time
import uuid

import requests

from assigning import problem, subject_of
from conftest import OPS, wait_until
from faults import own_stack_and_unit
from test_deadline import SHANGHAI, previous_working, records, shanghai

PREFIX = "CK"
CASES = 20
LEAD_S = 30     # deadline's clock starts this long before the cases' accept deadline
OBSERVE_S = 45  # how long the clock stays an hour behind: past LEAD_S and then some


# The module's own stack, and its own unit on it.
stack, unit = own_stack_and_unit(PREFIX)


def accept_fired(stack, cases, since_ms, times=None):
    """How many accept-overdue records each case has (ids counted as written); the
    events' times (the instance's clock when it fired them) go into 'times'."""
    wanted = set(cases)
    fired = collections.Counter()
    for key, event in records(stack, since_ms=since_ms):
        if key in wanted and ".overdue.accept." in event["id"]:
            fired[event["id"]] += 1
            if times is not None:
                times.append(event["time"])
    return fired


def wall_clock(port):
    """The instance's wall clock (to the second), from its HTTP Date header."""
    r = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    return email.utils.parsedate_to_datetime(r.headers["Date"]).timestamp()


def move_clock(path, port, offset_s):
    """Sets the instance's wall clock offset_s from the real one (both copies of the
    shift, the first first: clockshift.c) and returns once its Date header shows it.
    Fails after 10 s with the offsets it showed."""
    shift = struct.pack("=q", offset_s * 1000)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, shift, 0)
        os.pwrite(fd, shift, 8)
    finally:
        os.close(fd)
    seen = []

    def shown():
        off = wall_clock(port) - time.time()
        seen.append(round(off))
        return abs(off - offset_s) < 300
    wait_until(shown, 10, f"the instance's clock moved to {offset_s:+d} s",
               show=lambda: f"offsets {seen[-10:]}", step=0.05)


def loaded(stack, port, case_id):
    try:
        r = requests.get(f"http://127.0.0.1:{port}/v1/cases/{case_id}",
                         headers={"Authorization": f"Bearer {OPS}"}, timeout=10)
    except requests.RequestException:
        return False
    return r.status_code == 200 and bool(r.json().get("accept_by"))


def test_clock_stepped_back_and_forward_an_hour(stack, unit):
    shim = stack.build_path("tests/clockshift/libduban_clockshift.so")
    assert os.path.exists(shim), f"{shim} missing: the build makes it"
    since_ms = int(time.time() * 1000) - 1000
    today = datetime.datetime.now(SHANGHAI).date()
    w2 = previous_working(today)
    w1 = previous_working(w2)
    moment = shanghai(w2, 23, 59, 59)  # the accept deadline of a case reported on w1
    reported = shanghai(w1, 10, 0, 0).isoformat()
    offset_ms = int((moment.timestamp() - LEAD_S - time.time()) * 1000)
    clock = tempfile.NamedTemporaryFile("wb", prefix="duban-clock-", suffix=".bin",
                                        dir=os.environ.get("TMPDIR"), delete=False)
    clock.write(struct.pack("=qq", 0, 0))
    clock.close()

    stack.kill("deadline", signal.SIGTERM)
    port = stack.ports["scale-first"]
    proc = stack.spawn("deadline", "deadline-clock", port,
                       DUBAN_DEADLINE_CLOCK_OFFSET_MS=str(offset_ms), LD_PRELOAD=shim,
                       DUBAN_CLOCKSHIFT_FILE=clock.name,
                       ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") +
                       ":verify_asan_link_order=0")
    t0 = time.monotonic()
    try:
        def ready():
            assert proc.poll() is None, f"deadline exited with {proc.returncode}"
            try:
                return requests.get(f"http://127.0.0.1:{port}/readyz",
                                    timeout=5).status_code == 200
            except requests.RequestException:
                return False
        wait_until(ready, 120, "the deadline instance with the moved clock ready")
        tag = uuid.uuid4().hex[:8]
        cases = []
        for i in range(CASES):
            ev = problem(f"ck-{tag}-{i}", subject_of(PREFIX))
            ev["time"] = reported
            r = stack.post_event(ev)
            assert r.status_code == 202, r.text
            cases.append(r.json()["case_id"])
        for case_id in cases:
            wait_until(lambda: loaded(stack, port, case_id), 60, f"{case_id} loaded")
        loaded_s = time.monotonic() - t0
        assert loaded_s < LEAD_S - 10, \
            f"the cases took {loaded_s:.0f} s to load, too close to their deadline: raise LEAD_S"
        assert not accept_fired(stack, cases, since_ms), "a timer fired before its time"

        # An hour back: the timers are an hour and LEAD_S away now.
        move_clock(clock.name, port, -3600)
        stepped_back = time.monotonic()
        assert stepped_back - t0 < LEAD_S, \
            f"the clock moved back {stepped_back - t0:.0f} s in, after the deadline"
        late = []
        while time.monotonic() - stepped_back < OBSERVE_S:  # the length of the fault
            times = []
            fired = accept_fired(stack, cases, since_ms, times)
            assert not fired, (f"{len(fired)} timers fired with the clock an hour behind "
                               f"their deadline, {time.monotonic() - t0:.0f} s in, "
                               f"stamped {sorted(set(times))[:3]} by the instance")
            if not late:  # deadline goes on taking cases meanwhile
                ev = problem(f"ck-{tag}-late", subject_of(PREFIX))
                ev["time"] = reported
                r = stack.post_event(ev)
                assert r.status_code == 202, r.text
                late.append(r.json()["case_id"])
            time.sleep(1)  # the pace of the checks
        assert loaded(stack, port, late[0]), "a case taken while the clock was behind"
        past_moment_s = time.monotonic() - t0 - LEAD_S
        assert past_moment_s > 0, "the deadline passed while the clock was behind"

        # Forward again by the hour: every timer is due, and fires once.
        move_clock(clock.name, port, 0)
        stepped_forward = time.monotonic()
        every = cases + late
        wait_until(lambda: len(accept_fired(stack, every, since_ms)) == len(every), 90,
                   "every accept timer fired after the clock came back",
                   show=lambda: f"{len(accept_fired(stack, every, since_ms))} of {len(every)}")
        fired_after_s = time.monotonic() - stepped_forward
        # Nothing more can come: a round that began after the last of them has ended
        # (the instance's fired-timer count holds still over three of its rounds).
        settled = {}

        def holds_still():
            n = stack.metric(port, "duban_deadline_timers_fired_total")
            settled.setdefault("seen", []).append(n)
            return len(settled["seen"]) >= 4 and len(set(settled["seen"][-4:])) == 1
        wait_until(holds_still, 60, "the fired-timer count holding still", step=0.5)
        fired = accept_fired(stack, every, since_ms)
        print(f"\nclock steps: {len(every)} cases, loaded {loaded_s:.1f} s in; an hour back "
              f"for {OBSERVE_S} s ({past_moment_s:.0f} s past the deadline by the "
              f"unstepped clock): 0 fired; an hour forward: {len(fired)} fired within "
              f"{fired_after_s:.1f} s, {sum(n > 1 for n in fired.values())} twice")
        assert set(fired.values()) == {1}, [i for i, n in fired.items() if n > 1]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except Exception:  # noqa: BLE001 - the stack's teardown reports what is left
            proc.kill()
            proc.wait(timeout=10)
        os.unlink(clock.name)
        stack.start_missing()
    assert proc.returncode == 0, f"deadline exited with {proc.returncode}"
