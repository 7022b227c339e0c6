"""System-test harness: starts the real stack (Kafka in KRaft mode from the Maven jars,
redis-server, the four services) with deploy/local/stack.sh on ports of its own, and
stops it afterwards. Nothing here is mocked."""
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import uuid

import pytest
import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STACK = os.path.join(ROOT, "deploy", "local", "stack.sh")

# Every port the harness uses, apart from the defaults so that a developer's `make up`
# does not collide. DUBAN_TEST_PORT_SHIFT (default 0) moves all of them, so that two
# test runs (two worktrees) can share a machine; keep the results below 32768 (the
# ephemeral range). Nothing in tests/system names a port but through this table.
_SHIFT = int(os.environ.get("DUBAN_TEST_PORT_SHIFT", "0"))
PORTS = {name: port + _SHIFT for name, port in {
    # the stack: Kafka, Redis, the four services
    "kafka": 19092, "controller": 19093, "redis": 16379, "intake": 18081,
    "assignment": 18082, "deadline": 18083, "notification": 18084,
    # extra service instances of the crash tests
    "assignment-2": 18085, "deadline-2": 18183,
    # notification's tests: Kannel (deploy/local/kannel.sh), aiosmtpd, a sendsms URL
    # nobody listens on, a notification started only to see it refuse its settings
    "kannel-smsbox": 24001, "kannel-smsc": 24002, "kannel-admin": 24013,
    "kannel-sendsms": 24014, "smtp": 24025, "sms-nowhere": 24097,
    "notification-probe": 24099,
    # test_deploy_compose: the proxy's published ports, the compose network's
    # addresses, the host ports compose is told about; test_deploy_scale's instances
    "compose-intake": 15141, "compose-assignment": 15142, "compose-deadline": 15143,
    "compose-notification": 15144, "compose-intake-net": 15145,
    "compose-assignment-net": 15146, "compose-deadline-net": 15147,
    "compose-notification-net": 15148, "compose-mailpit": 15149,
    "compose-kafka-host": 15150, "compose-mailpit-ui": 15151,
    "scale-first": 15152,  # and the 11 after it
}.items()}
HOTLINE = "dub_demo_hotline12345_6f1c9e2b47d84a03"
UNIT_OA = "dub_demo_unitoa_b83d0c5e1a9f4726"
OPS = "dub_demo_ops_2a7e4d91c06b5f38"


def wait_until(pred, timeout, what="", step=0.2, show=None):
    """Polls pred() until it returns something true, and returns that. When 'timeout'
    seconds pass first, fails naming 'what' with the last value pred() returned (and
    what show(), if given, says about the state). Exceptions from pred() propagate.
    (A requests.Response is false for a 4xx or 5xx status: return it in a list.)"""
    until = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > until:
            seen = repr(got)
            if len(seen) > 3000:
                seen = seen[:3000] + "..."
            extra = f"; {show()}" if show else ""
            raise AssertionError(f"{what or 'condition'} not reached in {timeout} s; "
                                 f"last seen: {seen}{extra}")
        time.sleep(step)


