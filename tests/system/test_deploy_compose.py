"""docker-compose.yml's wiring, proven without a Docker engine: its services run as local
processes with exactly the commands, environment, volumes, health checks and ports the
compose file declares (as `docker-compose config` resolves it), against the test
stack's real Kafka and Redis, behind the real HAProxy with the compose file's own
haproxy.cfg, with the topics job's own script; then one event goes end to end through
the proxy's published ports, and every service stops within its stop_grace_period.

What a container would provide and a process cannot is mapped explicitly, and nothing
else is changed:
- the image's files (Dockerfile): duban-<svc> and duban-healthcheck on its PATH
  (/usr/local/bin) are this checkout's build and deploy/docker/duban-healthcheck;
  /usr/share/duban/schemas is schemas/; /opt/kafka/bin/kafka-topics.sh of the Kafka
  image is Kafka's TopicCommand from deploy/kafka/lib;
- volumes: a bind mount is its host path as compose resolved it, a named volume a fresh
  directory;
- the network: <compose service>:<port> is an address on 127.0.0.1 (NETWORK below),
  a container's own 0.0.0.0 is 127.0.0.1, and a published port is that host port;
- PID 1: duban-healthcheck asks the process DUBAN_HEALTHCHECK_PID names.
The stack's own four services are stopped for the duration and started again after, so
that the consumer groups hold only the compose-declared processes."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import requests

from conftest import HOTLINE, OPS, PORTS, ROOT, problem_event

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "deploy"))
from deployfiles import SERVICES, compose_config, copies, dockerfile_stages  # noqa: E402

# Published host ports (the proxy's) given to docker-compose through the env file, and
# the local address standing for each <service>:<port> of the compose network.
PUBLISHED = {svc: PORTS[f"compose-{svc}"] for svc in SERVICES}
NETWORK = {("kafka", 9092): PORTS["kafka"], ("redis", 6379): PORTS["redis"],
           ("mailpit", 1025): PORTS["compose-mailpit"],
           **{(svc, port): PORTS[f"compose-{svc}-net"] for svc, port in
              (("intake", 8081), ("assignment", 8082), ("deadline", 8083),
               ("notification", 8084))}}
IMAGE_BIN = "/usr/local/bin/"
IMAGE_SCHEMAS = "/usr/share/duban/schemas"


def build_dir():
    build = os.environ.get("DUBAN_BUILD_DIR", "build")
    return build if os.path.isabs(build) else os.path.join(ROOT, build)


def image_program(name):
    """A program on the image's PATH, as this checkout has it."""
    if name == "duban-healthcheck":
        return os.path.join(ROOT, "deploy", "docker", "duban-healthcheck")
    svc = re.fullmatch(r"duban-([a-z]+)", name).group(1)
    return os.path.join(build_dir(), "services", svc, name)


def test_image_layout_is_what_the_mapping_assumes():
    """The mapping above follows the Dockerfile: binaries and the health check in
    /usr/local/bin, the schemas in /usr/share/duban/schemas."""
    runtime = copies(dockerfile_stages()[-1])
    assert (["/out/usr/local/bin/"], IMAGE_BIN, ["--from=build"]) in runtime
    assert (["deploy/docker/duban-healthcheck"], IMAGE_BIN + "duban-healthcheck", []) in runtime
    assert (["schemas"], IMAGE_SCHEMAS, []) in runtime


