"""Deadline over real Kafka and Redis: timers once each and in order, extensions,
reopening, refused transitions, the ledger and statistics, a kill -9 while 5,000 timers
fall due, and two instances splitting the timers while one is killed.

Tests that need timers to fall due at a chosen moment restart deadline with
DUBAN_DEADLINE_CLOCK_OFFSET_MS, its clock set a little before that moment, and put it back
on the real clock afterwards.

The module runs on a stack of its own: it posts 7,000 cases, flushes Redis and moves
deadline's clock, none of which other modules should meet or pay for."""
import datetime
import glob
import json
import os
import re
import signal
import subprocess
import time
import uuid

import pytest
import requests

from assigning import OwnUnit, subject_of
from conftest import ROOT, UNIT_OA, Stack, problem_event, wait_rebuilt, wait_until

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
PREFIX = "DL"  # the module's own unit


@pytest.fixture(scope="module")
def stack(own_stack):
    """Every test of this module runs on the module's own stack."""
    return own_stack


def _calendar():
    off, on = set(), set()
    for path in glob.glob(os.path.join(ROOT, "deploy", "config", "calendar", "*.json")):
        with open(path, encoding="utf-8") as f:
            for day in json.load(f)["days"]:
                (off if day["isOffDay"] else on).add(day["date"])
    return off, on


OFF, ON = _calendar()


def working(day):
    return day.isoformat() in ON or (day.weekday() < 5 and day.isoformat() not in OFF)


def previous_working(day):
    day -= datetime.timedelta(days=1)
    while not working(day):
        day -= datetime.timedelta(days=1)
    return day


def shanghai(day, hh, mm, ss):
    return datetime.datetime.combine(day, datetime.time(hh, mm, ss), SHANGHAI)


def run_id():
    return uuid.uuid4().hex[:10]


def action(stack, case_id, kind, event_id, **data):
    event = {"specversion": "1.0", "id": event_id, "source": "/gov/unit-oa",
             "type": f"duban.case.{kind}", "data": {"case_id": case_id, **data}}
    r = stack.post_event(event, token=UNIT_OA)
    assert r.status_code == 202, r.text
    return r


def new_case(stack, event_id, severity="high", reported=None, **data):
    body = problem_event(event_id)
    body["data"]["severity"] = severity
    body["data"].update(data)
    if reported:
        body["time"] = reported
    else:
        body.pop("time")
    r = stack.post_event(body)
    assert r.status_code == 202, r.text
    return r.json()["case_id"]


def case_doc(stack, case_id, pred=lambda c: True, timeout=30):
    r = stack.wait_for("deadline", f"/v1/cases/{case_id}",
                       pred=lambda r: r.status_code == 200 and pred(r.json()),
                       timeout=timeout)
    assert r.status_code == 200, r.text
    assert pred(r.json()), json.dumps(r.json(), ensure_ascii=False)
    return r.json()


def records(stack, topic="duban.cases", since_ms=None):
    """(key, event) of every record (written since since_ms), in partition order within
    each key."""
    out = []
    for line in stack.topic(topic, since_ms).decode("utf-8").splitlines():
        key, _, value = line.split("\t", 2)
        out.append((key, json.loads(value)))
    return out


def timer_ids(stack, case_ids, kind, since_ms):
    """How many records of each id of 'kind' (e.g. '.overdue.accept.') the cases have,
    among those written since since_ms."""
    wanted = set(case_ids)
    counts = {}
    for key, event in records(stack, since_ms=since_ms):
        if key in wanted and kind in event["id"]:
            counts[event["id"]] = counts.get(event["id"], 0) + 1
    return counts


def fired_metric(port):
    """duban_deadline_timers_fired_total summed over kinds, or None if unreachable."""
    return Stack.metric(port, "duban_deadline_timers_fired_total")


def due_count(stack, moment):
    """Cases whose earliest timer is at 'moment', over every partition."""
    ms = str(int(moment.timestamp() * 1000))
    total = 0
    for key in stack.redis("KEYS", "duban:deadline:timers:*").split():
        total += int(stack.redis("ZCOUNT", key, ms, ms) or 0)
    return total


