"""The wall clock stepped back and forward by an hour under deadline while timers are
pending (issue 12): no timer fires early, none is lost, none fires twice, and deadline
goes on taking cases while its clock is behind.

deadline runs with libfaketime preloaded, which moves CLOCK_REALTIME (and only it: the
monotonic clock is left alone, as an NTP step leaves it) by the offset written in a
file, read again at every call. Its clock starts LEAD_S before the accept deadline of
the module's cases (DUBAN_DEADLINE_CLOCK_OFFSET_MS, as in test_deadline.py). Once their
timers are loaded the clock steps back an hour: for OBSERVE_S, longer than LEAD_S, not
one of them may fire (a wait computed from the clock before the step would). Then it
steps forward an hour, back to where it was: every one fires at once, and once.

The steps are back and then forward, not forward and then back: Kafka 4 refuses
records stamped more than an hour ahead of the broker (log.message.timestamp.after.max.ms),
so a producer whose clock runs an hour fast is a fault of another kind. The module runs
on a stack of its own, whose deadline it replaces.

A step is not in force when the file changes, but when the instance shows it: its HTTP
Date header, which libmicrohttpd takes from time(), moves by the hour. libfaketime 0.9.10
parses the file without a lock, so two threads, one holding the old text and one the
new, can leave the old offset in force while the text it compares against is the new
one; every later call then sees the text unchanged and keeps the old offset (with 4
threads calling clock_gettime, 5 of 400 steps were not in force 30 ms after the file
changed and 2 still a second later; writing the same offset spelt otherwise ended every
one). So move_clock() writes the file in one rename, waits for the Date header, and spells
the offset again until it shows, and once more after it does.

libfaketime cannot start a process linked against jemalloc: jemalloc reads
CLOCK_MONOTONIC_COARSE while it initialises, from the first malloc (a library's
constructor), before libfaketime's own constructor has run, and libfaketime's
initialisation allocates; the recursion ends in "Cannot recover from unexpected
recursive calls to clock_gettime()" and a hang, whatever the order of the two in
LD_PRELOAD. The release build links jemalloc (CMakeLists.txt) and also builds
duban-deadline-libc, the same program on glibc's malloc (cmake/duban.cmake, LIBC_TWIN),
which this module runs when it is there (the sanitizer builds have no jemalloc and no
twin); it refuses at once a program that links jemalloc."""
import collections
import datetime
import email.utils
import os
import signal
import subprocess
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
FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


# The module's own stack, and its own unit on it.
stack, unit = own_stack_and_unit(PREFIX)


def accept_fired(stack, cases, since_ms):
    """How many accept-overdue records each case has (ids counted as written)."""
    wanted = set(cases)
    fired = collections.Counter()
    for key, event in records(stack, since_ms=since_ms):
        if key in wanted and ".overdue.accept." in event["id"]:
            fired[event["id"]] += 1
    return fired


def wall_clock(port):
    """The instance's wall clock (to the second), from its HTTP Date header."""
    r = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    return email.utils.parsedate_to_datetime(r.headers["Date"]).timestamp()


def move_clock(path, port, offset_s):
    """Sets the instance's wall clock offset_s from the real one and returns once its
    Date header has shown it twice, the second time after the offset was written again
    in another spelling ('-3600', '-3600.0', ...: the same offset, new text, so
    every thread parses it again). Fails after 20 spellings with what the clock said."""
    seen = []
    shown = 0
    for k in range(20):
        tmp = f"{path}.{k}"
        with open(tmp, "w") as f:
            f.write(f"{offset_s:+d}" + ("." + "0" * k if k else "") + "\n")
        os.replace(tmp, path)  # a reader opens the old file or the new one, never half
        until = time.monotonic() + 2
        while time.monotonic() < until:
            off = wall_clock(port) - time.time()
            seen.append(round(off))
            if abs(off - offset_s) < 300:
                shown += 1
                break
            time.sleep(0.05)
        if shown >= 2:
            return k + 1
    raise AssertionError(f"the instance's clock did not move to {offset_s:+d} s: it "
                         f"showed offsets {seen[-20:]}")


def loaded(stack, port, case_id):
    try:
        r = requests.get(f"http://127.0.0.1:{port}/v1/cases/{case_id}",
                         headers={"Authorization": f"Bearer {OPS}"}, timeout=10)
    except requests.RequestException:
        return False
    return r.status_code == 200 and bool(r.json().get("accept_by"))


def links_jemalloc(binary):
    dynamic = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True,
                             check=True).stdout
    return any("NEEDED" in line and "libjemalloc" in line for line in dynamic.splitlines())


def test_clock_stepped_back_and_forward_an_hour(stack, unit):
    assert os.path.exists(FAKETIME), "libfaketime missing: run deploy/local/setup.sh"
    program = "duban-deadline-libc"
    if not os.path.exists(stack.binary("deadline", program)):
        program = "duban-deadline"
    assert not links_jemalloc(stack.binary("deadline", program)), (
        f"{stack.binary('deadline', program)} links jemalloc, under which libfaketime "
        "cannot start (module docstring), and there is no duban-deadline-libc beside it")
    since_ms = int(time.time() * 1000) - 1000
    today = datetime.datetime.now(SHANGHAI).date()
    w2 = previous_working(today)
    w1 = previous_working(w2)
    moment = shanghai(w2, 23, 59, 59)  # the accept deadline of a case reported on w1
    reported = shanghai(w1, 10, 0, 0).isoformat()
    offset_ms = int((moment.timestamp() - LEAD_S - time.time()) * 1000)
    clock = tempfile.NamedTemporaryFile("w", prefix="duban-clock-", suffix=".txt",
                                        dir=os.environ.get("TMPDIR"), delete=False)
    clock.write("+0\n")
    clock.close()

    stack.kill("deadline", signal.SIGTERM)
    port = stack.ports["scale-first"]
    proc = stack.spawn("deadline", "deadline-clock", port, program=program,
                       DUBAN_DEADLINE_CLOCK_OFFSET_MS=str(offset_ms),
                       LD_PRELOAD=FAKETIME, FAKETIME_TIMESTAMP_FILE=clock.name,
                       FAKETIME_NO_CACHE="1", FAKETIME_DONT_FAKE_MONOTONIC="1",
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
        writes = {"back": move_clock(clock.name, port, -3600)}
        stepped_back = time.monotonic()
        assert stepped_back - t0 < LEAD_S, \
            f"the clock moved back {stepped_back - t0:.0f} s in, after the deadline"
        late = []
        while time.monotonic() - stepped_back < OBSERVE_S:  # the length of the fault
            fired = accept_fired(stack, cases, since_ms)
            assert not fired, (f"{len(fired)} timers fired with the clock an hour behind "
                               f"their deadline, {time.monotonic() - t0:.0f} s in")
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
        writes["forward"] = move_clock(clock.name, port, 0)
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
              f"{fired_after_s:.1f} s, {sum(n > 1 for n in fired.values())} twice; "
              f"file writes per step {writes}")
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
