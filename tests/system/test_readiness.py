"""/readyz follows Kafka and Redis: 503 with the error shape and Retry-After while one
of them does not answer (frozen with SIGSTOP), 200 again once it does."""
import os
import signal
import time

import pytest

SERVICES = ("intake", "assignment", "deadline", "notification")


def pid_of(stack, part):
    with open(os.path.join(stack.var_dir, part, f"{part}.pid")) as f:
        return int(f.read().strip())


def readyz(stack, svc):
    return stack.get(svc, "/readyz", token=None)


def wait_all(stack, status, timeout=30):
    until = time.monotonic() + timeout
    last = {}
    while time.monotonic() < until:
        last = {svc: readyz(stack, svc) for svc in SERVICES}
        if all(r.status_code == status for r in last.values()):
            return last
        time.sleep(0.2)
    pytest.fail(f"not all {status}: " + ", ".join(
        f"{s}={r.status_code}" for s, r in last.items()))


@pytest.mark.parametrize("part,reason", [("redis", "redis"), ("kafka", "kafka")])
def test_readyz_follows_dependency(stack, part, reason):
    pid = pid_of(stack, part)
    os.kill(pid, signal.SIGSTOP)
    try:
        answers = wait_all(stack, 503)
        for svc, r in answers.items():
            err = r.json()["error"]
            assert err["code"] == "unavailable"
            assert reason in err["message"], (svc, err)
            assert int(r.headers["Retry-After"]) > 0
            # Liveness is not readiness: the process is alive.
            assert stack.get(svc, "/healthz", token=None).status_code == 200
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_all(stack, 200)


def test_intake_answers_503_while_kafka_is_frozen(stack):
    """Nothing is acknowledged that Kafka did not take: 503 with Retry-After, and the
    publisher's retry after Kafka is back ends up as exactly one case."""
    from conftest import problem_event
    pid = pid_of(stack, "kafka")
    os.kill(pid, signal.SIGSTOP)
    try:
        r = stack.post_event(problem_event("frozen-1"))
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "unavailable"
        assert int(r.headers["Retry-After"]) > 0
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_all(stack, 200)
    until = time.monotonic() + 60
    while True:
        r = stack.post_event(problem_event("frozen-1"))
        if r.status_code in (200, 202) or time.monotonic() > until:
            break
        time.sleep(0.5)
    assert r.status_code in (200, 202), r.text
    case = r.json()["case_id"]
    received = [line for line in stack.topic("duban.cases").decode().splitlines()
                if '"frozen-1"' in line and "duban.case.received" in line]
    assert len(received) == 1 and case in received[0]


def test_intake_answers_503_while_redis_is_frozen(stack):
    """Without Redis nothing can be deduplicated, so nothing is taken."""
    from conftest import problem_event
    pid = pid_of(stack, "redis")
    os.kill(pid, signal.SIGSTOP)
    try:
        r = stack.post_event(problem_event("redis-frozen-1"))
        assert r.status_code == 503, r.text
        assert int(r.headers["Retry-After"]) > 0
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_all(stack, 200)
    received = [line for line in stack.topic("duban.cases").decode().splitlines()
                if '"redis-frozen-1"' in line]
    assert received == []
    # A claim sent before the freeze may still be applied when Redis resumes: the retry
    # then waits (409) until it expires, and is taken.
    until = time.monotonic() + 20
    while True:
        r = stack.post_event(problem_event("redis-frozen-1"))
        if r.status_code != 409 or time.monotonic() > until:
            break
        time.sleep(0.5)
    assert r.status_code == 202, r.text