def armed(stack, case_id):
    """Whether a timer of the case is still in Redis (its earliest moment, in its
    partition's set): while one is, deadline may still fire something for it."""
    keys = stack.redis("KEYS", "duban:deadline:timers:*").split()
    return any(stack.redis("ZSCORE", key, case_id) for key in keys)


def scheduler_round_passed(stack):
    """Positive evidence that deadline's scheduler has finished every firing round that
    began before this call: a case reported 90 days ago (every moment of it past on
    arrival, also on a clock moved back a few days) is posted now, and its level-4
    escalation comes only from a round that began after its arrival; the rounds of one
    instance run one after another, each ending once Kafka acknowledged everything it
    published. (A round covers every partition its instance owns: with two instances
    alive this says nothing of the other one.)"""
    reported = (datetime.datetime.now(SHANGHAI) - datetime.timedelta(days=90)).isoformat()
    marker = new_case(stack, f"dl-round-{run_id()}", severity="normal", reported=reported)
    case_doc(stack, marker, lambda c: c["escalation_level"] == 4, timeout=90)


def post_batch(stack, prefix, n, reported):
    """Posts n high cases reported at 'reported' in batches of 500; returns case ids."""
    case_ids = []
    for start in range(0, n, 500):
        batch = []
        for i in range(start, min(n, start + 500)):
            e = problem_event(f"{prefix}-{i}", time=reported)
            e["data"]["reporter"] = {"anonymous": True}
            # To the module's own uncapped unit: thousands of open cases must not
            # fill the demo officers' max_open for the tests that come after.
            e["data"]["subject"] = {"unit_id": subject_of(PREFIX)}
            batch.append(e)
        r = stack.post_event(json.dumps(batch),
                             content_type="application/cloudevents-batch+json")
        assert r.status_code == 207, r.text
        results = r.json()["results"]
        assert all(x["status"] == "accepted" for x in results), results[:3]
        case_ids += [x["case_id"] for x in results]
    return case_ids


def restart_deadline(stack, offset_ms):
    stack.kill("deadline", signal.SIGTERM)
    stack.start_missing(DUBAN_DEADLINE_CLOCK_OFFSET_MS=str(offset_ms))


@pytest.fixture
def real_clock_after(stack):
    """Routes the test's cases to the module's own unit, and puts deadline back on the
    real clock after a test that moved it."""
    load = OwnUnit(stack, PREFIX)
    yield
    load.close()
    try:  # a test that failed midway may have left deadline down
        running = stack.get("deadline", "/healthz").status_code == 200
    except requests.RequestException:
        running = False
    if running:
        stack.kill("deadline", signal.SIGTERM)
    stack.start_missing(DUBAN_DEADLINE_CLOCK_OFFSET_MS="0")


# ---- lifecycle over the real stack -------------------------------------------------------


def test_backdated_case_gets_each_timer_once_in_order(stack):
    since_ms = int(time.time() * 1000) - 1000
    reported = (datetime.datetime.now(SHANGHAI) - datetime.timedelta(days=60)).isoformat()
    case_id = new_case(stack, f"dl-back-{run_id()}", severity="normal", reported=reported)
    doc = case_doc(stack, case_id, lambda c: c["escalation_level"] == 4)
    # Nothing more may come: the case has no timer left in Redis, and every round that
    # could have seen one has ended (its events acknowledged, so in the topic).
    wait_until(lambda: not armed(stack, case_id), 30, "no timer of the case left armed")
    scheduler_round_passed(stack)
    mine = [e for k, e in records(stack, since_ms=since_ms)
            if k == case_id and e["source"] == "/duban/deadline"]
    kinds = [(e["type"].rsplit(".", 1)[1], e["data"].get("clock"), e["data"].get("level"))
             for e in mine]
    assert kinds == [("overdue", "accept", None), ("warning", "resolve", None),
                     ("overdue", "resolve", None), ("escalated", None, 3),
                     ("escalated", None, 4)]
    assert len({e["id"] for e in mine}) == 5
    assert doc["overdue"] == {"accept": True, "resolve": True}
    assert mine[1]["data"]["warn_at"] == doc["warn_at"]
    assert mine[4]["data"]["escalate_at"] == doc["escalations"][1]["at"]
    families = (r'duban_deadline_timers_fired_total\{kind="escalated_4"\} [1-9]',
                r'duban_deadline_fire_lag_seconds_count [1-9]',
                r'duban_deadline_timers_active \d', r'duban_deadline_cases\{state="')

    def missing():
        metrics = stack.get("deadline", "/metrics", token=None).text
        return [f for f in families if not re.search(f, metrics)]
    # The gauges are published every few seconds: on a stack just started, not yet.
    wait_until(lambda: not missing(), 30, "deadline's metrics", show=missing)


