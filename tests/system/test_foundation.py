"""One event through all four services over real Kafka and Redis, the error shape on
bad requests, reporter protection at rest, and a clean stop on SIGTERM."""
import json
import os
import time
import uuid

import pytest
import requests

from assigning import OwnUnit
from conftest import HOTLINE, OPS, UNIT_OA, problem_event, wait_until
from notify_helpers import deadline_event, notifications


def assert_error(r, status, code):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["details"], list)
    return err


# The example's reporter with an identity of this module's own: other modules post
# the example's own reporter, and some write it in clear to duban.inbound as a
# publisher does; what this module looks for at rest must be what it sent itself.
REPORTER = {"anonymous": False, "name": "司马基础", "phone": "+8613812349901",
            "email": "foundation.reporter@example.cn"}


@pytest.fixture(scope="module")
def case(stack):
    """Posts DESIGN.md's example once (with REPORTER); returns its case id."""
    event = problem_event("sys-0001")
    event["data"]["reporter"] = dict(REPORTER)
    r = stack.post_event(event)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "accepted"
    assert body["id"] == "sys-0001"
    assert body["case_id"].startswith("DB") and len(body["case_id"]) == 28
    return body["case_id"]


def test_health_and_readiness(stack):
    for svc in ("intake", "assignment", "deadline", "notification"):
        assert stack.get(svc, "/healthz", token=None).json() == {"status": "ok"}
        assert stack.get(svc, "/readyz", token=None).status_code == 200


def test_case_is_assigned_without_conflict(stack, case):
    r = stack.wait_for("assignment", f"/v1/assignments/{case}")
    assert r.status_code == 200, r.text
    a = r.json()
    # rules.json: R-STREETS sends problems about U-STREET-07 to the 5th inspection group.
    assert a["unit"] == "U-IG-05"
    assert a["rule"] == "R-STREETS"
    # O-IG05-WANG declared a conflict with U-STREET-07: recused, never assigned.
    assert a["officer"] in ("O-IG05-ZHENG", "O-IG05-FENG")
    assert {"officer": "O-IG05-WANG", "reason": "conflict"} in a["recused"]
    assert a["needs_manual"] is False


def test_deadline_serves_due_at_on_the_working_day_calendar(stack, case):
    r = stack.wait_for("deadline", f"/v1/cases/{case}",
                       pred=lambda r: r.status_code == 200 and r.json()["assignee"])
    assert r.status_code == 200, r.text
    c = r.json()
    # DESIGN.md's worked example: high, reported 2026-09-29T10:00+08:00.
    assert c["accept_by"] == "2026-09-30T23:59:59+08:00"
    assert c["due_at"] == "2026-10-12T23:59:59+08:00"
    assert c["warn_at"] == "2026-10-09T00:00:00+08:00"
    assert c["escalations"] == [{"level": 3, "at": "2026-10-19T23:59:59+08:00"},
                                {"level": 4, "at": "2026-10-26T23:59:59+08:00"}]
    assert c["calendar_provisional"] is False
    assert c["state"] == "assigned"
    assert c["unit"] == "U-IG-05"
    # Backdated: every moment has passed, so each timer fired once, in the order of
    # its moment, around the assignment.
    r = stack.wait_for("deadline", f"/v1/cases/{case}",
                       pred=lambda r: len(r.json().get("history", [])) >= 7)
    types = [h["type"] for h in r.json()["history"]]
    assert types[0] == "duban.case.received"
    assert types.count("duban.case.assigned") == 1
    assert [t for t in types if t != "duban.case.assigned"][1:] == [
        "duban.case.overdue", "duban.case.warning", "duban.case.overdue",
        "duban.case.escalated", "duban.case.escalated"]
    assert r.json()["escalation_level"] == 4


def test_officer_gets_sms_and_email_in_the_outbox(stack, case):
    r = stack.wait_for("notification", f"/v1/notifications?case_id={case}",
                       pred=lambda r: r.status_code == 200 and
                       len(r.json()["notifications"]) >= 3)
    notes = r.json()["notifications"]
    officer = stack.get("assignment", f"/v1/assignments/{case}").json()["officer"]
    to_officer = {n["channel"]: n for n in notes if n["recipient_id"] == officer}
    assert set(to_officer) == {"sms", "email"}
    assert "****" in to_officer["sms"]["recipient"]  # masked in the answer

    sms = [json.load(open(p, encoding="utf-8")) for p in stack.outbox_files()
           if p.endswith(".json")]
    officer_sms = [s for s in sms if s["case_id"] == case
                   and s["template"] == "duban.case.assigned.sms"]
    assert len(officer_sms) == 1
    text = officer_sms[0]["text"]
    assert text.startswith("【督办】") and case in text
    assert "2026-09-30 23:59" in text and "2026-10-12 23:59" in text
    # No allegation text or names in an SMS.
    assert "推诿" not in text and "街道" not in text
    assert officer_sms[0]["parts"] == (1 if officer_sms[0]["chars"] <= 70 else 2)

    emails = [open(p, encoding="utf-8").read() for p in stack.outbox_files()
              if p.endswith(".eml")]
    # The assignment's email (the case is backdated, so its timers' emails are there
    # too).
    mine = [e for e in emails if case in e and "已交由" in e]
    assert len(mine) == 1
    assert "Subject: =?UTF-8?B?" in mine[0] and "Date: " in mine[0]
    assert "某街道便民服务窗口推诿扯皮" in mine[0]  # the email may carry the title


