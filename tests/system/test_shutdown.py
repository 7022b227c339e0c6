"""Runs last (file order): a service stops cleanly and quickly on SIGTERM."""
import os
import signal
import time


def test_sigterm_stops_a_service_within_10_seconds(stack):
    """Stops notification with SIGTERM and times its exit."""
    pid = stack.pid("notification")
    start = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    while time.monotonic() - start < 15:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    elapsed = time.monotonic() - start
    assert elapsed < 10, f"still running after {elapsed:.1f}s"
    log = stack.log("notification")
    assert '"msg":"notification stopping"' in log
    assert '"level":"fatal"' not in log