class Mapper:
    """Turns a compose service's declared values into this machine's equivalents."""

    def __init__(self, spec, named_volumes):
        self.paths = {IMAGE_SCHEMAS: os.path.join(ROOT, "schemas")}
        for volume in spec.get("volumes", []):
            source, target = volume.split(":")[:2]
            self.paths[target] = named_volumes.get(source, source)

    def value(self, name, value):
        value = str(value)
        port_var = re.fullmatch(r"DUBAN_([A-Z]+)_PORT", name)
        if port_var and port_var.group(1).lower() in SERVICES:
            return str(NETWORK[(port_var.group(1).lower(), int(value))])
        if name == "DUBAN_BIND" and value == "0.0.0.0":
            return "127.0.0.1"
        for target, source in sorted(self.paths.items(), key=lambda p: -len(p[0])):
            if value == target or value.startswith(target + "/"):
                return source + value[len(target):]
        return re.sub(r"\b([a-z]+):(\d+)\b",
                      lambda m: f"127.0.0.1:{NETWORK[(m.group(1), int(m.group(2)))]}"
                      if (m.group(1), int(m.group(2))) in NETWORK else m.group(0), value)

    def env(self, declared):
        mapped = {k: self.value(k, v) for k, v in declared.items()}
        leftover = [f"{k}={v}" for k, v in mapped.items()
                    if re.search(r"(^|//)(kafka|redis|mailpit):\d|^/etc/|^/var/lib/duban|"
                                 r"^/usr/share/duban", v)]
        assert not leftover, f"declared values without a local equivalent: {leftover}"
        return mapped


def process_env(declared):
    """Exactly the declared environment, plus PATH for duban-healthcheck's curl and the
    sanitizer runtime's own options (ASan build)."""
    extra = {k: v for k, v in os.environ.items()
             if k == "PATH" or re.fullmatch(r"(A|UB|L)SAN_OPTIONS", k)}
    return {**extra, **declared}


def healthcheck(spec, env, pid):
    test = spec["healthcheck"]["test"]
    assert test[0] == "CMD"
    argv = [image_program(test[1]), *test[2:]]
    out = subprocess.run(argv, env=process_env({**env, "DUBAN_HEALTHCHECK_PID": str(pid)}),
                         capture_output=True, text=True, timeout=10)
    return out.returncode


