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

from assigning import OwnUnit, subject_of
from conftest import problem_event, wait_until

PUBLISHERS = 4
KILLS = 3
PREFIX = "IC"  # the module's own unit
# Events acknowledged between two kills: intake is back and taking events again.
BETWEEN_KILLS = 40


def publish(stack, next_id, stop, answers, errors):
    """Posts fresh events until 'stop' is set, each one until it gets a 2xx."""
    while not stop.is_set():
        event_id = next_id()
        attempts = 0
        while True:
            attempts += 1
            try:
                event = problem_event(event_id)
                # To the module's own uncapped unit, so that hundreds of open cases
                # do not fill the demo officers' max_open for the tests after this one.
                event["data"]["subject"] = {"unit_id": subject_of(PREFIX)}
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
            time.sleep(0.05)  # a publisher's pause before it tries again
        time.sleep(0.02)  # a steady rate, not a flood


@pytest.fixture
def load_unit(stack):
    load = OwnUnit(stack, PREFIX)
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

    def taken(n):
        return lambda: errors or len(answers) >= n
    # Each kill comes once intake has taken a number of events since it was (re)started,
    # and the load stops once it has taken as many after the last restart.
    for _ in range(KILLS):
        wait_until(taken(len(answers) + BETWEEN_KILLS), 60,
                   f"{BETWEEN_KILLS} events taken", show=lambda: errors)
        stack.kill("intake", signal.SIGKILL)
        stack.start_missing()
    wait_until(taken(len(answers) + BETWEEN_KILLS), 60,
               f"{BETWEEN_KILLS} events taken after the last restart", show=lambda: errors)
    stop.set()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    ids = sorted(answers)
    assert len(ids) >= 100, len(ids)
    retried = sum(1 for a in answers.values() if a[2] > 1)

    # Every event is in duban.cases exactly once, with the case id its publisher got.
    seen = collections.defaultdict(list)

    def all_there():
        seen.clear()
        for line in stack.topic("duban.cases").decode().splitlines():
            value = json.loads(line.split("\t", 2)[2])
            if value["type"] == "duban.case.received":
                seen[value["data"]["origin"]["id"]].append(value["data"]["case_id"])
        return all(i in seen for i in ids)
    wait_until(all_there, 60, "every acknowledged event in duban.cases", step=0.5,
               show=lambda: f"missing {[i for i in ids if i not in seen][:10]}")
    for event_id in ids:
        assert seen[event_id] == [answers[event_id][1]], (event_id, seen[event_id],
                                                          answers[event_id])
    print(f"\n{len(ids)} events, {KILLS} kills, {retried} retried by their publisher")
