"""Intake over real Kafka and Redis: batches, what became of an event, duban.inbound in
both CloudEvents modes, dead letters, bad input of every kind, and deduplication that
survives a restart and a flushed Redis."""
import hashlib
import json
import re
import signal
import time
import urllib.parse
import uuid

import pytest
import requests

from conftest import HOTLINE, OPS, UNIT_OA, problem_event, wait_rebuilt, wait_until
from test_deadline import action, case_doc, records


def event_status(stack, source, event_id, token=HOTLINE):
    path = "/v1/events/{}/{}".format(urllib.parse.quote(source, safe=""),
                                     urllib.parse.quote(event_id, safe=""))
    return stack.get("intake", path, token=token)


def wait_status(stack, source, event_id, status, timeout=30):
    last = []

    def got():
        r = event_status(stack, source, event_id)
        last[:] = [f"{r.status_code} {r.text}"]
        return r.status_code == 200 and r.json()["status"] == status and r.json()
    return wait_until(got, timeout, f"{event_id} {status}", step=0.1,
                      show=lambda: last[0] if last else "-")


def batch(stack, events, token=HOTLINE):
    return stack.post_event(json.dumps(events), token=token,
                            content_type="application/cloudevents-batch+json")


def test_batch_with_good_and_bad_events(stack):
    first = stack.post_event(problem_event("batch-dup"))
    assert first.status_code == 202
    bad_schema = problem_event("batch-bad-schema")
    bad_schema["data"]["kind"] = "rumour"
    foreign = problem_event("batch-foreign", source="/gov/unit-oa")
    events = [problem_event("batch-ok-1"), bad_schema, problem_event("batch-dup"), foreign,
              problem_event("batch-ok-2"), {"not": "an event"}]
    r = batch(stack, events)
    assert r.status_code == 207, r.text
    results = r.json()["results"]
    assert [x["index"] for x in results] == list(range(6))
    assert [x["status"] for x in results] == ["accepted", "rejected", "duplicate",
                                              "rejected", "accepted", "rejected"]
    assert results[1]["error"]["code"] == "schema_violation"
    assert "/data/kind" in {d["pointer"] for d in results[1]["error"]["details"]}
    assert results[2]["case_id"] == first.json()["case_id"]
    assert results[3]["error"]["code"] == "forbidden"
    assert results[5]["error"]["code"] == "schema_violation"
    # The accepted ones are real cases.
    for x in (results[0], results[4]):
        assert stack.wait_for("deadline", f"/v1/cases/{x['case_id']}").status_code == 200


def test_batch_limits(stack):
    r = batch(stack, [problem_event(f"big-{i}") for i in range(501)])
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    r = batch(stack, [])
    assert r.status_code == 422
    r = batch(stack, problem_event("not-a-list"))
    assert r.status_code == 400


def test_what_became_of_an_event(stack):
    r = stack.post_event(problem_event("status-1"))
    case = r.json()["case_id"]
    got = event_status(stack, "/gov/hotline-12345", "status-1").json()
    assert got["status"] == "accepted" and got["case_id"] == case
    assert got["source"] == "/gov/hotline-12345" and got["id"] == "status-1"

    bad = problem_event("status-2")
    bad["data"]["severity"] = "whenever"
    assert stack.post_event(bad).status_code == 422
    # A rejection is recorded after its answer (by the recorder, so that a Redis in
    # trouble never holds up a 4xx: review C9); it shows within moments.
    got = wait_until(lambda: (lambda g: g.status_code == 200 and [g.json()])(
        event_status(stack, "/gov/hotline-12345", "status-2")), 10,
        "the rejection of status-2 recorded")[0]
    assert got["status"] == "rejected" and got["error"]["code"] == "schema_violation"
    # A corrected event with the same id is taken after a rejection.
    r = stack.post_event(problem_event("status-2"))
    assert r.status_code == 202
    assert event_status(stack, "/gov/hotline-12345", "status-2").json()["status"] == "accepted"
    # The 202 comes once the event's record is written: asked at once, each says accepted.
    for i in range(20):
        event_id = f"status-3-{i}"
        assert stack.post_event(problem_event(event_id)).status_code == 202
        got = event_status(stack, "/gov/hotline-12345", event_id).json()
        assert got["status"] == "accepted", got

    assert event_status(stack, "/gov/hotline-12345", "never-sent").status_code == 404
    # Another publisher's source is not yours to look at.
    assert event_status(stack, "/gov/hotline-12345", "status-1",
                        token=UNIT_OA).status_code == 403


