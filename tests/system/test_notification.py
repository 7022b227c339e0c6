"""Notification against a real SMS gateway (Kannel: bearerbox, smsbox, the fake SMSC) and
a real SMTP server (aiosmtpd): exact Chinese text in concatenated parts, MIME email,
delivery reports, the reporter's own acknowledgement, recusal, the SMS allow-list, quiet
hours and per-recipient digests."""
import hmac
import json
import os
import shutil
import signal
import subprocess
import time
import uuid

import pytest
import requests

from assigning import OwnUnit
from conftest import PORTS
from notify_helpers import (ARRIVAL_S, OFFICER_PHONES, ROOT, deadline_event,  # noqa: F401
                            gateway, gateway_env, jobs_about, moments, new_case,
                            notifications, planner_passed, restart_notification,
                            settled_states, sms_about, wait_until)


@pytest.fixture(scope="module")
def own_unit(stack):
    """The module's own unit U-NT: O-NT-00 is the recipient of the rate-limit test (no
    other test's messages fall into its window), O-NT-01 receives the marker warnings
    that show notification has moved past a point."""
    unit = OwnUnit(stack, "NT", handlers=2)
    yield unit
    unit.close()


def passed(stack, kannel, own_unit, case):
    officer = own_unit.officers[1]
    return planner_passed(stack, kannel, case, own_unit.unit, officer,
                          own_unit.phones[officer])


def template(name):
    with open(os.path.join(ROOT, "deploy", "config", "templates", name), encoding="utf-8") as f:
        return f.read()


def test_assignment_sms_email_receipt_and_reporter(stack, gateway):
    kannel, mailbox, _ = gateway
    reporter = "+8613812340001"
    case = new_case(stack, phone=reporter)
    officer = stack.wait_for("assignment", f"/v1/assignments/{case}").json()["officer"]
    # The dates in the text are the ones the deadline service computed for the case.
    accept_by, due_at = moments(stack, case)
    want = f"【督办】督办事项{case}请于{accept_by}前签收、{due_at}前办结。"
    got = wait_until(lambda: [m for m in sms_about(kannel, case) if "签收" in m[1]], ARRIVAL_S)
    assert got == [(OFFICER_PHONES[officer], want, 2)]  # 78 characters: two parts
    # The reporter's acknowledgement reaches the reporter's number and nobody else.
    ack = f"【督办】您反映的问题已受理，编号{case}，请凭编号查询办理进展。"
    got = wait_until(lambda: [m for m in sms_about(kannel, case) if "受理" in m[1]], ARRIVAL_S)
    assert got == [(reporter, ack, 1)]
    assert all(to == reporter for to, text, _ in kannel.received() if "您反映" in text
               and case in text)

    mails = wait_until(lambda: [m for m in mailbox.messages() if case in m["Subject"]], ARRIVAL_S)
    assert len(mails) == 1
    mail = mails[0]
    assert mail["Subject"] == f"【督办】督办事项 {case} 已交办，请及时签收"
    assert mail["To"] == "feng.xue@duban.example" if officer == "O-IG05-FENG" \
        else mail["To"] == "zheng.guoqiang@duban.example"
    assert mail["Date"] is not None and mail["Message-ID"].endswith("@duban>")
    body = template("duban.case.assigned.email.txt").split("\n\n", 1)[1]
    for k, v in {"case_id": case, "unit_name": "市纪委监委派驻第五纪检监察组",
                 "title": "某街道便民服务窗口推诿扯皮", "accept_by": accept_by,
                 "due_at": due_at}.items():
        body = body.replace("{{" + k + "}}", v)
    assert mail.get_content().replace("\r\n", "\n") == body

    # Kannel's delivery report moves the SMS to delivered; the answer masks numbers.
    def states():
        return {(n["recipient_id"], n["channel"]): n for n in notifications(stack, case)}
    s = wait_until(lambda: states().get((officer, "sms"), {}).get("status") == "delivered"
                   and states(), ARRIVAL_S)
    assert s, states()
    assert s[(officer, "sms")]["parts"] == 2 and s[(officer, "sms")]["chars"] == 78
    assert s[(officer, "email")]["status"] == "sent"
    assert s[("reporter", "sms")]["recipient"] == "+86138****0001"
    assert reporter not in json.dumps(list(s.values()))
    metrics = stack.get("notification", "/metrics", token=None).text
    assert 'duban_notifications_total{channel="sms",template="duban.case.assigned.sms",' \
           'state="delivered"}' in metrics
    assert 'duban_notification_provider_seconds_count{provider="kannel"}' in metrics


