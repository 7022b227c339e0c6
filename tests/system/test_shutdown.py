"""Runs last (file order): every service stops cleanly and quickly on SIGTERM."""
import os
import signal
import time

SERVICES = ("intake", "assignment", "deadline", "notification")


def test_sigterm_stops_every_service_within_10_seconds(stack):
    pids = {svc: stack.pid(svc) for svc in SERVICES}
    start = time.monotonic()
    for pid in pids.values():
        os.kill(pid, signal.SIGTERM)
    stopped = {}
    while len(stopped) < len(pids) and time.monotonic() - start < 15:
        for svc, pid in pids.items():
            if svc in stopped:
                continue
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                stopped[svc] = time.monotonic() - start
        time.sleep(0.05)
    assert set(stopped) == set(SERVICES), f"still running: {set(SERVICES) - set(stopped)}"
    assert max(stopped.values()) < 10, stopped
    for svc in SERVICES:
        log = stack.log(svc)
        assert f'"msg":"{svc} stopping"' in log
        assert '"level":"fatal"' not in log