def test_inbound_structured_and_binary(stack):
    ev = problem_event("inbound-structured")
    stack.produce("duban.inbound", json.dumps(ev), key="inbound-structured",
                  headers=[("content-type", "application/cloudevents+json")])
    got = wait_status(stack, "/gov/hotline-12345", "inbound-structured", "accepted")
    assert stack.wait_for("deadline", f"/v1/cases/{got['case_id']}").status_code == 200

    ev = problem_event("inbound-binary")
    headers = [("ce_specversion", "1.0"), ("ce_id", "inbound-binary"),
               ("ce_source", "/gov/hotline-12345"), ("ce_type", "duban.problem.reported"),
               ("ce_time", "2026-09-29T10:00:00+08:00"), ("content-type", "application/json")]
    stack.produce("duban.inbound", json.dumps(ev["data"]), key="inbound-binary",
                  headers=headers)
    got = wait_status(stack, "/gov/hotline-12345", "inbound-binary", "accepted")
    c = stack.wait_for("deadline", f"/v1/cases/{got['case_id']}").json()
    assert c["due_at"] == "2026-10-12T23:59:59+08:00"


def test_inbound_garbage_goes_to_dlq_and_the_partition_moves_on(stack):
    key = "same-partition"
    stack.produce("duban.inbound", b'{"specversion": "1.0", "id": ', key=key,
                  headers=[("content-type", "application/cloudevents+json")])
    bad = problem_event("inbound-bad-schema")
    bad["data"]["severity"] = "whenever"
    stack.produce("duban.inbound", json.dumps(bad), key=key,
                  headers=[("content-type", "application/cloudevents+json")])
    stack.produce("duban.inbound", json.dumps(problem_event("inbound-after-garbage")), key=key,
                  headers=[("content-type", "application/cloudevents+json")])
    wait_status(stack, "/gov/hotline-12345", "inbound-after-garbage", "accepted")

    def dead_letters():
        records = [json.loads(line) for line in
                   stack.topic("duban.dlq").decode().splitlines() if line.strip()
                   for line in [line.split("\t", 2)[2]]]
        found = [r for r in records if r["origin"]["topic"] == "duban.inbound"]
        return len(found) >= 2 and found
    inbound = wait_until(dead_letters, 30, "two dead letters from duban.inbound")
    reasons = sorted(r["reason"] for r in inbound)
    assert reasons == ["malformed", "schema_violation"], inbound
    assert all(isinstance(r["origin"]["offset"], int) for r in inbound)
    assert all(r["original"]["value_b64"] for r in inbound)


def big_nesting(depth):
    return b'{"specversion":"1.0","id":"x","source":"/gov/hotline-12345","type":"t","data":' \
        + b"[" * depth + b"]" * depth + b"}"


def with_data(**changes):
    ev = problem_event("bad-data")
    ev["data"].update(changes)
    return ev


def without(key):
    ev = problem_event("bad-missing")
    del ev[key]
    return ev


