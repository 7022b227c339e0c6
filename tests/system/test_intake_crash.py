"""kill -9 intake again and again while publishers post at a steady rate and retry what
failed: every event ends up in duban.cases exactly once, under the case id its
publisher was given."""
import collections
import json
import signal
import threading
import time

import pytest
import requests

from assigning import LOAD_SUBJECTS, LoadUnit
from conftest import problem_event

PUBLISHERS = 4
KILLS = 3


def publish(stack, next_id, stop, answers, errors):
    """Posts fresh events until 'stop' is set, each one until it gets a 2xx."""
    while not stop.is_set():
        event_id = next_id()
        attempts = 0
        while True:
            attempts += 1
            try:
                event = problem_event(event_id)
                # To the uncapped load-test unit, so that hundreds of open cases do
                # not fill the demo officers' max_open for the tests after this one.
                event["data"]["subject"] = {"unit_id": LOAD_SUBJECTS["least_loaded"]}
                r = stack.post_event(event)
                if r.status_code in (200, 202):
                    answers[event_id] = (r.status_code, r.json()["case_id"], attempts)
                    break
                # 503 while intake restarts or rebuilds, 409 while a claim is open.
                assert r.status_code in (409, 503), r.text
            except requests.RequestException:
                pass  # connection refused or reset: intake is down
            if attempts > 400:
                errors.append(f"{event_id}: gave up")
                break
            time.sleep(0.05)
        time.sleep(0.02)  # a steady rate, not a flood


@pytest.fixture
def load_unit(stack):
    load = LoadUnit(stack)
    yield
    load.close()


def test_kill_9_under_load(stack, load_unit):
    answers, errors = {}, []
    counter = iter(range(1_000_000))
    lock = threading.Lock()
    stop = threading.Event()

    def next_id():
        with lock:
            return f"crash-{next(counter):06d}"

    threads = [threading.Thread(target=publish, args=(stack, next_id, stop, answers, errors))
               for _ in range(PUBLISHERS)]
    for t in threads:
        t.start()
    for _ in range(KILLS):
        time.sleep(1.0)
        stack.kill("intake", signal.SIGKILL)
        stack.start_missing()
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    ids = sorted(answers)
    assert len(ids) >= 100, len(ids)
    retried = sum(1 for a in answers.values() if a[2] > 1)

    # Every event is in duban.cases exactly once, with the case id its publisher got.
    until = time.monotonic() + 30
    while True:
        seen = collections.defaultdict(list)
        for line in stack.topic("duban.cases").decode().splitlines():
            value = json.loads(line.split("\t", 2)[2])
            if value["type"] == "duban.case.received":
                seen[value["data"]["origin"]["id"]].append(value["data"]["case_id"])
        if all(i in seen for i in ids) or time.monotonic() > until:
            break
        time.sleep(0.5)
    for event_id in ids:
        assert seen[event_id] == [answers[event_id][1]], (event_id, seen[event_id],
                                                          answers[event_id])
    print(f"\n{len(ids)} events, {KILLS} kills, {retried} retried by their publisher")