def test_duplicate_event_answers_first_case(stack, case):
    event = problem_event("sys-0001")
    event["data"]["reporter"] = dict(REPORTER)
    r = stack.post_event(event)
    assert r.status_code == 200, r.text
    assert r.json() == {"id": "sys-0001", "case_id": case, "status": "duplicate"}


BAD_REQUESTS = [
    # (name, kwargs for post_event, status, code)
    ("no token", dict(token=None), 401, "unauthenticated"),
    ("wrong token", dict(token="not-a-token"), 401, "unauthenticated"),
    ("token without events:write", dict(token=OPS), 403, "forbidden"),
    ("source of another client", dict(token=UNIT_OA), 403, "forbidden"),
    ("text/plain", dict(content_type="text/plain"), 415, "unsupported_media_type"),
]


@pytest.mark.parametrize("name,kw,status,code", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_rejected_requests_have_the_error_shape(stack, name, kw, status, code):
    assert_error(stack.post_event(problem_event(f"bad-{name}"), **kw), status, code)


def test_401_names_the_scheme(stack):
    r = stack.post_event(problem_event("bad-401"), token=None)
    assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")


def test_body_over_one_mebibyte_is_413(stack):
    body = b'{"pad":"' + b"x" * (2 * 1024 * 1024) + b'"}'
    assert_error(stack.post_event(body), 413, "too_large")


@pytest.mark.parametrize("body", [b'{"specversion":"1.0","id":', b'"\xff\xfe"',
                                  b'{"id":"a","id":"b"}'],
                         ids=["truncated", "invalid utf-8", "duplicate keys"])
def test_malformed_json_is_400(stack, body):
    assert_error(stack.post_event(body), 400, "malformed")


def test_schema_violation_is_422_with_pointers(stack):
    event = problem_event("bad-schema")
    del event["data"]["title"]
    event["data"]["severity"] = "apocalyptic"
    err = assert_error(stack.post_event(event), 422, "schema_violation")
    pointers = {d["pointer"] for d in err["details"]}
    assert "/data/severity" in pointers
    assert any(p in ("/data", "/data/title") for p in pointers)


def test_unknown_path_and_method(stack):
    assert_error(stack.get("intake", "/v1/nothing"), 404, "not_found")
    r = requests.delete(stack.url("intake", "/v1/events"), timeout=5)
    assert_error(r, 405, "method_not_allowed")
    assert "POST" in r.headers["Allow"]


def test_unknown_case_is_404(stack):
    assert_error(stack.get("deadline", "/v1/cases/DB0000000000000000000000000X"), 404,
                 "not_found")


def test_services_still_work_after_bad_input(stack):
    r = stack.post_event(problem_event("sys-after-bad", time="2026-11-27T09:00:00+08:00"))
    assert r.status_code == 202, r.text
    case = r.json()["case_id"]
    r = stack.wait_for("deadline", f"/v1/cases/{case}")
    assert r.status_code == 200
    # Friday 27 Nov 2026 + 5 working days = Friday 4 Dec.
    assert r.json()["due_at"] == "2026-12-04T23:59:59+08:00"
    for svc in ("intake", "assignment", "deadline", "notification"):
        assert stack.get(svc, "/readyz", token=None).status_code == 200
    metrics = stack.get("intake", "/metrics", token=None).text
    assert "duban_http_requests_total" in metrics
    assert 'status="accepted"' in metrics


def test_reporter_identity_never_at_rest_in_clear(stack, case):
    """The reporter's name, phone and email appear nowhere in Kafka, Redis, the logs or
    any other file of the stack, except the phone as the destination of the reporter's
    own SMS in the outbox."""
    stack.wait_for("notification", f"/v1/notifications?case_id={case}",
                   pred=lambda r: len(r.json().get("notifications", [])) >= 3)
    secrets_ = [REPORTER["name"].encode(), REPORTER["phone"].encode(),
                REPORTER["phone"][3:].encode(), REPORTER["email"].encode()]
    cases_topic = stack.topic("duban.cases")
    assert case.encode() in cases_topic  # the dump is real
    for s in secrets_:
        assert s not in cases_topic
    leaks = []
    outbox = os.path.realpath(stack.outbox)
    for base, _, files in os.walk(stack.var_dir):
        for f in files:
            path = os.path.join(base, f)
            if os.path.realpath(path).startswith(outbox) or f == "dev-pii.key":
                continue
            try:
                data = open(path, "rb").read()
            except OSError:
                continue
            leaks += [(path, s) for s in secrets_ if s in data]
    assert leaks == []
    # The outbox holds the phone only as an SMS destination, never name or email.
    for path in stack.outbox_files():
        data = open(path, "rb").read()
        assert REPORTER["name"].encode() not in data
        assert REPORTER["email"].split("@")[0].encode() not in data


def test_outbox_that_cannot_be_written_is_retried_not_left_queued(stack):
    """A warning whose outbox files cannot be written (a regular file stands where the
    outbox folder was: ENOTDIR, which root cannot override either) becomes a
    temporary-failure with a retry, and is written and "sent" once the folder is
    back. It used to stay "queued" with nothing to take it up again."""
    unit = OwnUnit(stack, "OB", handlers=1)
    officer = unit.officers[0]
    case = f"DBOB{uuid.uuid4().hex[:22].upper()}"
    away = stack.outbox + ".away"
    try:
        os.rename(stack.outbox, away)
        open(stack.outbox, "w").close()
        try:
            deadline_event(stack, "duban.case.warning", case, clock="resolve",
                           due_at="2026-10-12T23:59:59+08:00", unit=unit.unit,
                           officer=officer)

            def failed():
                notes = notifications(stack, case)
                return len(notes) == 2 and \
                    all(n["status"] == "temporary-failure" for n in notes) and notes
            wait_until(failed, 60, "SMS and email of the warning temporary failures",
                       step=0.3, show=lambda: notifications(stack, case))
        finally:
            os.remove(stack.outbox)
            os.rename(away, stack.outbox)

        def sent():
            notes = notifications(stack, case)
            return len(notes) == 2 and all(n["status"] == "sent" for n in notes) and notes
        notes = wait_until(sent, 120, "SMS and email sent once the outbox is back",
                           step=0.5, show=lambda: notifications(stack, case))
        assert {n["channel"] for n in notes} == {"sms", "email"}
        assert all(n["attempts"] >= 2 for n in notes), notes
        files = [p for p in stack.outbox_files() if case in open(p, encoding="utf-8").read()]
        assert len(files) == 2, files
    finally:
        unit.close()


def test_role_recipients_need_a_known_subject_unit(stack):
    """Recusal fails closed (review C8). An overdue goes to the officer and the unit
    head; whether the head must be left out depends on the unit the case is about. With
    no subject unit in the event and no summary of the case in Redis (never seen by
    notification, or evicted), nothing is sent and the event is dead-lettered saying
    why; it used to go to everyone on the route. With the subject unit in the event, as
    deadline's timer events now carry it, both are told."""
    unit = OwnUnit(stack, "OB", handlers=2, head=1)
    officer, head = unit.officers
    since = int(time.time() * 1000)
    try:
        unknown = f"DBOB{uuid.uuid4().hex[:22].upper()}"
        deadline_event(stack, "duban.case.overdue", unknown, clock="resolve",
                       due_at="2026-10-12T23:59:59+08:00", unit=unit.unit, officer=officer)
        known = f"DBOB{uuid.uuid4().hex[:22].upper()}"
        deadline_event(stack, "duban.case.overdue", known, clock="resolve",
                       due_at="2026-10-12T23:59:59+08:00", unit=unit.unit, officer=officer,
                       subject_unit="U-OB-SUBJECT")

        def told(case):
            notes = notifications(stack, case)
            return len(notes) == 4 and notes
        notes = wait_until(lambda: told(known), 60, "the officer and the head told",
                           step=0.3, show=lambda: notifications(stack, known))
        assert {(n["recipient_id"], n["channel"]) for n in notes} == {
            (officer, "sms"), (officer, "email"), (head, "sms"), (head, "email")}

        def dead_letter():
            for line in stack.topic("duban.dlq", since_ms=since).decode().splitlines():
                key, _, value = line.split("\t", 2)
                record = json.loads(value)
                # deadline dead-letters it too (a case it has not seen): not that one
                if key == unknown and "recusals" in record.get("detail", ""):
                    return record
            return None
        record = wait_until(dead_letter, 60, f"a dead letter for {unknown}", step=0.3)
        assert record["reason"] == "not_found", record
        assert "subject unit is unknown" in record["detail"], record
        assert record["origin"]["topic"] == "duban.cases", record
        # The dead letter is written once the event was handled: nothing was planned.
        assert notifications(stack, unknown) == []
    finally:
        unit.close()
