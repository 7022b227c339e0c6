"""Two assignment instances in one consumer group split the partitions of duban.cases;
while cases stream in (some cancelled right after), one is killed with kill -9. Every
case is assigned exactly once (one decision, republished at most as identical copies)
and the workload equals a recount from duban.cases."""
import collections
import json
import os
import signal
import subprocess
import threading
import time

import requests

from assigning import (OwnUnit, action, assigned_copies, case_events, metric, problem,
                       recount_known, subject_of, units, wait_log, workloads)
from conftest import HOTLINE, PORTS, ROOT, UNIT_OA, wait_until

BATCH = 20
SECOND_PORT = PORTS["assignment-2"]
PREFIX = "AC"  # the module's own unit


def start_second(stack):
    env = dict(stack.env)
    env.update({
        "DUBAN_ASSIGNMENT_PORT": str(SECOND_PORT),
        "DUBAN_KAFKA_BROKERS": f"127.0.0.1:{stack.ports['kafka']}",
        "DUBAN_REDIS_URL": f"redis://127.0.0.1:{stack.ports['redis']}/0",
        "DUBAN_SCHEMA_DIR": os.path.join(ROOT, "schemas"),
    })
    binary = os.path.join(ROOT, env["DUBAN_BUILD_DIR"], "services", "assignment",
                          "duban-assignment")
    log = open(os.path.join(stack.var_dir, "log", "assignment-2.log"), "ab")
    proc = subprocess.Popen([binary], env=env, cwd=ROOT, stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL)
    log.close()
    return proc


def second_log(stack):
    with open(os.path.join(stack.var_dir, "log", "assignment-2.log"), encoding="utf-8",
              errors="replace") as f:
        return f.read()


def post_batch(stack, events, token, stop=None):
    """Posts until intake takes the batch; gives up once 'stop' is set (the test is
    over) or after 200 tries."""
    body = json.dumps(events)
    for _ in range(200):
        try:
            r = stack.post_event(body, token=token,
                                 content_type="application/cloudevents-batch+json")
            if r.status_code == 207:
                return r.json()["results"]
        except requests.RequestException:
            pass
        if stop is not None and stop.is_set():
            break
        time.sleep(0.1)
    raise AssertionError("intake did not take a batch")


def load(stack, stop, cases, cancelled, errors):
    """Posts batches of new cases at a steady rate; cancels every fourth case of the
    previous batch."""
    n = 0
    previous = []
    try:
        while not stop.is_set():
            events = [problem(f"crash-as-{n + i:05d}", subject_of(PREFIX))
                      for i in range(BATCH)]
            n += BATCH
            got = [res["case_id"] for res in post_batch(stack, events, HOTLINE, stop)
                   if res.get("status") == "accepted"]
            assert len(got) == BATCH, got
            cases.extend(got)
            doomed = previous[::4]
            if doomed:
                results = post_batch(stack, [action(f"crash-cancel-{c}", "cancelled", c,
                                                    reason="撤销")
                                             for c in doomed], UNIT_OA, stop)
                assert all(res.get("status") == "accepted" for res in results), results
                cancelled.extend(doomed)
            previous = got
            time.sleep(0.1)
    except Exception as e:  # reported by the test, not lost in the thread
        errors.append(repr(e))


def test_two_instances_and_kill_9(stack):
    unit = OwnUnit(stack, PREFIX)
    since = len(stack.log("assignment"))
    second = start_second(stack)
    try:
        # Both are members: the first gives up partitions when the second joins.
        r = None
        until = time.monotonic() + 60
        while time.monotonic() < until:
            try:
                r = requests.get(f"http://127.0.0.1:{SECOND_PORT}/readyz", timeout=2)
                if r.status_code == 200 and "partitions assigned: duban" in second_log(stack):
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        assert r is not None and r.status_code == 200, second_log(stack)[-2000:]
        assert wait_log(stack, "assignment", "partitions revoked", since, timeout=30), \
            stack.log("assignment")[since:][-3000:]
        # The first one's share is assigned again after its revocation.
        revoked = stack.log("assignment").index("partitions revoked", since)
        assert wait_log(stack, "assignment", "partitions assigned: duban", revoked,
                        timeout=30), stack.log("assignment")[revoked:][-3000:]

        cases, cancelled, errors = [], [], []
        stop = threading.Event()
        # A daemon: should the stack break, a stuck poster must not keep pytest alive.
        t = threading.Thread(target=load, args=(stack, stop, cases, cancelled, errors),
                             daemon=True)
        t.start()

        def posted(n):
            return lambda: errors or len(cases) >= n

        # Killed once the load is flowing (five batches taken), so that batches are in
        # flight; the load goes on until five more batches are taken after the kill.
        wait_until(posted(5 * BATCH), 60, "five batches posted", show=lambda: errors)
        killed_at = len(cases)
        stack.kill("assignment", signal.SIGKILL)  # mid-run: batches are in flight
        wait_until(posted(killed_at + 5 * BATCH), 60, "five batches after the kill",
                   show=lambda: errors)
        stop.set()
        t.join(timeout=120)
        assert errors == []
        assert killed_at > 0 and len(cases) > killed_at, (killed_at, len(cases))

        # The survivor takes over the dead one's partitions (after its session times
        # out) and assigns everything.
        until = time.monotonic() + 120
        while True:
            events = case_events(stack)
            copies = assigned_copies(events)
            missing = [c for c in cases if f"{c}.assigned.1" not in copies]
            if not missing or time.monotonic() > until:
                break
            time.sleep(1)
        assert missing == [], f"{len(missing)} of {len(cases)} cases never assigned"
        stack.start_missing()  # the killed one comes back and rejoins

        duplicates = 0
        per_case = collections.defaultdict(set)
        for event_id, datas in copies.items():
            per_case[datas[0]["case_id"]].add(event_id)
            # One decision per event id, however often it was written.
            assert all(d == datas[0] for d in datas[1:]), event_id
            duplicates += len(datas) - 1
        for c in cases:
            assert per_case[c] == {f"{c}.assigned.1"}, (c, per_case[c])
        # The workload equals a recount of duban.cases, cancellations included.
        seen = {}

        def same():
            seen["got"] = workloads(stack, units(stack))
            seen["recount"] = recount_known(stack, case_events(stack))
            return seen["got"] == seen["recount"]
        wait_until(same, 60, "workloads equal to the recount of duban.cases", step=0.5,
                   show=lambda: f"workloads {seen['got']}, recount {seen['recount']}")
        redelivered = metric(SECOND_PORT, "duban_assignment_redeliveries_total")
        print(f"\n{len(cases)} cases ({len(cancelled)} cancelled), kill -9 after "
              f"{killed_at}; the survivor saw {redelivered:.0f} events again; "
              f"{duplicates} assignments written twice (identical copies)")
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=20)
        except subprocess.TimeoutExpired:
            second.kill()
            second.wait()
        stack.start_missing()
        unit.close()
