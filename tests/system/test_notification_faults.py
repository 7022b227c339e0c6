"""Notification under faults, with a real Kannel and a real SMTP server: the gateway
refusing with 503, hanging, down for a minute; notification killed with SIGKILL while it
sends; events and jobs delivered again; Redis flushed; retries running out. Each test
counts what reached the fake SMSC and the SMTP server: every message at least once,
none twice unless notification marked it unknown; the counts are printed."""
import base64
import json
import os
import signal
import time
import uuid

import pytest

from assigning import OwnUnit, group_lag
from conftest import PORTS, wait_rebuilt
from notify_helpers import (ARRIVAL_S, OFFICER_PHONES, deadline_event,  # noqa: F401
                            deadline_events, gateway, gateway_env, new_case,
                            notifications, restart_notification, settled_states,
                            sms_about, wait_until)

# The warnings go to an officer of the module's own unit U-NF.
UNIT = "U-NF"
OFFICER = "O-NF-00"


@pytest.fixture(scope="module", autouse=True)
def own_unit(stack):
    unit = OwnUnit(stack, "NF", handlers=1)
    assert unit.unit == UNIT and unit.officers == [OFFICER]
    OFFICER_PHONES[OFFICER] = unit.phones[OFFICER]
    yield unit
    unit.close()
# The outage of test_gateway_down_for_a_minute; shorter only to debug the test itself.
OUTAGE_S = float(os.environ.get("DUBAN_TEST_SMS_OUTAGE_S", "60"))


def warnings_for(stack, n, prefix):
    """n warnings to OFFICER about n new case numbers (an SMS and an email each)."""
    cases = [f"DB{prefix}{uuid.uuid4().hex[:18].upper()}" for _ in range(n)]
    deadline_events(stack, "duban.case.warning", cases, clock="resolve",
                    due_at="2026-10-12T23:59:59+08:00", unit=UNIT, officer=OFFICER)
    return cases


def counts(kannel, mailbox, cases):
    sms = {c: 0 for c in cases}
    for to, text, _ in kannel.received():
        for c in cases:
            if c in text:
                assert to == OFFICER_PHONES[OFFICER]
                sms[c] += 1
    mail = {c: 0 for c in cases}
    for m in mailbox.messages():
        for c in cases:
            if c in m["Subject"]:
                mail[c] += 1
    return sms, mail


def all_arrived(kannel, mailbox, cases):
    sms, mail = counts(kannel, mailbox, cases)
    return all(sms.values()) and all(mail.values())


def moved_past(stack, kannel, mailbox):
    """Positive evidence that the sender has handled every job to OFFICER written so
    far: a marker warning to OFFICER, whose jobs land behind them on the same partition
    of duban.notifications (keyed by recipient), arrived by SMS and email."""
    marker = warnings_for(stack, 1, "M")
    wait_until(lambda: all_arrived(kannel, mailbox, marker), ARRIVAL_S,
               f"the marker warning {marker[0]}", step=0.5,
               show=lambda: counts(kannel, mailbox, marker))


def check_once(stack, kannel, mailbox, cases, name):
    """Every case's SMS and email arrived; more than once only if marked unknown."""
    wait_until(lambda: all_arrived(kannel, mailbox, cases), 90, "every message arrived",
               step=0.5, show=lambda: counts(kannel, mailbox, cases))
    # Nothing can come again now: every message is settled (none waits for a retry or a
    # reconciliation) and the sender has handled every job written before a marker.
    wait_until(lambda: settled_states(stack, cases, per_case=2), ARRIVAL_S + 30,
               "every message settled", step=0.5,
               show=lambda: {c: [(n["channel"], n["status"]) for n in notifications(stack, c)]
                             for c in cases})
    moved_past(stack, kannel, mailbox)
    sms, mail = counts(kannel, mailbox, cases)
    unknown = set()
    for c in cases:
        for n in notifications(stack, c):
            if n["was_unknown"]:
                unknown.add((c, n["channel"]))
    twice = [(c, "sms") for c in cases if sms[c] > 1] + \
            [(c, "email") for c in cases if mail[c] > 1]
    print(f"\n{name}: {len(cases)} SMS and {len(cases)} emails expected; fake SMSC got "
          f"{sum(sms.values())}, SMTP got {sum(mail.values())}; lost "
          f"{sum(1 for v in sms.values() if not v) + sum(1 for v in mail.values() if not v)}"
          f", twice {len(twice)}, marked unknown {len(unknown)}")
    assert set(twice) <= unknown, (twice, unknown)
    return sms, mail, unknown


def states(stack, cases, channel="sms"):
    return [n for c in cases for n in notifications(stack, c) if n["channel"] == channel]