def test_recused_officers_are_never_told(stack, gateway, own_unit):
    kannel, _, _ = gateway
    case = new_case(stack, phone="+8613812340002")
    stack.wait_for("assignment", f"/v1/assignments/{case}")
    wait_until(lambda: sms_about(kannel, case), ARRIVAL_S)
    # O-IG05-WANG declared a conflict with U-STREET-07: an event naming him tells him
    # nothing; the level-4 escalation tells the unit head, supervisors and leaders.
    deadline_event(stack, "duban.case.warning", case, clock="resolve",
                   due_at="2026-10-12T23:59:59+08:00", unit="U-IG-05", officer="O-IG05-WANG")
    deadline_event(stack, "duban.case.escalated", case, level=4,
                   due_at="2026-10-12T23:59:59+08:00", unit="U-IG-05", officer="O-IG05-WANG")
    heads = {OFFICER_PHONES[o] for o in ("O-IG05-ZHENG", "O-CMO-ZHAO", "O-CMO-SUN")}
    got = wait_until(lambda: heads <= {to for to, t, _ in sms_about(kannel, case)
                                       if "4级督办" in t}, ARRIVAL_S)
    assert got, sms_about(kannel, case)
    # Notification has handled both events (a later marker went through), so a job for
    # WANG would be on duban.notifications by now: there is none, and no SMS.
    passed(stack, kannel, own_unit, case)
    jobs = jobs_about(stack, case)
    assert {"O-IG05-ZHENG", "O-CMO-ZHAO", "O-CMO-SUN"} <= {j["recipient_id"] for j in jobs}
    assert [j for j in jobs if j["recipient_id"] == "O-IG05-WANG"] == []
    assert not [m for m in sms_about(kannel, case) if m[0] == OFFICER_PHONES["O-IG05-WANG"]]
    told = {n["recipient_id"] for n in notifications(stack, case)}
    assert "O-IG05-WANG" not in told and {"O-IG05-ZHENG", "O-CMO-ZHAO", "O-CMO-SUN"} <= told