class ComposeRun:
    def __init__(self, stack, work):
        self.stack = stack
        self.work = work
        self.procs = {}
        self.envs = {}
        self.config = compose_config({
            "DUBAN_PII_KEY": stack.env["DUBAN_PII_KEY"],
            **{f"DUBAN_{s.upper()}_PORT": str(p) for s, p in PUBLISHED.items()},
            "REDIS_HOST_PORT": str(PORTS["redis"]), "KAFKA_HOST_PORT": str(PORTS["compose-kafka-host"]),
            "MAILPIT_UI_PORT": str(PORTS["compose-mailpit-ui"])})
        self.named = {name: os.path.join(work, "volume-" + name)
                      for name in self.config.get("volumes", {})}
        for path in self.named.values():
            os.makedirs(path)
        self.outbox = self.named["outbox"]
        self.maildir = os.path.join(work, "mailpit")

    def log(self, name):
        return open(os.path.join(self.stack.var_dir, "log", f"compose-{name}.log"), "ab")

    def topics_job(self):
        """The topics service's entrypoint and command, against the local broker."""
        spec = self.config["services"]["topics"]
        shim = os.path.join(self.work, "opt-kafka-bin")
        os.makedirs(shim)
        lib = os.path.join(ROOT, "deploy", "kafka", "lib")
        log4j = os.path.join(ROOT, "deploy", "local", "log4j2-tools.properties")
        with open(os.path.join(shim, "kafka-topics.sh"), "w") as f:
            f.write("#!/bin/sh\n# The Kafka image's kafka-topics.sh: TopicCommand.\n"
                    f"exec java -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "
                    f"-Dlog4j2.configurationFile={log4j} -cp '{lib}/*' "
                    f"org.apache.kafka.tools.TopicCommand \"$@\"\n")
        os.chmod(os.path.join(shim, "kafka-topics.sh"), 0o755)
        script = spec["command"][0].replace("$$", "$").replace("/opt/kafka/bin", shim)
        env = Mapper(spec, self.named).env(spec["environment"])
        return subprocess.run([*spec["entrypoint"], script], env=process_env(env),
                              capture_output=True, text=True, timeout=120)

    def start_smtp(self):
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(self.maildir, sub))
        port = NETWORK[("mailpit", 1025)]
        self.procs["mailpit"] = subprocess.Popen(
            ["/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
             "-c", "aiosmtpd.handlers.Mailbox", self.maildir],
            stdout=self.log("mailpit"), stderr=subprocess.STDOUT)

    def start_service(self, svc):
        spec = self.config["services"][svc]
        env = Mapper(spec, self.named).env(spec["environment"])
        argv = [image_program(spec["command"][0]), *spec["command"][1:]]
        workdir = os.path.join(self.work, "workdir-" + svc)  # the image's WORKDIR
        os.makedirs(workdir)
        self.envs[svc] = env
        self.procs[svc] = subprocess.Popen(argv, env=process_env(env), cwd=workdir,
                                           stdout=self.log(svc), stderr=subprocess.STDOUT)

    def wait_healthy(self, svc, timeout):
        spec = self.config["services"][svc]
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            assert self.procs[svc].poll() is None, f"{svc} exited"
            if healthcheck(spec, self.envs[svc], self.procs[svc].pid) == 0:
                return
            time.sleep(0.3)
        raise AssertionError(f"{svc} not healthy after {timeout}s")

    def start_proxy(self):
        """HAProxy with the configuration file the proxy service mounts, its binds on
        the published host ports and its back ends at the services' local addresses."""
        spec = self.config["services"]["proxy"]
        source = next(v.split(":")[0] for v in spec["volumes"]
                      if v.split(":")[1] == "/usr/local/etc/haproxy/haproxy.cfg")
        published = {}
        for port in spec["ports"]:
            host_ip, host_port, container_port = port.removesuffix("/tcp").split(":")
            published[int(container_port)] = f"{host_ip}:{host_port}"
        with open(source, encoding="utf-8") as f:
            cfg = f.read()
        cfg = re.sub(r"^(\s*bind ):(\d+)$", lambda m: m.group(1) + published[int(m.group(2))],
                     cfg, flags=re.M)
        # One slot per back end: one replica of each runs here.
        cfg = re.sub(r"^(\s*server-template \S+ )\d+ ([a-z]+):(\d+)$",
                     lambda m: f"{m.group(1)}1 127.0.0.1:"
                               f"{NETWORK[(m.group(2), int(m.group(3)))]}",
                     cfg, flags=re.M)
        path = os.path.join(self.work, "haproxy.cfg")
        with open(path, "w", encoding="utf-8") as f:
            f.write(cfg)
        self.procs["proxy"] = subprocess.Popen(["haproxy", "-db", "-f", path],
                                               stdout=self.log("proxy"),
                                               stderr=subprocess.STDOUT)

    def url(self, svc, path):
        return f"http://127.0.0.1:{PUBLISHED[svc]}{path}"

    def stop(self, name, sig=signal.SIGTERM, timeout=15):
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return None
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            return None
        return proc.returncode


@pytest.fixture(scope="module")
def compose(stack):
    work = tempfile.mkdtemp(prefix="duban-compose-", dir=os.environ.get("TMPDIR"))
    for svc in SERVICES:
        stack.kill(svc, signal.SIGTERM)
    run = ComposeRun(stack, work)
    try:
        run.topics = run.topics_job()
        run.start_smtp()
        for svc in SERVICES:
            run.start_service(svc)
        for svc in SERVICES:
            run.wait_healthy(svc, timeout=90)
        run.start_proxy()
        yield run
    finally:
        for name in list(run.procs):
            run.stop(name, signal.SIGKILL if name not in SERVICES else signal.SIGTERM)
        stack.start_missing()
        shutil.rmtree(work, ignore_errors=True)


def test_topics_job_runs_its_script_against_kafka(compose):
    job = compose.topics
    assert job.returncode == 0, job.stdout + job.stderr
    counts = dict(re.findall(r"Topic: (duban\.[a-z]+)\s.*PartitionCount: (\d+)", job.stdout))
    assert counts == {"duban.inbound": "6", "duban.cases": "12",
                      "duban.notifications": "6", "duban.dlq": "3"}, job.stdout