BAD_INPUT = [
    # (name, body or event, kwargs, status, code)
    ("truncated json", b'{"specversion":"1.0","id":"a"', {}, 400, "malformed"),
    ("empty body", b"", {}, 400, "malformed"),
    ("ten megabytes", b'{"a":"' + b"x" * (10 * 1024 * 1024) + b'"}', {}, 413, "too_large"),
    ("nesting depth 10000", big_nesting(10000), {}, 400, "malformed"),
    ("invalid utf-8", b'{"specversion":"1.0","id":"\xc3\x28"}', {}, 400, "malformed"),
    ("duplicate keys", b'{"id":"a","id":"b"}', {}, 400, "malformed"),
    ("nul character", b'{"id":"a\\u0000b"}', {}, 400, "malformed"),
    ("array as single event", b"[]", {}, 422, "schema_violation"),
    ("wrong types", with_data(severity=5), {}, 422, "schema_violation"),
    ("unknown type", problem_event("bad-type", type="duban.problem.imagined"), {}, 422,
     "schema_violation"),
    ("missing id", without("id"), {}, 422, "schema_violation"),
    ("missing source", without("source"), {}, 422, "schema_violation"),
    ("wrong specversion", problem_event("bad-spec", specversion="0.3"), {}, 422,
     "schema_violation"),
    ("bad time", problem_event("bad-time", time="yesterday"), {}, 422, "schema_violation"),
    ("huge title", with_data(title="长" * 100000), {}, 422, "schema_violation"),
    ("description over 20000 characters", with_data(description="问" * 20001), {}, 422,
     "schema_violation"),
    ("unknown data field", with_data(colour="red"), {}, 422, "schema_violation"),
    ("bad phone", with_data(reporter={"name": "x", "phone": "12345"}), {}, 422,
     "schema_violation"),
    ("wrong token", problem_event("bad-token"), {"token": "nope"}, 401, "unauthenticated"),
    ("no token", problem_event("bad-no-token"), {"token": None}, 401, "unauthenticated"),
    ("token without the scope", problem_event("bad-scope"), {"token": OPS}, 403,
     "forbidden"),
    ("wrong source", problem_event("bad-source", source="/gov/unit-oa"), {}, 403,
     "forbidden"),
    ("media type", problem_event("bad-media"), {"content_type": "text/plain"}, 415,
     "unsupported_media_type"),
    ("action on an unknown case",
     {"specversion": "1.0", "id": "bad-case", "source": "/gov/hotline-12345",
      "type": "duban.case.accepted", "data": {"case_id": "DB0000000000000000000000000X"}},
     {}, 404, "not_found"),
]


@pytest.mark.parametrize("name,body,kw,status,code", BAD_INPUT,
                         ids=[b[0] for b in BAD_INPUT])
def test_bad_input(stack, name, body, kw, status, code):
    r = stack.post_event(body, **kw)
    assert r.status_code == status, r.text[:500]
    err = r.json()["error"]
    assert err["code"] == code
    assert err["message"] and isinstance(err["details"], list)


def test_boundaries_are_accepted(stack):
    # Exactly 20000 characters of description, and a time in the future: accepted, the
    # clock then starts at receipt (DESIGN.md Clocks).
    ev = with_data(description="问" * 20000)
    ev["id"] = "boundary-20000"
    ev["time"] = "2099-01-01T00:00:00+08:00"
    r = stack.post_event(ev)
    assert r.status_code == 202, r.text[:300]
    c = stack.wait_for("deadline", f"/v1/cases/{r.json()['case_id']}").json()
    assert c["clock_start"] == c["received_at"]


def test_healthy_after_bad_input(stack):
    for svc in ("intake", "assignment", "deadline", "notification"):
        assert stack.get(svc, "/readyz", token=None).status_code == 200
    assert stack.post_event(problem_event("after-bad-input")).status_code == 202
    metrics = stack.get("intake", "/metrics", token=None).text
    assert 'status="schema_violation"' in metrics
    assert "duban_intake_kafka_delivery_seconds_bucket" in metrics


def test_duplicate_after_restart(stack):
    r = stack.post_event(problem_event("restart-dup"))
    case = r.json()["case_id"]
    stack.kill("intake", signal.SIGKILL)
    stack.start_missing()
    r = stack.post_event(problem_event("restart-dup"))
    assert r.status_code == 200 and r.json()["case_id"] == case


def test_duplicate_after_redis_flushall(stack):
    r = stack.post_event(problem_event("flush-dup"))
    case = r.json()["case_id"]
    stack.wait_for("deadline", f"/v1/cases/{case}")
    stack.redis("FLUSHALL")
    last = []

    def answered():  # 503 while intake rebuilds its index from duban.cases
        last[:] = [stack.post_event(problem_event("flush-dup"))]
        return last[0].status_code != 503 and last
    r = wait_until(answered, 90, "intake answering after the flush",
                   show=lambda: last[0].text if last else "-")[0]
    assert r.status_code == 200, r.text
    assert r.json() == {"id": "flush-dup", "case_id": case, "status": "duplicate"}
    # Every other service lost its state too: all rebuilt before the next test (which
    # would otherwise meet them rebuilding, as test_intake_crash's reload did).
    wait_rebuilt(stack)