def test_gateway_refusing_with_503(stack, gateway):
    kannel, mailbox, _ = gateway
    kannel.run("smsc-stop")  # bearerbox queues 3, then answers 503
    try:
        cases = warnings_for(stack, 12, "R")
        assert wait_until(lambda: sum(n["status"] == "temporary-failure" or n["attempts"] > 1
                                      for n in states(stack, cases)) >= 5, ARRIVAL_S)
        # A refused one is tried again while the gateway still refuses.
        wait_until(lambda: [n for n in states(stack, cases) if n["attempts"] > 1], ARRIVAL_S,
                   "an SMS tried again", show=lambda: states(stack, cases))
    finally:
        kannel.run("smsc-start")
    check_once(stack, kannel, mailbox, cases, "gateway refusing (503)")
    assert wait_until(lambda: all(n["status"] in ("sent", "delivered")
                                  for n in states(stack, cases)), ARRIVAL_S)


def test_gateway_hanging(stack, gateway):
    kannel, mailbox, _ = gateway
    assert "suspended" in kannel.admin("suspend")  # sendsms now hangs
    try:
        cases = warnings_for(stack, 6, "H")
        assert wait_until(lambda: any(n["status"] == "unknown"
                                      for n in states(stack, cases)), ARRIVAL_S)
        # The gateway stays hung until the breaker has let another request go to it
        # (one more attempt, and its outcome in).
        tried = sum(n["attempts"] for n in states(stack, cases))
        wait_until(lambda: sum(n["attempts"] for n in states(stack, cases)) > tried and
                   not any(n["status"] == "sending" for n in states(stack, cases)),
                   ARRIVAL_S, "another request to the hung gateway",
                   show=lambda: states(stack, cases))
    finally:
        assert "resumed" in kannel.admin("resume")
    _, _, unknown = check_once(stack, kannel, mailbox, cases, "gateway hanging")
    assert unknown  # the request that hung was not simply sent again


def test_gateway_down_for_a_minute(stack, gateway):
    kannel, mailbox, _ = gateway
    kannel.stop()
    t0 = time.monotonic()
    try:
        cases = warnings_for(stack, 8, "D")
        # Emails go on; SMS wait, retried with backoff.
        assert wait_until(lambda: all(counts(kannel, mailbox, cases)[1].values()), ARRIVAL_S)
        # Refused connections are retried; while the gateway's breaker is open the rest
        # wait without an attempt.
        assert wait_until(lambda: any(n["status"] == "temporary-failure"
                                      for n in states(stack, cases)), ARRIVAL_S)
        # The outage lasts OUTAGE_S (the scenario itself, not a wait for something):
        # through all of it no SMS gets out, and none is given up (one may be caught
        # in the moment of a refused attempt).
        while time.monotonic() - t0 < OUTAGE_S:
            assert not any(counts(kannel, mailbox, cases)[0].values())
            assert all(n["status"] in ("temporary-failure", "queued", "sending")
                       for n in states(stack, cases)), states(stack, cases)
            time.sleep(0.5)  # the pace of the checks during the outage
        assert not any(counts(kannel, mailbox, cases)[0].values())
        waiting = states(stack, cases)
        assert all(n["status"] in ("temporary-failure", "queued") for n in waiting), waiting
        assert sum(n["attempts"] for n in waiting) >= 2  # tried again, not given up
    finally:
        kannel.start()
    check_once(stack, kannel, mailbox, cases, f"gateway down for {OUTAGE_S:.0f} s")


def test_kill_9_while_sending(stack, gateway):
    kannel, mailbox, urls = gateway
    warning_sms = 'channel="sms",template="duban.case.warning.sms",state="sent"'

    def sent():
        return stack.metric(PORTS["notification"], "duban_notifications_total",
                            warning_sms) or 0
    base = sent()
    cases = warnings_for(stack, 150, "K")
    # Killed once notification itself has sent a few: it keeps several requests in
    # flight, and the fake SMSC shows a message only after Kannel has passed it on.
    assert wait_until(lambda: sent() - base >= 5, 30, step=0.01)
    sent_at_kill = sent() - base
    stack.kill("notification", signal.SIGKILL)
    try:
        at_kill = counts(kannel, mailbox, cases)
        print(f"\nkilled with {sent_at_kill:.0f} of {len(cases)} SMS sent; "
              f"{sum(at_kill[0].values())} SMS and {sum(at_kill[1].values())} emails "
              f"had arrived")
        assert sent_at_kill < len(cases)  # the kill came mid-send
    finally:
        restart_notification(stack, **gateway_env(*urls))
    check_once(stack, kannel, mailbox, cases, "kill -9 while sending")


def test_events_and_jobs_delivered_again_go_out_once(stack, gateway):
    kannel, mailbox, _ = gateway
    case = f"DBAGAIN{uuid.uuid4().hex[:18].upper()}"
    event = deadline_event(stack, "duban.case.warning", case, clock="resolve",
                           due_at="2026-10-12T23:59:59+08:00", unit=UNIT,
                           officer=OFFICER)
    for _ in range(2):  # the same event again: a publisher's or a consumer's redelivery
        stack.produce("duban.cases", json.dumps(event, ensure_ascii=False), key=case,
                      headers=[("content-type", "application/cloudevents+json"),
                               ("duban-type", event["type"])])
    assert wait_until(lambda: all_arrived(kannel, mailbox, [case]), ARRIVAL_S)
    # The jobs themselves again on duban.notifications.
    jobs = [line.split(b"\t", 2) for line in stack.topic("duban.notifications").splitlines()
            if case.encode() in line and b'"kind":"job"' in line]
    assert len(jobs) >= 2
    for key, _, value in jobs:
        stack.produce("duban.notifications", value, key=key.decode(),
                      headers=[("duban-kind", "job")])
    # check_once waits for a marker behind the jobs written again.
    sms, mail, _ = check_once(stack, kannel, mailbox, [case], "events delivered again")
    assert sms[case] == 1 and mail[case] == 1