def test_calendar_file_recomputes_open_cases(stack):
    since_ms = int(time.time() * 1000) - 1000
    rid = run_id()
    case_id = new_case(stack, f"dl-cal-{rid}", severity="normal")
    doc = case_doc(stack, case_id, lambda c: c["state"] == "assigned")
    due = datetime.datetime.fromisoformat(doc["due_at"]).date()
    path = os.path.join(stack.config_dir, "calendar", f"{due.year}.json")
    original = open(path, encoding="utf-8").read() if os.path.exists(path) else None
    days = [d for d in (json.loads(original)["days"] if original else [])
            if d["date"] != due.isoformat()]
    # A (made-up) notice makes the due day a holiday: the due moves to the next
    # working day, and so does everything counted from it.
    notice = {"year": due.year, "papers": ["https://www.gov.cn/zhengce/duban-test"],
              "days": days + [{"name": "测试假日", "date": due.isoformat(),
                               "isOffDay": True}]}
    expected = due + datetime.timedelta(days=1)
    while not working(expected):
        expected += datetime.timedelta(days=1)
    pid = stack.pid("deadline")
    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(notice, f, ensure_ascii=False)
        os.kill(pid, signal.SIGHUP)
        moved = case_doc(stack, case_id, lambda c: c["due_at"] != doc["due_at"])
        assert moved["due_at"] == shanghai(expected, 23, 59, 59).isoformat()
        assert moved["generation"] == doc["generation"] + 1
        changed = [e for k, e in records(stack, since_ms=since_ms)
                   if k == case_id and e["type"] == "duban.case.deadline_changed"]
        assert changed and changed[0]["data"]["reason"] == "calendar"
        assert changed[0]["data"]["due_at"] == moved["due_at"]
    finally:
        if original is None:
            os.remove(path)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(original)
        os.kill(pid, signal.SIGHUP)
    back = case_doc(stack, case_id, lambda c: c["due_at"] == doc["due_at"])
    assert back["generation"] == doc["generation"] + 2


def test_extension_moves_the_moments(stack):
    rid = run_id()
    case_id = new_case(stack, f"dl-ext-{rid}")
    before = case_doc(stack, case_id, lambda c: c["state"] == "assigned")
    action(stack, case_id, "accepted", f"dl-ext-{rid}-acc")
    due = datetime.datetime.fromisoformat(before["due_at"])
    wanted = (due + datetime.timedelta(days=14)).isoformat()
    action(stack, case_id, "extension_requested", f"dl-ext-{rid}-req", new_due=wanted,
           reason="需调取多个部门材料")
    case_doc(stack, case_id, lambda c: c["extension"] is not None)
    action(stack, case_id, "extension_decided", f"dl-ext-{rid}-dec", approved=True,
           approver="O-CMO-LEAD")
    after = case_doc(stack, case_id, lambda c: c["due_at"] != before["due_at"])
    assert after["due_at"] == wanted
    assert after["warn_at"] > before["warn_at"]
    assert [e["at"] for e in after["escalations"]] > [e["at"] for e in before["escalations"]]
    assert after["extension"] is None
    assert after["state"] == "accepted"
    assert after["generation"] == before["generation"] + 1