class Stack:
    """One running stack: its var dir, the environment its services got and its ports
    (a module may run on a stack of its own, with ports of its own)."""

    def __init__(self, var_dir, env, ports=None):
        self.var_dir = var_dir
        self.env = env
        self.ports = ports or PORTS
        self.outbox = env["DUBAN_OUTBOX_DIR"]
        self.config_dir = env["DUBAN_CONFIG_DIR"]

    def url(self, service, path):
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def post_event(self, event, token=HOTLINE,
                   content_type="application/cloudevents+json", **kw):
        body = event if isinstance(event, (bytes, str)) else json.dumps(event)
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.post(self.url("intake", "/v1/events"), data=body,
                             headers=headers, timeout=15, **kw)

    def get(self, service, path, token=OPS):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(self.url(service, path), headers=headers, timeout=10)

    def wait_for(self, service, path, pred=lambda r: r.status_code == 200, timeout=30):
        """Polls until pred(response) holds and returns that response; fails with the
        last answer (or the connection error) when 'timeout' seconds pass first."""
        last = []

        def answer():
            try:
                r = self.get(service, path)
            except requests.RequestException as e:
                last[:] = [repr(e)]
                return None
            last[:] = [f"{r.status_code} {r.text[:1500]}"]
            return [r] if pred(r) else None  # a list: a 503 response itself is falsy
        return wait_until(answer, timeout, f"{service} {path}", step=0.1,
                          show=lambda: f"last answer: {last[0] if last else '-'}")[0]

    def pid(self, service):
        with open(os.path.join(self.var_dir, "run", f"{service}.pid")) as f:
            return int(f.read().strip())

    def log(self, service):
        with open(os.path.join(self.var_dir, "log", f"{service}.log"), encoding="utf-8",
                  errors="replace") as f:
            return f.read()

    def topic(self, name, since_ms=None):
        """Every record of a topic as raw bytes (key, headers and value), read by kcat;
        with since_ms, only those written at or after that time (ms since the epoch)."""
        start = ["-o", f"s@{since_ms}"] if since_ms is not None else []
        out = subprocess.run(
            ["kcat", "-C", "-b", f"127.0.0.1:{self.ports['kafka']}", "-t", name, "-e", "-q",
             *start, "-f", "%k\t%h\t%s\n"], capture_output=True, timeout=180, check=True)
        return out.stdout

    def partitions(self, topic):
        """How many partitions the topic has."""
        out = subprocess.run(["kcat", "-L", "-b", f"127.0.0.1:{self.ports['kafka']}",
                              "-t", topic], capture_output=True, text=True, timeout=30,
                             check=True)
        return int(re.search(rf'topic "{re.escape(topic)}" with (\d+) partitions',
                             out.stdout).group(1))

    def produce(self, topic, value, key="k", headers=()):
        """Writes one record with kcat: value bytes, key, [(name, value)] headers."""
        args = ["kcat", "-P", "-b", f"127.0.0.1:{self.ports['kafka']}", "-t", topic, "-k", key,
                *KCAT_PARTITIONER]
        for name, val in headers:
            args += ["-H", f"{name}={val}"]
        data = value if isinstance(value, bytes) else value.encode()
        subprocess.run(args, input=data, check=True, timeout=30)

    def redis(self, *args):
        out = subprocess.run(["redis-cli", "-p", str(self.ports["redis"]), *args],
                             capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()

    @staticmethod
    def metric(port, family, where=""):
        """The sum of a Prometheus family's series (those whose labels contain 'where')
        on 127.0.0.1:port, or None when the service does not answer."""
        try:
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        except requests.RequestException:
            return None
        return sum(float(v) for v in re.findall(
            rf"^{family}(?:\{{[^}}]*{where}[^}}]*\}})? (\S+)$", text, re.M))

    def kill(self, service, sig):
        pid = self.pid(service)
        os.kill(pid, sig)
        until = time.monotonic() + 15
        while time.monotonic() < until:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise AssertionError(f"{service} (pid {pid}) did not exit")

    def start_missing(self, **extra_env):
        """Starts the services that are not running and waits until those are ready;
        extra_env (e.g. DUBAN_DEADLINE_CLOCK_OFFSET_MS="0") goes to those started."""
        up = subprocess.run([STACK, "up"], env={**self.env, **extra_env}, cwd=ROOT,
                            capture_output=True, text=True, timeout=READY_S + 60)
        assert up.returncode == 0, up.stdout + up.stderr

    def build_path(self, path):
        """A file of the build directory the stack runs (DUBAN_BUILD_DIR)."""
        build = self.env.get("DUBAN_BUILD_DIR", "build")
        return os.path.join(build if os.path.isabs(build) else os.path.join(ROOT, build),
                            path)

    def spawn(self, service, name, port, **extra_env):
        """Starts one more instance of a service on 'port' (same Kafka group, same
        Redis) with its log in the var dir as <name>.log; returns the Popen."""
        binary = self.build_path(f"services/{service}/duban-{service}")
        env = {**self.env, **extra_env,
               "DUBAN_KAFKA_BROKERS": f"127.0.0.1:{self.ports['kafka']}",
               "DUBAN_REDIS_URL": f"redis://127.0.0.1:{self.ports['redis']}/0",
               "DUBAN_SCHEMA_DIR": os.path.join(ROOT, "schemas"),
               f"DUBAN_{service.upper()}_PORT": str(port)}
        log = open(os.path.join(self.var_dir, "log", f"{name}.log"), "ab")
        return subprocess.Popen([binary], env=env, cwd=ROOT, stdout=log, stderr=log)

    def outbox_files(self):
        found = []
        for base, _, files in os.walk(self.outbox):
            found += [os.path.join(base, f) for f in files if not f.startswith(".")]
        return sorted(found)


def problem_event(event_id, data=None, **envelope):
    """A duban.problem.reported event from the hotline, with DESIGN.md's example data."""
    event = {
        "specversion": "1.0", "id": event_id, "source": "/gov/hotline-12345",
        "type": "duban.problem.reported", "time": "2026-09-29T10:00:00+08:00",
        "datacontenttype": "application/json",
        "data": data or {
            "kind": "complaint", "category": "work_style", "severity": "high",
            "title": "某街道便民服务窗口推诿扯皮", "description": "群众反映窗口多次推诿。",
            "region": "320102", "subject": {"unit_id": "U-STREET-07"},
            "reporter": {"anonymous": False, "name": "欧阳举报", "phone": "+8613812345678",
                         "email": "whistle.blower@example.cn"},
        },
    }
    event.update(envelope)
    return event


def murmur2(data):
    """Kafka's murmur2 hash of a key (what the Java client and librdkafka's
    murmur2_random partitioner place keys by)."""
    m = 0x5BD1E995
    n = len(data)
    h = (0x9747B28C ^ n) & 0xFFFFFFFF
    for i in range(0, n - n % 4, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail, rest = n & ~3, n % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_of(key, partitions):
    """The partition the services' producers (and kcat with KCAT_PARTITIONER) put
    'key' on."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


SERVICES = ("intake", "assignment", "deadline", "notification")

# How long a test that emptied Redis waits for every service to rebuild from the
# topics: generous, for the sanitizer build on a shared machine.
REBUILD_S = 240


def wait_rebuilt(stack, timeout=REBUILD_S):
    """After a test emptied Redis (FLUSHALL): makes sure every service found out and
    rebuilt its state from the topics, so that the test after it does not find a
    service rebuilding (or, worse, one that has not noticed yet and rebuilds in the
    middle of that test). Deadline notices a lost partition only at that partition's
    next event, notification's planner at its next event: one marked record per
    partition of duban.cases wakes them (deadline dead-letters it, as an action for a
    case it does not know). Done when every service's completion mark is back in Redis
    and every /readyz answers 200; fails with what is still missing."""
    n = stack.partitions("duban.cases")
    for p in range(n):
        key = next(k for k in (f"DBWAKE{p:02d}{uuid.uuid4().hex[:20].upper()}"
                               for _ in range(10000)) if partition_of(k, n) == p)
        event = {"specversion": "1.0", "id": f"wake-{key}", "source": "/gov/unit-oa",
                 "type": "duban.case.progressed", "time": "2026-11-21T10:00:00+08:00",
                 "datacontenttype": "application/json", "data": {"case_id": key}}
        stack.produce("duban.cases", json.dumps(event), key=key,
                      headers=[("content-type", "application/cloudevents+json"),
                               ("duban-type", event["type"]), ("duban-test", "wake")])
    marks = ["duban:intake:index", "duban:assignment:complete", "duban:notify:planner",
             "duban:notify:sender"] + [f"duban:deadline:partition:{p}" for p in range(n)]

    def state():
        missing = [k for k in marks if stack.redis("EXISTS", k) != "1"]
        ready = {}
        for svc in SERVICES:
            try:
                ready[svc] = stack.get(svc, "/readyz", token=None).status_code
            except requests.RequestException as e:
                ready[svc] = repr(e)
        return missing, ready

    def done():
        missing, ready = state()
        return not missing and all(code == 200 for code in ready.values())
    wait_until(done, timeout, "every service rebuilt after the Redis loss", step=0.5,
               show=lambda: "missing marks and /readyz: %r" % (state(),))


# The services' producers place keys as Java clients do (murmur2); kcat's default
# (CRC32) would put a test's event for a case on another partition than the case's own
# records, and a consumer could see the two out of order.
KCAT_PARTITIONER = ("-X", "partitioner=murmur2_random")

# How long stack.sh up waits for the /readyz of the services it starts. A service that
# rebuilds its Redis state from a topic the suite has filled (after a test's FLUSHALL)
# needs more than a minute under ASan.
READY_S = 180

# Where DESIGN.md's example problem (about U-STREET-07) is assigned.
EXAMPLE_UNIT = "U-IG-05"


def uncap(directory_path, unit):
    """Removes max_open from the officers of 'unit'. Many tests report the example problem
    and leave the case open; with the demo's caps (15 and 10) the later ones in a run
    would go to needs_manual, with no officer to check or to tell. Caps are tested in
    tests/unit/assignment (test_rules.c, test_property.c)."""
    with open(directory_path, encoding="utf-8") as f:
        directory = json.load(f)
    for officer in directory["officers"]:
        if officer["unit"] == unit:
            officer.pop("max_open", None)
    with open(directory_path, "w", encoding="utf-8") as f:
        json.dump(directory, f, ensure_ascii=False, indent=1)


def start_stack(ports, label):
    """Starts a stack on 'ports' in a var dir of its own (named after 'label') with a
    copy of the demo configuration that tests may change (then SIGHUP)."""
    var_dir = tempfile.mkdtemp(prefix=f"duban-{label}-")
    config_dir = os.path.join(var_dir, "config")
    shutil.copytree(os.path.join(ROOT, "deploy", "config"), config_dir)
    uncap(os.path.join(config_dir, "directory.json"), EXAMPLE_UNIT)
    env = dict(os.environ)
    env.update({
        "DUBAN_CONFIG_DIR": config_dir,
        "DUBAN_VAR_DIR": var_dir,
        "DUBAN_KAFKA_PORT": str(ports["kafka"]),
        "DUBAN_KAFKA_CONTROLLER_PORT": str(ports["controller"]),
        "DUBAN_REDIS_PORT": str(ports["redis"]),
        "DUBAN_OUTBOX_DIR": os.path.join(var_dir, "outbox"),
        "DUBAN_PII_KEY": secrets.token_hex(32),
        "DUBAN_BUILD_DIR": os.environ.get("DUBAN_BUILD_DIR", "build"),
        "DUBAN_BIND": "127.0.0.1",
        # Quiet hours would hold non-urgent SMS whenever the suite runs at night in
        # Shanghai; tests of quiet hours set their own window.
        "DUBAN_NOTIFY_QUIET_HOURS": "off",
        # Nor may the per-recipient limit (20 an hour by default) fold the SMS of the
        # demo officers whom many modules' cases reach: which test's SMS would be
        # folded would depend on the order of the modules. The test of the limit sets
        # its own.
        "DUBAN_NOTIFY_SMS_PER_HOUR": "100000",
        "DUBAN_READY_TIMEOUT": str(READY_S),
    })
    for svc in ("intake", "assignment", "deadline", "notification"):
        env[f"DUBAN_{svc.upper()}_PORT"] = str(ports[svc])
    for var in ("DUBAN_KAFKA_BROKERS", "DUBAN_REDIS_URL", "DUBAN_SMS_URL", "DUBAN_SMTP_URL"):
        env.pop(var, None)
    up = subprocess.run([STACK, "up"], env=env, cwd=ROOT, capture_output=True, text=True,
                        timeout=240)
    if up.returncode != 0:
        subprocess.run([STACK, "down"], env=env, cwd=ROOT, timeout=120)
        pytest.fail(f"stack did not come up:\n{up.stdout}\n{up.stderr}")
    return Stack(var_dir, env, ports)


def stop_stack(stack):
    """Stops the stack and removes its var dir (unless DUBAN_KEEP_VAR); returns the
    sanitizer reports its logs hold."""
    subprocess.run([STACK, "down"], env=stack.env, cwd=ROOT, capture_output=True,
                   timeout=120)
    reports = sanitizer_reports(os.path.join(stack.var_dir, "log"))
    if not os.environ.get("DUBAN_KEEP_VAR"):
        shutil.rmtree(stack.var_dir, ignore_errors=True)
    return reports


@pytest.fixture(scope="session")
def stack():
    """The stack the system tests share."""
    running = start_stack(PORTS, "system")
    try:
        yield running
    finally:
        reports = stop_stack(running)
    # Under DUBAN_SANITIZE=ON a service that leaked or misbehaved says so in its log,
    # at the latest when it exits: that fails the run.
    assert not reports, describe_reports(reports)


# Where a module's own stack listens: the shared stack's ports moved once more, to
# places no entry of PORTS takes (so it may run beside the shared stack).
OWN_STACK_SHIFT = 300


@pytest.fixture(scope="module")
def own_stack():
    """A stack of the module's own, for tests that fill the topics with thousands of
    cases or take the whole stack apart: the shared stack's topics stay small (every
    later rebuild after a Redis loss reads them) and nothing they leave reaches other
    modules. A module uses it as its 'stack' with a module-level fixture."""
    running = start_stack({k: v + OWN_STACK_SHIFT for k, v in PORTS.items()}, "own")
    try:
        yield running
    finally:
        reports = stop_stack(running)
    assert not reports, describe_reports(reports)


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer")


REPORT_LINES = 60  # of one sanitizer report, at most, in a failure message


def sanitizer_reports(log_dir):
    """The sanitizer reports in a stack's logs, one string each: the log's name, then
    the report from its first line to its SUMMARY (cut at REPORT_LINES), so that a
    failure on a machine nobody can log into still shows the stacks."""
    found = []
    for name in sorted(os.listdir(log_dir)) if os.path.isdir(log_dir) else []:
        with open(os.path.join(log_dir, name), encoding="utf-8", errors="replace") as f:
            report = None
            for line in f:
                line = line.rstrip("\n")
                if any(m in line for m in SANITIZER_MARKS):
                    if report:
                        found.append("\n".join(report))
                    report = [f"{name}: {line.strip()}"]
                    if "runtime error:" in line:  # UBSan: one line, then its stack
                        continue
                elif report is not None:
                    if len(report) < REPORT_LINES:
                        report.append(line)
                    if line.startswith("SUMMARY:"):
                        found.append("\n".join(report))
                        report = None
            if report:
                found.append("\n".join(report))
    return found


def describe_reports(reports):
    """The reports grouped by their SUMMARY line: how many of each kind, and the
    whole text of the first of each."""
    kinds = {}
    for r in reports:
        summary = next((ln for ln in r.splitlines() if ln.startswith("SUMMARY:")),
                       r.splitlines()[0])
        kinds.setdefault(summary, []).append(r)
    out = [f"{len(reports)} sanitizer report(s) of {len(kinds)} kind(s)"]
    for summary, same in kinds.items():
        out.append(f"--- {len(same)} x {summary}")
        out.append(same[0])
    return "\n".join(out)