def test_each_service_passes_its_declared_health_check(compose):
    for svc in SERVICES:
        spec = compose.config["services"][svc]
        assert healthcheck(spec, compose.envs[svc], compose.procs[svc].pid) == 0, svc
        # The same script refuses a process that is not that service.
        assert healthcheck(spec, compose.envs[svc], os.getpid()) != 0, svc


def wait_for(url, pred, timeout=30, token=OPS):
    until = time.monotonic() + timeout
    while True:
        try:
            r = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
            if pred(r) or time.monotonic() > until:
                return r
        except requests.ConnectionError:
            if time.monotonic() > until:
                raise
        time.sleep(0.2)


def files_about(base, case_id):
    found = []
    for top, _, files in os.walk(base):
        for name in files:
            if name.startswith("."):
                continue
            with open(os.path.join(top, name), encoding="utf-8", errors="replace") as f:
                if case_id in f.read():
                    found.append(os.path.relpath(os.path.join(top, name), base))
    return found


def test_an_event_goes_end_to_end_through_the_proxy(compose):
    for svc in SERVICES:  # the proxy found each service ready
        r = wait_for(compose.url(svc, "/readyz"), lambda r: r.status_code == 200)
        assert r.status_code == 200, (svc, r.text)
    event = problem_event(f"compose-{int(time.time() * 1000)}")
    event["data"]["kind"] = "clue"  # R-CLUES: U-CMO, whose officers have room
    r = requests.post(compose.url("intake", "/v1/events"), data=json.dumps(event),
                      headers={"Authorization": f"Bearer {HOTLINE}",
                               "Content-Type": "application/cloudevents+json"}, timeout=15)
    assert r.status_code == 202, r.text
    case_id = r.json()["case_id"]
    a = wait_for(compose.url("assignment", f"/v1/assignments/{case_id}"),
                 lambda r: r.status_code == 200)
    assert a.status_code == 200, a.text
    assert a.json()["unit"] == "U-CMO"
    c = wait_for(compose.url("deadline", f"/v1/cases/{case_id}"),
                 lambda r: r.status_code == 200 and r.json()["state"] == "assigned")
    assert c.status_code == 200 and c.json()["state"] == "assigned", c.text
    n = wait_for(compose.url("notification", f"/v1/notifications?case_id={case_id}"),
                 lambda r: r.status_code == 200 and r.json()["notifications"])
    assert n.status_code == 200 and n.json()["notifications"], n.text
    # The reporter's SMS went where DUBAN_SMS_URL (empty) sends it: the outbox volume.
    until = time.monotonic() + 20
    while not any(p.startswith("sms") for p in files_about(compose.outbox, case_id)):
        assert time.monotonic() < until, os.listdir(compose.outbox)
        time.sleep(0.2)
    if a.json().get("officer"):
        # The officer's email went to the SMTP catcher DUBAN_SMTP_URL names, or, for a
        # notification service that writes every channel to the outbox, there.
        until = time.monotonic() + 20
        while not (files_about(compose.maildir, case_id) or
                   any(p.startswith("email") for p in files_about(compose.outbox, case_id))):
            assert time.monotonic() < until, "no email about the case"
            time.sleep(0.2)
    # Metrics through the proxy, as a scraper outside the network would not; here it
    # shows the request counter of the route just used.
    m = requests.get(compose.url("intake", "/metrics"), timeout=5).text
    assert re.search(r'^duban_http_requests_total\{route="/v1/events",method="POST",'
                     r'code="202"\} [1-9]', m, re.M), m[:2000]


def test_every_service_stops_within_its_grace_period(compose):
    for svc in SERVICES:
        grace = int(compose.config["services"][svc]["stop_grace_period"].rstrip("s"))
        started = time.monotonic()
        code = compose.stop(svc, signal.SIGTERM, timeout=grace)
        took = time.monotonic() - started
        assert code == 0, f"{svc} exited with {code} after SIGTERM (or needed SIGKILL)"
        assert took < grace, (svc, took)