def test_retry_after_an_expired_claim_names_the_same_case(stack):
    """Review C12j: a delivery that timed out but landed, then the publisher's retry
    once the claim expired, made a second case for one problem (case ids were random).
    Now the id derives from source + id: intake names the same case again, and the
    stages after it take the second received event as a copy of the first."""
    since_ms = int(time.time() * 1000) - 1000
    event = problem_event(f"claim-expired-{uuid.uuid4().hex[:8]}")
    first = stack.post_event(event)
    assert first.status_code == 202, first.text
    case = first.json()["case_id"]
    case_doc(stack, case, lambda c: c["state"] == "assigned")
    # What intake knows of the event goes, as when its claim expired with the write
    # unconfirmed (intake's key for it: SHA-256 of source, newline, id).
    digest = hashlib.sha256(f"{event['source']}\n{event['id']}".encode()).hexdigest()
    assert stack.redis("DEL", f"duban:intake:event:{digest}") == "1"
    redelivered = stack.metric(stack.ports["assignment"],
                               "duban_assignment_redeliveries_total") or 0
    second = stack.post_event(event)
    assert second.status_code == 202, second.text
    assert second.json()["case_id"] == case
    received = [e for k, e in records(stack, since_ms=since_ms)
                if k == case and e["type"] == "duban.case.received"]
    assert len(received) == 2 and received[0]["id"] == received[1]["id"], received
    # Deadline read the copy before an action that came after it, and kept one case.
    action(stack, case, "accepted", f"{event['id']}-acc")
    doc = case_doc(stack, case, lambda c: c["state"] == "accepted")
    assert [h["type"] for h in doc["history"]].count("duban.case.received") == 1, doc
    # Assignment took it as a redelivery and assigned nobody again.
    wait_until(lambda: (stack.metric(stack.ports["assignment"],
                                     "duban_assignment_redeliveries_total") or 0)
               > redelivered, 30, "assignment seeing the copy")
    assigned = [e for k, e in records(stack, since_ms=since_ms)
                if k == case and e["type"] == "duban.case.assigned"]
    assert len(assigned) == 1, assigned
    # A rebuild from duban.cases starts the case at its first received event, and not
    # again at the copy (which would undo the assignment and refuse the acceptance).
    stack.redis("FLUSHALL")
    wait_rebuilt(stack)
    doc = case_doc(stack, case, lambda c: c["state"] == "accepted", timeout=60)
    kinds = [h["type"] for h in doc["history"]]
    assert kinds.count("duban.case.received") == 1, kinds
    assert kinds.index("duban.case.assigned") < kinds.index("duban.case.accepted"), kinds


def test_action_right_after_its_case(stack):
    """A publisher may act on a case the moment it learns its id."""
    for i in range(20):
        r = stack.post_event(problem_event(f"act-now-{i}"))
        case = r.json()["case_id"]
        action = {"specversion": "1.0", "id": f"act-now-{i}-accepted",
                  "source": "/gov/hotline-12345", "type": "duban.case.accepted",
                  "data": {"case_id": case}}
        r = stack.post_event(action)
        assert r.status_code == 202, r.text
        assert r.json()["case_id"] == case
    # Published on duban.cases keyed by the case id, so it stays in order with the case.
    actions = [line.split("\t", 2) for line in stack.topic("duban.cases").decode().splitlines()
               if '"act-now-' in line and "duban.case.accepted" in line]
    assert len(actions) == 20
    for key, _, value in actions:
        assert json.loads(value)["data"]["case_id"] == key


def test_unknown_types_share_one_metric_series(stack):
    """Review C10: rejected events were counted under the publisher's own "type", so
    every distinct string made a series that lives as long as the process. Unknown
    types are counted as "other"."""
    tags = [uuid.uuid4().hex for _ in range(3)]
    for tag in tags:
        r = stack.post_event(problem_event(f"flood-{tag}", type=f"x.flood.{tag}"))
        assert r.status_code == 422, r.text
    text = requests.get(stack.url("intake", "/metrics"), timeout=10).text
    assert not any(tag in text for tag in tags)
    assert re.search(r'^duban_intake_events_total\{[^}]*type="other"[^}]*'
                     r'status="schema_violation"\} [1-9]', text, re.M), \
        [line for line in text.splitlines() if "other" in line]