def test_failed_verification_reopens_and_a_pass_closes(stack):
    rid = run_id()
    case_id = new_case(stack, f"dl-ver-{rid}")
    before = case_doc(stack, case_id, lambda c: c["state"] == "assigned")
    action(stack, case_id, "accepted", f"dl-ver-{rid}-acc")
    action(stack, case_id, "rectified", f"dl-ver-{rid}-rect", evidence="窗口已整改，附照片")
    case_doc(stack, case_id, lambda c: c["state"] == "rectified")
    action(stack, case_id, "verified", f"dl-ver-{rid}-fail", passed=False,
           verifier="O-CMO-LEAD")
    reopened = case_doc(stack, case_id, lambda c: c["state"] == "reopened")
    # A new resolve period counted from the verification (today), not the report.
    today = datetime.datetime.now(SHANGHAI).date()
    day, n = today, 0
    while n < 5:
        day += datetime.timedelta(days=1)
        n += working(day)
    assert reopened["due_at"] == shanghai(day, 23, 59, 59).isoformat()
    assert reopened["due_at"] >= before["due_at"]
    assert reopened["rectified_at"] is None
    action(stack, case_id, "rectified", f"dl-ver-{rid}-rect2", evidence="复查整改到位")
    action(stack, case_id, "verified", f"dl-ver-{rid}-pass", passed=True,
           verifier="O-CMO-LEAD")
    action(stack, case_id, "closed", f"dl-ver-{rid}-close")
    closed = case_doc(stack, case_id, lambda c: c["state"] == "closed")
    assert closed["closed_on_time"] is True


def test_refused_transition_goes_to_the_dlq(stack):
    rid = run_id()
    case_id = new_case(stack, f"dl-bad-{rid}")
    case_doc(stack, case_id, lambda c: c["state"] == "assigned")
    # Intake accepts it (it is well formed); the lifecycle refuses to close an
    # unverified case.
    action(stack, case_id, "closed", f"dl-bad-{rid}-close")
    until = time.monotonic() + 20
    found = None
    while time.monotonic() < until and not found:
        for key, record in records(stack, "duban.dlq"):
            if key == case_id and record.get("reason") == "invalid_transition":
                found = record
        time.sleep(0.3)
    assert found, "no invalid_transition record for the case in duban.dlq"
    assert found["origin"]["topic"] == "duban.cases"
    assert "not allowed in state assigned" in found["detail"]
    # The case is untouched and later events still apply: the partition moved on.
    action(stack, case_id, "accepted", f"dl-bad-{rid}-acc")
    doc = case_doc(stack, case_id, lambda c: c["state"] == "accepted")
    assert "duban.case.closed" not in [h["type"] for h in doc["history"]]
    metrics = stack.get("deadline", "/metrics", token=None).text
    assert re.search(r'^duban_deadline_invalid_transitions_total\{type="duban.case.closed"\} '
                     r'[1-9]', metrics, re.M), metrics


def ledger_all(stack, query):
    """Every row of the ledger for 'query', following the cursor."""
    rows, cursor = [], None
    for _ in range(1000):
        r = stack.get("deadline", f"/v1/ledger?{query}" + (f"&cursor={cursor}" if cursor
                                                            else ""))
        assert r.status_code == 200, r.text
        rows += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if not cursor:
            return rows
    raise AssertionError("the ledger never ended")