def test_sms_template_using_the_title_is_refused_at_load(stack, tmp_path):
    config = tmp_path / "config"
    shutil.copytree(stack.config_dir, config)
    (config / "templates" / "duban.case.assigned.sms.txt").write_text(
        "【督办】{{title}}请于{{accept_by}}前签收", encoding="utf-8")
    binary = os.path.join(ROOT, stack.env["DUBAN_BUILD_DIR"], "services", "notification",
                          "duban-notification")
    env = dict(stack.env, DUBAN_CONFIG_DIR=str(config), DUBAN_NOTIFICATION_PORT=str(PORTS["notification-probe"]))
    out = subprocess.run([binary], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode != 0
    assert "templates/duban.case.assigned.sms.txt: {{title}} is not allowed in an SMS" \
        in out.stderr


def dlr(stack, **params):
    return requests.get(stack.url("notification", "/v1/dlr"), params=params, timeout=10)


def test_delivery_reports_only_from_the_allow_list_and_with_our_mac(stack, gateway):
    kannel, _, urls = gateway
    forged = {"k": "0" * 64, "t": "DB01M8N037AQ9D74ZJ658H02EN4P", "m": "f" * 64, "s": "1"}
    # From loopback (allowed by default) but without the MAC of a message we sent.
    r = dlr(stack, **forged)
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert (error["code"], error["message"]) == ("forbidden",
                                                 "not a delivery report we asked for")
    # With smsbox's address (loopback) outside DUBAN_DLR_ALLOW, Kannel's own reports are
    # refused too: the officer's SMS arrives, and stays sent, not delivered.
    restart_notification(stack, **gateway_env(*urls, DUBAN_DLR_ALLOW="10.0.0.0/8, fd00::/8"))
    try:
        r = dlr(stack, **forged)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["message"] == \
            "delivery reports are taken only from DUBAN_DLR_ALLOW"
        case = new_case(stack, phone="+8613812340011")
        officer = stack.wait_for("assignment", f"/v1/assignments/{case}").json()["officer"]
        assert wait_until(lambda: [m for m in sms_about(kannel, case) if "签收" in m[1]], ARRIVAL_S)
        # Kannel's reports were answered 403 (the forged one above was the first).
        refused = 'route="/v1/dlr",method="GET",code="403"'
        assert wait_until(lambda: stack.metric(PORTS["notification"],
                                               "duban_http_requests_total", refused) >= 2, ARRIVAL_S)
        sms = [n for n in notifications(stack, case)
               if n["recipient_id"] == officer and n["channel"] == "sms"]
        assert [n["status"] for n in sms] == ["sent"], sms
    finally:
        restart_notification(stack, **gateway_env(*urls))
    # The report Kannel sends when the SMSC rejects a message (status 16), with the MAC
    # notification put in the dlr-url: HMAC-SM3 under the blinding key derived from the
    # PII key, computed here by Python's hmac. The SMS becomes permanent-failure.
    blind = hmac.new(bytes.fromhex(stack.env["DUBAN_PII_KEY"]), b"duban blind v1",
                     "sm3").digest()
    key = sms[0]["key"]
    mac = hmac.new(blind, f"dlr:{key}".encode(), "sm3").hexdigest()
    r = dlr(stack, k=key, t=case, m=mac, s="16")
    assert r.status_code == 200 and r.json() == {"status": "permanent-failure"}, r.text
    assert [n["status"] for n in notifications(stack, case)
            if n["recipient_id"] == officer and n["channel"] == "sms"] == ["permanent-failure"]
    # A value that is not an address stops the start, naming the variable.
    binary = os.path.join(ROOT, stack.env["DUBAN_BUILD_DIR"], "services", "notification",
                          "duban-notification")
    env = dict(stack.env, DUBAN_DLR_ALLOW="kannel.local", DUBAN_NOTIFICATION_PORT=str(PORTS["notification-probe"]))
    out = subprocess.run([binary], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode != 0
    assert "DUBAN_DLR_ALLOW: 'kannel.local' is not an IPv4 or IPv6 address or prefix" \
        in out.stderr


def test_delivery_report_while_kafka_is_frozen(stack, gateway):
    """Review C1. A delivery report's handler writes the new state to
    duban.notifications and waits 5 s for Kafka's acknowledgement; the producer gives a
    message up after 5 s too, so with the broker frozen the report of that write comes
    after the handler has answered 503 and returned. It used to land in the handler's
    dead stack frame (a stack-use-after-return under the ASan build, which aborts
    notification); it now lands in an ack group that outlives the handler. After the
    broker is back, notification answers and the report, sent again, is taken."""
    kannel, _, urls = gateway
    case = new_case(stack, phone="+8613812340012")
    officer = stack.wait_for("assignment", f"/v1/assignments/{case}").json()["officer"]
    wait_until(lambda: [m for m in sms_about(kannel, case) if "签收" in m[1]], ARRIVAL_S)
    sms = wait_until(lambda: [n for n in notifications(stack, case)
                              if n["recipient_id"] == officer and n["channel"] == "sms"],
                     ARRIVAL_S)
    key = sms[0]["key"]
    blind = hmac.new(bytes.fromhex(stack.env["DUBAN_PII_KEY"]), b"duban blind v1",
                     "sm3").digest()
    mac = hmac.new(blind, f"dlr:{key}".encode(), "sm3").hexdigest()
    pid = int(open(os.path.join(stack.var_dir, "kafka", "kafka.pid")).read())
    before = stack.pid("notification")
    os.kill(pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        r = requests.get(stack.url("notification", "/v1/dlr"), timeout=30,
                         params={"k": key, "t": case, "m": mac, "s": "1"})
        answered = time.monotonic() - start
        assert r.status_code == 503, r.text
        # Past the producer's delivery timeout: the late report has come by now.
        time.sleep(max(0.0, 8 - answered))  # the fault's duration, not a wait for it
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: stack.get("notification", "/readyz", token=None).status_code == 200,
               60, "notification ready after the broker is back", step=0.2)
    assert stack.pid("notification") == before, "notification restarted"
    r = wait_until(lambda: (lambda x: x.status_code == 200 and x)(
        requests.get(stack.url("notification", "/v1/dlr"), timeout=30,
                     params={"k": key, "t": case, "m": mac, "s": "1"})),
        30, "the report taken once Kafka is back", step=0.5)
    assert r.json()["status"] in ("sent", "delivered"), r.text
    print(f"\ndelivery report with the broker frozen: 503 after {answered:.1f} s; "
          f"taken again afterwards: {r.json()['status']}")


def test_quiet_hours_hold_non_urgent_sms_until_the_window_ends(stack, gateway):
    kannel, mailbox, urls = gateway
    # A quiet window from an hour ago to QUIET_S from now, in Asia/Shanghai. The
    # restart and the case take part of it (over 10 s once under ASan), so it is long
    # enough to see the SMS held, and the test checks that they come after the window's
    # end (whole seconds: up to 1 s before the moment asked for), not after a time of
    # its own.
    quiet_s = 30
    now = time.time() + 8 * 3600
    start, end = time.gmtime(now - 3600), time.gmtime(now + quiet_s)
    window_ends = time.monotonic() + quiet_s - 1
    window = f"{time.strftime('%H:%M:%S', start)}-{time.strftime('%H:%M:%S', end)}"
    restart_notification(stack, **gateway_env(*urls, DUBAN_NOTIFY_QUIET_HOURS=window))
    try:
        case = new_case(stack, phone="+8613812340003")
        stack.wait_for("assignment", f"/v1/assignments/{case}")
        deadline_event(stack, "duban.case.escalated", case, level=3,
                       due_at="2026-10-12T23:59:59+08:00", unit="U-IG-05")
        # Level 3 goes through at once; the assignment SMS and the acknowledgement wait.
        assert wait_until(lambda: [m for m in sms_about(kannel, case) if "3级督办" in m[1]], 10)
        assert not [m for m in sms_about(kannel, case) if "3级督办" not in m[1]]
        assert wait_until(lambda: [m for m in mailbox.messages() if case in m["Subject"]], 10)
        # The reporter's job and the officer's are on different partitions of
        # duban.notifications: the sender may take one a poll later than the other.
        want = {"duban.case.assigned.sms", "duban.case.received.sms"}

        def held():
            return {n["template"] for n in notifications(stack, case)
                    if n["status"] == "queued"}
        assert wait_until(lambda: held() == want, 5), held()
        assert time.monotonic() < window_ends, "the setup took the whole quiet window"
        got = wait_until(lambda: len([m for m in sms_about(kannel, case)
                                      if "3级督办" not in m[1]]) == 2,
                         quiet_s + ARRIVAL_S)
        assert got and time.monotonic() >= window_ends, \
            f"released {window_ends - time.monotonic():.1f} s before the window ended"
    finally:
        restart_notification(stack, **gateway_env(*urls))


def test_rate_limit_folds_the_excess_into_one_digest(stack, gateway, own_unit):
    kannel, _, urls = gateway
    # A recipient of the test's own: nothing else is sent to it in the window.
    officer = own_unit.officers[0]
    phone = own_unit.phones[officer]
    window = 30
    restart_notification(stack, **gateway_env(*urls, DUBAN_NOTIFY_SMS_PER_HOUR=3,
                                              DUBAN_NOTIFY_RATE_WINDOW_S=window))
    try:
        # Start early in a window so that all six land in it.
        wait_until(lambda: time.time() % window < 5, window + 1)
        cases = [f"DBRATE{uuid.uuid4().hex[:20].upper()}" for _ in range(6)]
        for c in cases:
            deadline_event(stack, "duban.case.warning", c, clock="resolve",
                           due_at="2026-10-12T23:59:59+08:00", unit=own_unit.unit,
                           officer=officer)

        def mine():
            return [t for to, t, _ in kannel.received() if to == phone]
        # Every one of the six SMS is either sent or folded (a folded one is never sent
        # on its own): three of each, and the three sent reach the phone.
        sms = wait_until(lambda: settled_states(stack, cases, "sms"), ARRIVAL_S,
                         "the six warnings sent or folded",
                         show=lambda: {c: [n["status"] for n in notifications(stack, c)]
                                       for c in cases})
        assert len(sms) == 6 and sum(n["status"] == "folded" for n in sms) == 3, sms
        singles = wait_until(lambda: len(mine()) >= 3 and mine(), ARRIVAL_S,
                             "the three SMS sent")
        assert len(singles) == 3 and all(any(c in t for c in cases) for t in singles), \
            singles
        digest = wait_until(lambda: [t for t in mine() if "另有" in t], window + 30,
                            "the digest")
        assert len(digest) == 1 and "另有3条督办提醒" in digest[0]
        # Nothing more can come: the digest is no longer due, and every SMS of the six
        # is settled.
        wait_until(lambda: not [m for m in stack.redis("ZRANGE", "duban:notify:due", "0",
                                                       "-1").split("\n")
                                if m.startswith(f"d {officer} ")], 30,
                   "the digest done")
        assert len(mine()) == 4, mine()
    finally:
        restart_notification(stack, **gateway_env(*urls))


def test_closed_tells_the_reporter_unless_anonymous(stack, gateway, own_unit):
    kannel, _, _ = gateway
    reporter = "+8613812340004"
    named = new_case(stack, phone=reporter)
    anonymous = new_case(stack, phone="+8613812340005",
                         reporter={"anonymous": True, "phone": "+8613812340005"})
    for case in (named, anonymous):
        stack.wait_for("assignment", f"/v1/assignments/{case}")
        event = {"specversion": "1.0", "id": f"close-{case}", "source": "/gov/unit-oa",
                 "type": "duban.case.closed", "time": "2026-10-12T18:00:00+08:00",
                 "data": {"case_id": case, "actor": "O-CMO-ZHAO"}}
        stack.produce("duban.cases", json.dumps(event, ensure_ascii=False), key=case,
                      headers=[("content-type", "application/cloudevents+json"),
                               ("duban-type", "duban.case.closed")])
    want = f"【督办】您反映的问题（编号{named}）已办结销号，感谢您的监督。"
    assert wait_until(lambda: [m for m in sms_about(kannel, named) if "销号" in m[1]], ARRIVAL_S) \
        == [(reporter, want, 1)]
    # The anonymous reporter's case: the officer hears of the assignment, the reporter
    # of nothing, ever.
    assert wait_until(lambda: sms_about(kannel, anonymous), ARRIVAL_S)
    # Notification has handled the close (a later marker went through): no job for
    # the reporter is on duban.notifications, and no SMS reached the number.
    passed(stack, kannel, own_unit, anonymous)
    assert [j for j in jobs_about(stack, named) if j["recipient_id"] == "reporter"]
    assert [j for j in jobs_about(stack, anonymous) if j["recipient_id"] == "reporter"] == []
    assert all(to != "+8613812340005" for to, _, _ in kannel.received())
    assert "reporter" not in {n["recipient_id"] for n in notifications(stack, anonymous)}