def test_redis_loss_is_rebuilt_from_kafka(stack, gateway):
    kannel, mailbox, _ = gateway
    case = new_case(stack, phone="+8613812340009")
    assert wait_until(lambda: len([n for n in notifications(stack, case)
                                   if n["status"] in ("sent", "delivered")]) >= 3, ARRIVAL_S)
    before = {(n["recipient_id"], n["channel"]): n["status"]
              for n in notifications(stack, case)}
    officer = stack.wait_for("assignment", f"/v1/assignments/{case}").json()["officer"]
    sent_before = len(kannel.received())
    stack.redis("FLUSHALL")
    # The jobs come again after the flush; the rebuilt states keep them from going out.
    jobs = [line.split(b"\t", 2) for line in stack.topic("duban.notifications").splitlines()
            if case.encode() in line and b'"kind":"job"' in line]
    for key, _, value in jobs:
        stack.produce("duban.notifications", value, key=key.decode(),
                      headers=[("duban-kind", "job")])

    def same(v, now):
        return now == v or (v == "sent" and now == "delivered")

    # The states converge while the rebuild replays the topic (a job shows queued until
    # its state records are replayed): wait for all of them, then compare.
    def rebuilt():
        r = stack.get("notification", f"/v1/notifications?case_id={case}")
        got = {(n["recipient_id"], n["channel"]): n["status"]
               for n in r.json()["notifications"]} if r.status_code == 200 else {}
        return set(got) == set(before) and all(same(v, got[k]) for k, v in before.items())
    wait_until(rebuilt, 90, "the states rebuilt",
               show=lambda: f"before {before}, now {notifications(stack, case)}")
    after = {(n["recipient_id"], n["channel"]): n["status"]
             for n in notifications(stack, case)}
    assert set(after) == set(before)
    for k, v in before.items():
        assert same(v, after[k]), (k, v, after[k])
    # A warning after the flush reaches the officer: the case notes were rebuilt too.
    deadline_event(stack, "duban.case.warning", case, clock="resolve",
                   due_at="2026-10-12T23:59:59+08:00")
    assert wait_until(lambda: [m for m in kannel.received()[sent_before:]
                               if case in m[1] and "到期" in m[1]
                               and m[0] == OFFICER_PHONES[officer]], 60)
    # Every service has rebuilt (so the next test finds none rebuilding), and the sender
    # has handled every job written so far, those written again included (its group
    # has committed all of duban.notifications): none of them went out again.
    wait_rebuilt(stack)
    wait_until(lambda: group_lag(stack, "duban-notification-sender",
                                 "duban.notifications") == 0, 120,
               "the sender caught up with duban.notifications", step=1)
    assert [m for m in kannel.received()[sent_before:] if case in m[1]
            and "到期" not in m[1]] == []


def test_retries_run_out_then_dead_letter_and_email_fallback(stack, gateway):
    _, mailbox, urls = gateway
    # A gateway that is not there at all; three attempts.
    restart_notification(stack, **gateway_env(
        f"http://127.0.0.1:{PORTS['sms-nowhere']}/cgi-bin/sendsms?username=duban&password=x", urls[1],
        DUBAN_NOTIFY_MAX_ATTEMPTS=3, DUBAN_NOTIFY_RETRY_BASE_MS=200))
    try:
        case = new_case(stack, phone="+8613812340010",
                        reporter={"anonymous": False, "phone": "+8613812340010",
                                  "email": "reporter.fallback@example.cn"})
        got = wait_until(lambda: [n for n in notifications(stack, case)
                                  if n["template"] == "duban.case.received.sms"
                                  and n["status"] == "technical-failure"], 90)
        assert got and got[0]["attempts"] == 3, notifications(stack, case)
        mails = wait_until(lambda: [m for m in mailbox.messages()
                                    if m["To"] == "reporter.fallback@example.cn"], ARRIVAL_S)
        assert len(mails) == 1 and case in mails[0].get_content()
        dlq = [json.loads(line.split(b"\t", 2)[2]) for line in
               stack.topic("duban.dlq").splitlines() if b"technical-failure" in line]
        mine = [d for d in dlq if d["origin"]["topic"] == "duban.notifications"]
        assert any(case.encode() in base64.b64decode(d["original"]["value_b64"])
                   for d in mine)
    finally:
        restart_notification(stack, **gateway_env(*urls))