def test_ledger_pages_filters_and_stats(stack):
    rid = run_id()
    region = "329" + str(int(rid, 16) % 1000).zfill(3)
    ids = [new_case(stack, f"dl-led-{rid}-{i}", category="risk_prevention", region=region)
           for i in range(5)]
    for case_id in ids:
        case_doc(stack, case_id, lambda c: c["state"] == "assigned")
    seen, cursor, pages = [], None, 0
    while True:
        path = f"/v1/ledger?region={region}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        r = stack.get("deadline", path)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 2
        seen += [row["case_id"] for row in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
        assert pages < 500
    assert sorted(seen) == sorted(ids)  # every case once, none twice
    assert seen == sorted(seen)  # case-id (time) order
    rows = ledger_all(stack, f"region={region}&state=assigned")
    assert [row["case_id"] for row in rows] == seen
    assert all(row["unit"] and row["due_at"] and row["overdue"] is False for row in rows)
    assert ledger_all(stack, f"region={region}&state=closed") == []
    for bad in ("limit=0", "limit=x", "state=nonsense", "overdue=maybe", "cursor=a%20b"):
        r = stack.get("deadline", f"/v1/ledger?{bad}")
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["code"] == "schema_violation"
    stats = stack.get("deadline", "/v1/stats?group_by=region").json()
    group = [g for g in stats["groups"] if g["key"] == region]
    assert group and group[0]["open"] == 5 and group[0]["closed_on_time"] == 0
    assert group[0]["on_time_rate"] is None
    assert stack.get("deadline", "/v1/stats?group_by=colour").status_code == 422
    assert stack.get("deadline", "/v1/ledger", token=None).status_code == 401


def test_redis_loss_is_rebuilt_from_kafka(stack):
    rid = run_id()
    case_id = new_case(stack, f"dl-lost-{rid}")
    case_doc(stack, case_id, lambda c: c["state"] == "assigned")
    action(stack, case_id, "accepted", f"dl-lost-{rid}-acc")
    before = case_doc(stack, case_id, lambda c: c["state"] == "accepted")
    stack.redis("FLUSHALL")
    # Deadline notices, reads its partitions again and rebuilds the document.
    after = case_doc(stack, case_id, lambda c: c["state"] == "accepted", timeout=90)
    for key in ("due_at", "warn_at", "accept_by", "unit", "assignee", "generation"):
        assert after[key] == before[key], key
    assert [h["id"] for h in after["history"]] == [h["id"] for h in before["history"]]
    assert stack.wait_for("deadline", "/readyz", timeout=60).status_code == 200
    # And it goes on: an action after the loss applies, the ledger and stats know it.
    action(stack, case_id, "progressed", f"dl-lost-{rid}-prog")
    case_doc(stack, case_id, lambda c: c["state"] == "in_progress")
    assert case_id in [r["case_id"] for r in ledger_all(stack, "state=in_progress")]
    units = stack.get("deadline", "/v1/stats?group_by=unit").json()["groups"]
    assert sum(g["open"] for g in units) >= 1
    # The other services lost their state too: rebuilt before the next test.
    wait_rebuilt(stack)


# ---- exactly once under crashes ----------------------------------------------------------

LEAD_S = 45  # deadline's clock starts this long before the moment


def all_fired_once_settled(stack, case_ids, moment, since_ms, n, timeout=120):
    """Waits until each of the n cases has an accept-overdue record, then for evidence
    that no further copy can come: no case keeps a timer at the moment in Redis (each
    was read back and moved on), and a scheduler round that began after that has
    ended. Returns the count of records per timer id, read after that."""
    counts = {}

    def fired():
        counts.update(timer_ids(stack, case_ids, ".overdue.accept.", since_ms))
        return len(counts) == n
    try:
        wait_until(fired, timeout, f"all {n} timers fired", step=1)
    except AssertionError:
        return counts  # the caller's assertion says how many are missing
    wait_until(lambda: due_count(stack, moment) == 0, 60, "every fired timer moved on",
               step=0.5, show=lambda: f"{due_count(stack, moment)} still at the moment")
    scheduler_round_passed(stack)
    return timer_ids(stack, case_ids, ".overdue.accept.", since_ms)


def test_kill_9_while_5000_timers_fall_due(stack, real_clock_after):
    today = datetime.datetime.now(SHANGHAI).date()
    w2 = previous_working(today)
    w1 = previous_working(w2)
    moment = shanghai(w2, 23, 59, 59)  # the accept deadline of a case reported on w1
    offset_ms = int((moment.timestamp() - LEAD_S - time.time()) * 1000)
    since_ms = int(time.time() * 1000) - 1000
    restart_deadline(stack, offset_ms)
    started = time.monotonic()
    case_ids = post_batch(stack, f"dl-k9-{run_id()}", 5000,
                          shanghai(w1, 10, 0, 0).isoformat())
    until = started + LEAD_S - 2
    while due_count(stack, moment) < 5000 and time.monotonic() < until:
        time.sleep(0.5)
    loaded = due_count(stack, moment)
    assert loaded == 5000, f"only {loaded} of 5000 timers loaded before the moment"
    # Kill it while it fires: at the first acknowledgement of the round that starts within
    # a tick (200 ms) of the moment.
    port = stack.ports["deadline"]
    at = moment.timestamp() - offset_ms / 1000  # the moment on this machine's clock
    while time.time() < at - 0.05:
        time.sleep(0.01)
    base = fired_metric(port) or 0
    until = at + 30
    fired_before_kill = 0
    while fired_before_kill <= 0 and time.time() < until:
        fired_before_kill = (fired_metric(port) or 0) - base
        time.sleep(0.005)
    stack.kill("deadline", signal.SIGKILL)
    # What the restarted instance finds: timer events on the topic (produced before the
    # kill, acknowledged or not) and cases whose documents do not show them yet.
    written = len(timer_ids(stack, case_ids, ".overdue.accept.", since_ms))
    unsettled = due_count(stack, moment)
    stack.start_missing(DUBAN_DEADLINE_CLOCK_OFFSET_MS=str(offset_ms))
    assert fired_before_kill > 0, "no timer fired within 30 s of the moment"
    # The kill came mid-round: some cases still had this timer pending in Redis.
    assert unsettled > 0, f"all 5000 timers settled before kill -9 ({written} written)"
    counts = all_fired_once_settled(stack, case_ids, moment, since_ms, 5000)
    print(f"\n5000 timers: at kill -9 {fired_before_kill:.0f} acknowledged, {written} "
          f"written, {unsettled} not yet settled in Redis; "
          f"{len(counts)} cases fired, {sum(counts.values())} events, "
          f"{time.monotonic() - started:.1f} s in all")
    assert len(counts) == 5000, f"{5000 - len(counts)} timers lost"
    assert set(counts.values()) == {1}, "some timer fired twice"


def test_two_instances_split_timers_and_one_is_killed(stack, real_clock_after):
    today = datetime.datetime.now(SHANGHAI).date()
    w1 = previous_working(previous_working(today))
    w0 = previous_working(w1)
    moment = shanghai(w1, 23, 59, 59)
    offset_ms = int((moment.timestamp() - LEAD_S - time.time()) * 1000)
    since_ms = int(time.time() * 1000) - 1000
    restart_deadline(stack, offset_ms)
    since = len(stack.log("deadline"))
    port2 = stack.ports["deadline-2"]
    second = stack.spawn("deadline", "deadline-2", port2,
                         DUBAN_DEADLINE_CLOCK_OFFSET_MS=str(offset_ms))
    try:
        started = time.monotonic()
        log2 = os.path.join(stack.var_dir, "log", "deadline-2.log")
        owned2 = []
        while time.monotonic() < started + 30 and not owned2:
            with open(log2, encoding="utf-8", errors="replace") as f:
                owned2 = re.findall(r"kafka partitions assigned: (duban\.cases\[\d+\][^\"]*)",
                                    f.read())
            time.sleep(0.2)
        assert owned2, "the second instance was given no partition"
        # The first instance's side of the rebalance: its share assigned again.
        wait_until(lambda: re.search(r"kafka partitions assigned: duban\.cases\[",
                                     stack.log("deadline")[since:]), 30,
                   "the first instance's new assignment",
                   show=lambda: stack.log("deadline")[since:][-2000:])
        case_ids = post_batch(stack, f"dl-two-{run_id()}", 2000,
                              shanghai(w0, 10, 0, 0).isoformat())
        while due_count(stack, moment) < 2000 and time.monotonic() < started + LEAD_S - 15:
            time.sleep(0.5)
        assert due_count(stack, moment) == 2000
        # The group settled on a split: each instance holds some of the six partitions.
        last = {}
        for name in ("deadline", "deadline-2"):
            with open(os.path.join(stack.var_dir, "log", f"{name}.log"), encoding="utf-8",
                      errors="replace") as f:
                found = re.findall(r"kafka partitions assigned: ([^\"]*)", f.read())
            last[name] = found[-1].split() if found else []
        assert last["deadline"] and last["deadline-2"], last
        assert not set(last["deadline"]) & set(last["deadline-2"]), last
        owned2 = last["deadline-2"]
        # Both instances see the cases of their partitions; kill the second before the
        # moment: the first takes its partitions over and fires everything, once.
        second.send_signal(signal.SIGKILL)
        second.wait(timeout=10)
        counts = all_fired_once_settled(stack, case_ids, moment, since_ms, 2000,
                                        timeout=LEAD_S + 90)
        print(f"\ntwo instances: the second owned {' '.join(owned2)}; after its kill -9, "
              f"{len(counts)} of 2000 timers fired, {sum(counts.values())} events")
        assert len(counts) == 2000
        assert set(counts.values()) == {1}
    finally:
        if second.poll() is None:
            second.kill()
            second.wait(timeout=10)
