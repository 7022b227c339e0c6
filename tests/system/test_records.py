"""Every record the services wrote to duban.cases is a valid CloudEvent whose data
matches its schema in schemas/events, keyed by its case id, with the headers consumers
rely on: duban-type on every record, and on intake's records the publisher's source and
id (the deduplication index reads those instead of parsing the event). It checks every
record on the topic when it runs, its own case's included: in file order, after the
other modules, what they all produced."""
import json
import os
import sys
import time

import pytest

from conftest import UNIT_OA, problem_event

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "contract"))
from helpers import SCHEMAS, event_schema, validator  # noqa: E402

ENVELOPE = validator(SCHEMAS / "cloudevent.json")


def records(stack):
    """(key, {header: value}, event) for every record of duban.cases that a service
    wrote (tests that write bad input straight to the topic mark it duban-test)."""
    out = []
    for line in stack.topic("duban.cases").decode("utf-8", errors="replace").splitlines():
        key, headers, value = line.split("\t", 2)
        # kcat prints headers as name=value,name=value; no value here holds a comma.
        pairs = dict(h.split("=", 1) for h in headers.split(",") if "=" in h)
        if "duban-test" not in pairs:
            out.append((key, pairs, json.loads(value)))
    return out


@pytest.fixture(scope="module")
def written(stack):
    """Makes sure a new case and an action are there, then reads the topic."""
    r = stack.post_event(problem_event("records-1"))
    assert r.status_code == 202, r.text
    case_id = r.json()["case_id"]
    action = {"specversion": "1.0", "id": "records-1-accepted", "source": "/gov/unit-oa",
              "type": "duban.case.accepted", "time": "2026-09-29T11:00:00+08:00",
              "data": {"case_id": case_id, "comment": "已签收"}}
    r = stack.post_event(action, token=UNIT_OA)
    assert r.status_code == 202, r.text
    until = time.monotonic() + 20
    while time.monotonic() < until:
        got = records(stack)
        types = {e["type"] for k, _, e in got if k == case_id}
        if {"duban.case.received", "duban.case.assigned",
                "duban.case.accepted"} <= types:
            return case_id, got
        time.sleep(0.2)
    raise AssertionError(f"case {case_id} never got all three records: {types}")


def test_every_record_matches_its_schema(written):
    _, got = written
    assert len(got) >= 3
    for key, _, event in got:
        errors = [e.message for e in ENVELOPE.iter_errors(event)]
        assert not errors, (key, event["type"], errors)
        data_errors = [f"{list(e.path)}: {e.message}" for e in
                       validator(event_schema(event["type"])).iter_errors(event["data"])]
        assert not data_errors, (key, event["type"], data_errors)
        assert key == event["data"]["case_id"], (key, event["type"])


def test_every_record_names_its_type_in_a_header(written):
    _, got = written
    for key, headers, event in got:
        assert headers.get("duban-type") == event["type"], (key, headers)
        assert headers.get("content-type") == "application/cloudevents+json"


def test_intake_records_carry_the_publishers_dedup_key(written):
    case_id, got = written
    mine = {e["type"]: (h, e) for k, h, e in got if k == case_id}
    headers, received = mine["duban.case.received"]
    assert headers["duban-origin-source"] == received["data"]["origin"]["source"] \
        == "/gov/hotline-12345"
    assert headers["duban-origin-id"] == received["data"]["origin"]["id"] == "records-1"
    headers, accepted = mine["duban.case.accepted"]
    assert headers["duban-origin-source"] == accepted["source"] == "/gov/unit-oa"
    assert headers["duban-origin-id"] == accepted["id"] == "records-1-accepted"
    headers, _ = mine["duban.case.assigned"]
    assert "duban-origin-id" not in headers
