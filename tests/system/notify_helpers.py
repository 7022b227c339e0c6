"""What the notification tests need beside the stack: a real Kannel (bearerbox, smsbox
and the fake SMSC, deploy/local/kannel.sh) and a real SMTP server (aiosmtpd), readers of
what each received, and restarting notification with other settings."""
import email
import json
import shutil
import tempfile
import uuid
import email.policy
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse

import pytest

from conftest import (KCAT_PARTITIONER, PORTS, READY_S, partition_of,  # noqa: F401
                      problem_event, wait_until)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KANNEL = os.path.join(ROOT, "deploy", "local", "kannel.sh")
STACK = os.path.join(ROOT, "deploy", "local", "stack.sh")
SMTP_PORT = PORTS["smtp"]
KANNEL_ENV = {f"DUBAN_KANNEL_{part.upper()}_PORT": str(PORTS[f"kannel-{part}"])
              for part in ("admin", "smsbox", "smsc", "sendsms")}

# How long the tests wait for a message to arrive or a state to change: generous, as the
# suite shares two cores with Kafka, Redis and Kannel; these are not timing tests (the
# speeds are measured in tests/bench/notification.sh).
ARRIVAL_S = 90

GOT = re.compile(r"Got message \d+: <(.*)>\s*$")


class Kannel:
    def __init__(self, var_dir, queue_limit=3):
        self.env = dict(os.environ, DUBAN_VAR_DIR=var_dir,
                        DUBAN_KANNEL_QUEUE_LIMIT=str(queue_limit), **KANNEL_ENV)
        self.dir = os.path.join(var_dir, "kannel")

    def run(self, *args):
        out = subprocess.run([KANNEL, *args], env=self.env, capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    def start(self):
        return self.run("start").strip().splitlines()[-1]

    def stop(self):
        self.run("stop")

    def pid(self, box):
        with open(os.path.join(self.dir, f"{box}.pid")) as f:
            return int(f.read().strip())

    def admin(self, command):
        with socket.create_connection(("127.0.0.1", PORTS["kannel-admin"]), timeout=5) as s:
            s.sendall(f"GET /{command}?password=duban-admin HTTP/1.0\r\n\r\n".encode())
            return s.recv(4096).decode(errors="replace")

    def received(self):
        """Every SMS the fake SMSC got, parts joined: [(to, text)] in arrival order."""
        path = os.path.join(self.dir, "fakesmsc.out")
        if not os.path.exists(path):
            return []
        done, parts = [], {}
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = GOT.search(line)
                if not m:
                    continue
                fields = m.group(1).split(" ")
                to, kind = fields[1], fields[2]
                udh = None
                if kind == "udh":
                    udh = urllib.parse.unquote_to_bytes(fields[3].replace("+", " "))
                    kind, data = fields[4], fields[5]
                else:
                    data = fields[3] if len(fields) > 3 else ""
                raw = urllib.parse.unquote_to_bytes(data.replace("+", " "))
                text = raw.decode("utf-16-be") if kind in ("ucs-2", "data", "ucs2") \
                    else raw.decode("latin-1")
                if udh and len(udh) >= 6 and udh[1] == 0:
                    ref, total, seq = udh[3], udh[4], udh[5]
                    got = parts.setdefault((to, ref), {})
                    got[seq] = text
                    if len(got) == total:
                        done.append((to, "".join(got[i] for i in sorted(got)), total))
                        del parts[(to, ref)]
                else:
                    done.append((to, text, 1))
        return done


class Mailbox:
    def __init__(self, var_dir):
        self.dir = os.path.join(var_dir, "maildir")
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{SMTP_PORT}",
             "-c", "aiosmtpd.handlers.Mailbox", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        until = time.monotonic() + 20
        while time.monotonic() < until:
            try:
                socket.create_connection(("127.0.0.1", SMTP_PORT), timeout=1).close()
                return f"smtp://127.0.0.1:{SMTP_PORT}"
            except OSError:
                time.sleep(0.1)
        raise AssertionError("aiosmtpd did not listen")

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
            self.proc = None

    def messages(self):
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(self.dir, sub)
            for name in sorted(os.listdir(d)):
                with open(os.path.join(d, name), "rb") as f:
                    out.append(email.message_from_binary_file(f, policy=email.policy.default))
        return out


def restart_notification(stack, **overrides):
    """Stops notification (SIGTERM) and starts it again with the stack's environment
    plus 'overrides' (None removes a variable); returns that environment."""
    try:
        stack.kill("notification", signal.SIGTERM)
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    env = dict(stack.env)
    for k, v in overrides.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    env["DUBAN_STACK_SERVICES"] = "notification"
    # A notification that does not come up must not take Kafka and Redis down with it
    # (stack.sh up stops what it started on failure): the tests after it need them.
    env["DUBAN_KEEP_ON_FAILURE"] = "1"
    up = subprocess.run([STACK, "up"], env=env, cwd=ROOT, capture_output=True, text=True,
                        timeout=READY_S + 60)
    assert up.returncode == 0, up.stdout + up.stderr + stack.log("notification")[-4000:]
    return env


def notifications(stack, case_id):
    r = stack.get("notification", f"/v1/notifications?case_id={case_id}")
    assert r.status_code == 200, r.text
    return r.json()["notifications"]


OFFICER_PHONES = {"O-IG05-ZHENG": "+8613800138007", "O-IG05-WANG": "+8613800138008",
                  "O-IG05-FENG": "+8613800138009", "O-CMO-ZHAO": "+8613800138001",
                  "O-CMO-SUN": "+8613800138003", "O-STREET07-CHEN": "+8613800138010"}


def gateway_env(kannel_url, smtp_url, **more):
    env = {"DUBAN_SMS_URL": kannel_url, "DUBAN_SMTP_URL": smtp_url,
           "DUBAN_SMTP_FROM": "duban@duban.example", "DUBAN_NOTIFY_SMS_PER_HOUR": 100000,
           "DUBAN_NOTIFY_RETRY_BASE_MS": 300, "DUBAN_NOTIFY_RETRY_MAX_MS": 3000,
           "DUBAN_NOTIFY_MAX_ATTEMPTS": 100, "DUBAN_NOTIFY_SEND_TIMEOUT_MS": 1500,
           "DUBAN_NOTIFY_RECONCILE_S": 20, "DUBAN_NOTIFY_QUIET_HOURS": "off"}
    env.update(more)
    return env


@pytest.fixture(scope="module")
def gateway(stack):
    """Kannel and aiosmtpd for one test module, notification sending through them."""
    var = tempfile.mkdtemp(prefix="duban-gateway-")
    kannel, mailbox = Kannel(var), Mailbox(var)
    urls = (kannel.start(), mailbox.start())
    restart_notification(stack, **gateway_env(*urls))
    try:
        yield kannel, mailbox, urls
    finally:
        try:
            restart_notification(stack, DUBAN_SMS_URL=None, DUBAN_SMTP_URL=None)
        finally:
            kannel.stop()
            mailbox.stop()
            shutil.rmtree(var, ignore_errors=True)


def shown(rfc3339):
    """'2026-09-30T23:59:59+08:00' as the templates show it: '2026-09-30 23:59'."""
    assert rfc3339.endswith("+08:00"), rfc3339
    return rfc3339[:10] + " " + rfc3339[11:16]


def moments(stack, case_id):
    """The case's sign-for and resolve deadlines as the deadline service computed them,
    in the templates' form: (accept_by, due_at)."""
    doc = stack.wait_for("deadline", f"/v1/cases/{case_id}").json()
    return shown(doc["accept_by"]), shown(doc["due_at"])


def new_case(stack, phone="+8613812345678", **data_over):
    """A case reported now (no envelope time): the example's own 2026-09-29 would have
    deadline fire every timer of the case at once, and those messages would mix with the
    ones a test is about."""
    event = problem_event(f"notify-{uuid.uuid4().hex[:12]}")
    del event["time"]
    event["data"]["reporter"]["phone"] = phone
    event["data"].update(data_over)
    r = stack.post_event(event)
    assert r.status_code == 202, r.text
    return r.json()["case_id"]


def deadline_event(stack, type_, case_id, **data):
    """A deadline-service event straight onto duban.cases (its schema is the contract)."""
    event = {"specversion": "1.0", "id": f"dl-{uuid.uuid4().hex}", "source": "/duban/deadline",
             "type": type_, "time": "2026-10-09T00:00:01+08:00",
             "datacontenttype": "application/json", "data": dict(case_id=case_id, **data)}
    stack.produce("duban.cases", json.dumps(event, ensure_ascii=False), key=case_id,
                  headers=[("content-type", "application/cloudevents+json"),
                           ("duban-type", type_)])
    return event


def deadline_events(stack, type_, cases, **data):
    """One deadline event per case, all written by one kcat run (fast enough that the
    sending is still going on when a test acts on it)."""
    lines = []
    for case in cases:
        event = {"specversion": "1.0", "id": f"dl-{uuid.uuid4().hex}",
                 "source": "/duban/deadline", "type": type_,
                 "time": "2026-10-09T00:00:01+08:00", "datacontenttype": "application/json",
                 "data": dict(case_id=case, **data)}
        lines.append(f"{case}\t{json.dumps(event, ensure_ascii=False)}\n")
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".tsv") as f:
        f.write("".join(lines))
        f.flush()
        subprocess.run(["kcat", "-P", "-b", f"127.0.0.1:{stack_kafka_port(stack)}", "-t",
                        "duban.cases", "-K", "\t", "-H",
                        "content-type=application/cloudevents+json", "-H",
                        f"duban-type={type_}", *KCAT_PARTITIONER, "-l", f.name],
                       check=True, timeout=60)


