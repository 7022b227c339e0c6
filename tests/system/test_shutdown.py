"""Every service stops cleanly and quickly on SIGTERM; they are started again
afterwards, so that the modules after this one (in any order) find the stack whole."""
import os
import signal
import threading
import time

import pytest
import requests

from conftest import wait_until

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


def test_readyz_while_stopping_is_answered_or_refused(stack, restarted):
    """/readyz asked without pause while a service stops: every answer is 200 or 503
    and the service exits cleanly. Readiness reads state that the service's threads
    own; freeing it before the HTTP server stops was a use-after-free (a race under
    TSan) in intake and notification. The stack's teardown fails on any sanitizer
    report this leaves in the logs."""
    for svc in SERVICES:
        pid = stack.pid(svc)
        url = stack.url(svc, "/readyz")
        stop = threading.Event()
        answers, errors = [], []

        def ask():
            with requests.Session() as s:  # keep-alive: requests on the open connection
                while not stop.is_set():
                    try:
                        answers.append(s.get(url, timeout=2).status_code)
                    except requests.RequestException as e:
                        errors.append(type(e).__name__)
                        time.sleep(0.01)  # refused: the server is gone or going

        askers = [threading.Thread(target=ask) for _ in range(3)]
        for t in askers:
            t.start()
        try:
            wait_until(lambda: len(answers) >= 20, 10, f"{svc}: 20 readyz answers",
                       step=0.01, show=lambda: answers[-5:])
            os.kill(pid, signal.SIGTERM)
            wait_until(lambda: not alive(pid), 15, f"{svc} (pid {pid}) exits",
                       step=0.05)
        finally:
            stop.set()
            for t in askers:
                t.join()
        assert set(answers) <= {200, 503}, (svc, sorted(set(answers)))
        log = stack.log(svc)
        assert f'"msg":"{svc} stopping"' in log
        assert '"level":"fatal"' not in log
        stack.start_missing()


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
