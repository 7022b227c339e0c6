"""Every service stops cleanly and quickly on SIGTERM; they are started again
afterwards, so that the modules after this one (in any order) find the stack whole."""
import os
import signal
import time

import pytest

SERVICES = ("intake", "assignment", "deadline", "notification")


@pytest.fixture
def restarted(stack):
    yield
    stack.start_missing()


def test_sigterm_stops_every_service_within_10_seconds(stack, restarted):
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