def stack_kafka_port(stack):
    return int(stack.env["DUBAN_KAFKA_PORT"])


def sms_about(kannel, case_id):
    return [m for m in kannel.received() if case_id in m[1]]


def jobs_about(stack, case_id):
    """The notification jobs the planner wrote to duban.notifications for the case."""
    found = []
    for line in stack.topic("duban.notifications").splitlines():
        if case_id.encode() in line and b'"kind":"job"' in line:
            job = json.loads(line.split(b"\t", 2)[2])
            if job.get("case_id") == case_id:
                found.append(job)
    return found


def planner_passed(stack, kannel, case_id, unit, officer, phone):
    """Positive evidence that notification has handled every event of the case written
    so far: a warning naming 'officer' (whose phone is 'phone') for a marker case on
    the same partition of duban.cases is written after them, and the planner handles a
    partition in order; once the marker's SMS is at the fake SMSC, the jobs of the
    case's earlier events are on duban.notifications. Returns the marker's case id."""
    n = stack.partitions("duban.cases")
    want = partition_of(case_id, n)
    marker = next(c for c in (f"DBMARK{uuid.uuid4().hex[:20].upper()}" for _ in range(10000))
                  if partition_of(c, n) == want)
    deadline_event(stack, "duban.case.warning", marker, clock="resolve",
                   due_at="2026-10-12T23:59:59+08:00", unit=unit, officer=officer)
    wait_until(lambda: [m for m in sms_about(kannel, marker) if m[0] == phone], ARRIVAL_S,
               f"the marker warning {marker} at {phone}")
    return marker


FINAL = ("sent", "delivered", "permanent-failure", "technical-failure", "folded")


def settled_states(stack, case_ids, channel=None, per_case=1):
    """The notifications of the cases once each case has at least 'per_case' of them
    (on 'channel', if given) and every one is in a final state (nothing left to send,
    retry or reconcile); else None."""
    found = []
    for c in case_ids:
        mine = [n for n in notifications(stack, c) if channel is None or n["channel"] == channel]
        if len(mine) < per_case:
            return None
        found += mine
    return found if all(n["status"] in FINAL for n in found) else None


