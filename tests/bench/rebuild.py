#!/usr/bin/env python3
"""rebuild.py BUILD_DIR - how fast each service rebuilds its Redis state from the topics
(issue 12), beside kcat reading the same records in the same run.

It starts its own Kafka and Redis (deploy/local/stack.sh, no services) on ports
28092/28093/28379, writes CASES cases straight to duban.cases (a duban.case.received and
a duban.case.assigned event each, keyed, partitioned and with the headers intake and
assignment write, by tests/bench/bench_produce.c) and one e-mail job per case to duban.notifications, and commits the
end of both topics for every consumer group, so that the services consume nothing old:
what they read is their rebuild alone. Redis is empty, as after FLUSHALL. Then it starts
the four services (ports 28081-28084) and measures, per service, the time until its
completion marks are back in Redis and /readyz answers 200:
  intake        duban:intake:index         reads duban.cases
  assignment    duban:assignment:complete  reads duban.cases
  deadline      duban:deadline:partition:* reads duban.cases (each partition it owns)
  notification  duban:notify:planner       reads duban.cases
                duban:notify:sender        reads duban.notifications
and prints each rebuild's rate as a ratio to kcat's read rate of the same topic (target
>= 0.2), its time to ready (target <= 60 s), and each service's CPU time per record it
read (user + system, from /proc: a figure other work on the machine does not move). The var dir under /tmp is removed at
the end (BENCH_KEEP_VAR=1 keeps it, with every service's log).
It does so twice: the four services at once (a FLUSHALL on one host: they share its
CPUs), then each service alone on an empty Redis (as each runs in its own container),
where Redis's CPU time per record is printed too.
Environment: BENCH_CASES (1,000,000), BENCH_TIMEOUT (seconds per run, 1800),
BENCH_MODE ("together,alone"; either alone), BENCH_ALONE (the services run alone, all
four unless a comma-separated list names some), BENCH_REPLICAS (instances of each
service in the runs alone: 1; 2 or more show what adding replicas does)."""
import datetime
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from benchstack import ROOT, redis_cli, stack_env, stack_up, teardown

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))

CASES = int(os.environ.get("BENCH_CASES", "1000000"))
TIMEOUT = int(os.environ.get("BENCH_TIMEOUT", "1800"))
KAFKA, CONTROLLER, REDIS = 28092, 28093, 28379
PORTS = {"intake": 28081, "assignment": 28082, "deadline": 28083, "notification": 28084}
GROUPS = {"duban-assignment": ["duban.cases"], "duban-deadline": ["duban.cases"],
          "duban-notification": ["duban.cases"],
          "duban-notification-sender": ["duban.notifications"],
          "duban-intake": ["duban.inbound"]}


def say(text):
    print(f"rebuild.py: {text}", file=sys.stderr, flush=True)


def redis(*args):
    return redis_cli(REDIS, *args)


def ready(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz",
                                    timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def write_records(cases_path, notes_path):
    """CASES cases: 'key<TAB>headers<TAB>event' lines, a case's received event followed
    by its assigned one, and one job per case for duban.notifications. Units and
    officers are the demo directory's."""
    # Reported now: every deadline lies ahead, so no timer fires during the rebuild.
    t = datetime.datetime.now(SHANGHAI).isoformat(timespec="seconds")
    with open(cases_path, "w", encoding="utf-8") as c, \
            open(notes_path, "w", encoding="utf-8") as n:
        for i in range(CASES):
            case_id = f"DBRB{i:024d}"
            received = {
                "specversion": "1.0", "id": f"{case_id}.received", "source": "/duban/intake",
                "type": "duban.case.received", "subject": case_id, "time": t,
                "datacontenttype": "application/json",
                "data": {"case_id": case_id, "kind": "complaint", "category": "work_style",
                         "severity": "normal", "title": "某街道便民服务窗口推诿扯皮",
                         "region": "320102", "subject": {"unit_id": "U-STREET-07"},
                         "anonymous": True, "received_at": t, "clock_start": t,
                         "origin": {"source": "/gov/hotline-12345", "id": f"rb-{i}"}}}
            assigned = {
                "specversion": "1.0", "id": f"{case_id}.assigned.1",
                "source": "/duban/assignment", "type": "duban.case.assigned",
                "subject": case_id, "time": t, "datacontenttype": "application/json",
                "data": {"case_id": case_id, "unit": "U-IG-03", "officer": "O-IG03-LI",
                         "rule": "bench", "strategy": "least_loaded", "recused": [],
                         "needs_manual": False, "attempt": 1, "cause": "received"}}
            ce = "content-type=application/cloudevents+json"
            c.write(f"{case_id}\t{ce}|duban-type=duban.case.received|"
                    f"duban-origin-source=/gov/hotline-12345|duban-origin-id=rb-{i}\t"
                    f"{json.dumps(received, ensure_ascii=False)}\n")
            c.write(f"{case_id}\t{ce}|duban-type=duban.case.assigned\t"
                    f"{json.dumps(assigned, ensure_ascii=False)}\n")
            job = {"kind": "job", "key": f"{i:064x}", "tag": case_id, "case_id": case_id,
                   "cause": f"{case_id}.assigned.1", "event": "duban.case.assigned",
                   "template": "assigned", "channel": "email",
                   "recipient_id": "O-IG03-LI", "urgent": False,
                   "created_at": 1793000000000, "masked": "l***@example.gov.cn",
                   "to": "li@example.gov.cn", "subject": "新案件", "body": "请登录系统查看。"}
            n.write(f"{case_id}\t\t{json.dumps(job, ensure_ascii=False)}\n")


def produce(tool, brokers, topic, path):
    """Writes the lines of 'path' (key, headers, value) with bench_produce: partitioned
    as the services write (murmur2 of the key), each record with its own headers, as
    intake and assignment write them."""
    with open(path, "rb") as f:
        subprocess.run([tool, brokers, topic], stdin=f, check=True, timeout=TIMEOUT)


def cpu_s(pid):
    """User and system CPU seconds the process has used."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kcat_read(brokers, topic, expect):
    t = time.monotonic()
    n = subprocess.run(["kcat", "-C", "-b", brokers, "-t", topic, "-e", "-q", "-o",
                        "beginning", "-f", "%o\n"], check=True, capture_output=True,
                       timeout=TIMEOUT).stdout.count(b"\n")
    s = time.monotonic() - t
    assert n == expect, f"kcat read {n} records of {topic}, expected {expect}"
    return n / s


MARKS = {"intake": ["duban:intake:index"], "assignment": ["duban:assignment:complete"],
         "deadline": None,  # one per partition of duban.cases
         "notes": ["duban:notify:planner"], "states": ["duban:notify:sender"]}
SERVICE_OF = {"notes": "notification", "states": "notification"}


def redis_cpu_s():
    """User and system CPU seconds redis-server has used (INFO cpu)."""
    info = dict(line.split(":", 1) for line in redis("INFO", "cpu").splitlines()
                if ":" in line)
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def wake(brokers, var, partitions):
    """The planner notices its lost notes at its next event: one per partition."""
    keys = [f"DBWAKE{p:022d}" for p in range(4 * partitions)]
    path = os.path.join(var, "wake.txt")
    with open(path, "w", encoding="utf-8") as f:
        for key in keys:
            f.write(key + "\t" + json.dumps({
                "specversion": "1.0", "id": f"wake-{key}-{time.monotonic_ns()}",
                "source": "/gov/unit-oa", "type": "duban.case.progressed",
                "datacontenttype": "application/json", "data": {"case_id": key}}) + "\n")
    subprocess.run(["kcat", "-P", "-b", brokers, "-t", "duban.cases", "-K", "\t",
                    "-H", "duban-type=duban.case.progressed",
                    "-X", "partitioner=murmur2_random", "-l", path], check=True, timeout=60)


def rebuild(services, build, var, base, brokers, partitions, replicas=1):
    """Starts 'replicas' instances of each of 'services' (ports PORTS[svc] + 100 * k) on
    an empty Redis and waits until each rebuilt and every instance is ready. Returns
    (seconds until each rebuild was done and its service ready, CPU seconds of each
    service's instances then, Redis's CPU seconds over the run); they are stopped."""
    redis("FLUSHALL")
    procs = {}
    redis0 = redis_cpu_s()
    t0 = time.monotonic()
    try:
        for svc in services:
            for k in range(replicas):
                log = open(os.path.join(var, f"{svc}-{k}.log"), "ab")
                port = PORTS[svc] + 100 * k
                procs.setdefault(svc, []).append((port, subprocess.Popen(
                    [os.path.join(build, "services", svc, f"duban-{svc}")],
                    env={**base, f"DUBAN_{svc.upper()}_PORT": str(port)}, cwd=ROOT,
                    stdout=log, stderr=log)))
        wake(brokers, var, partitions)
        marks = {w: keys or [f"duban:deadline:partition:{p}" for p in range(partitions)]
                 for w, keys in MARKS.items() if SERVICE_OF.get(w, w) in services}
        done, cpu = {}, {}
        while len(done) < len(marks) and time.monotonic() - t0 < TIMEOUT:
            for what, keys in marks.items():
                svc = SERVICE_OF.get(what, what)
                if what in done:
                    continue
                for _, p in procs[svc]:
                    if p.poll() is not None:
                        sys.exit(f"rebuild.py: {svc} exited with {p.returncode}")
                if all(redis("EXISTS", k) == "1" for k in keys) and \
                        all(ready(port) for port, _ in procs[svc]):
                    done[what] = time.monotonic() - t0
                    if all(w in done for w in marks if SERVICE_OF.get(w, w) == svc):
                        # all of its rebuilds done
                        cpu[svc] = sum(cpu_s(p.pid) for _, p in procs[svc])
                    say(f"{what}: rebuilt and ready after {done[what]:.1f} s")
            time.sleep(0.25)
        missing = [w for w in marks if w not in done]
        assert not missing, f"not rebuilt within {TIMEOUT} s: {missing} (done: {done})"
        return done, cpu, redis_cpu_s() - redis0
    finally:
        for instances in procs.values():
            for _, p in instances:
                p.send_signal(signal.SIGTERM)
        for svc, instances in procs.items():
            for _, p in instances:
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    sys.exit(f"rebuild.py: {svc} did not stop within 60 s of SIGTERM")


def report(title, done, cpu, redis_cpu, kcat_cases, kcat_notes):
    rows = [("intake: deduplication index", "intake", 2 * CASES, kcat_cases),
            ("assignment: case states, workloads", "assignment", 2 * CASES, kcat_cases),
            ("deadline: case documents, timers", "deadline", 2 * CASES, kcat_cases),
            ("notification: case notes", "notes", 2 * CASES, kcat_cases),
            ("notification: message states", "states", CASES, kcat_notes)]
    print(f"\n{title}")
    print(f"{'figure':44} {'value':>16}   {'target / baseline':24} verdict")

    def line(name, value, target, verdict=""):
        print(f"{name:44} {value:>16}   {target:24} {verdict}")
    line("kcat reads duban.cases", f"{kcat_cases:,.0f} rec/s", "(baseline)")
    line("kcat reads duban.notifications", f"{kcat_notes:,.0f} rec/s", "(baseline)")
    for name, what, records, baseline in rows:
        if what not in done:
            continue
        rate = records / done[what]
        ratio = rate / baseline
        line(f"{name}: rate", f"{rate:,.0f} rec/s",
             f"ratio {ratio:.3f} (>= 0.2)", "ok" if ratio >= 0.2 else "MISSED")
        line(f"{name}: ready after", f"{done[what]:.1f} s", "<= 60 s",
             "ok" if done[what] <= 60 else "MISSED")
        if what != "notes":  # notification's CPU is counted once, with its states
            svc = SERVICE_OF.get(what, what)
            n = records + (2 * CASES if what == "states" else 0)
            line(f"{svc}: CPU per record read", f"{cpu[svc] / n * 1e6:.1f} us",
                 "(user+sys, all it read)")
    if len(done) <= 2:  # one service: Redis worked for it alone
        svc = SERVICE_OF.get(next(iter(done)), next(iter(done)))
        n = 2 * CASES + (CASES if svc == "notification" else 0)
        line(f"redis-server: CPU per record {svc} read", f"{redis_cpu / n * 1e6:.1f} us",
             "(user+sys, INFO cpu)")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: rebuild.py BUILD_DIR")
    build = os.path.abspath(sys.argv[1])
    commit = os.path.join(build, "tests", "bench", "bench_commit")
    tools = [commit, os.path.join(build, "tests", "bench", "bench_produce")]
    for exe in tools + [os.path.join(build, "services", s, f"duban-{s}") for s in PORTS]:
        if not os.access(exe, os.X_OK):
            sys.exit(f"rebuild.py: {exe} is missing; build first (make build)")
    modes = os.environ.get("BENCH_MODE", "together,alone").split(",")
    var, env = stack_env("rebuild", build, KAFKA, CONTROLLER, REDIS)
    brokers = f"127.0.0.1:{KAFKA}"
    try:
        say("starting Kafka and Redis")
        stack_up(env)
        cases_path = os.path.join(var, "cases.txt")
        notes_path = os.path.join(var, "notifications.txt")
        say(f"writing {CASES} cases ({2 * CASES} records) and {CASES} jobs")
        write_records(cases_path, notes_path)
        tool = os.path.join(build, "tests", "bench", "bench_produce")
        produce(tool, brokers, "duban.cases", cases_path)
        produce(tool, brokers, "duban.notifications", notes_path)
        kcat_cases = kcat_read(brokers, "duban.cases", 2 * CASES)
        kcat_notes = kcat_read(brokers, "duban.notifications", CASES)
        for group, topics in GROUPS.items():
            subprocess.run([commit, brokers, group, *topics], check=True, timeout=120)
        partitions = int(subprocess.run(
            ["kcat", "-L", "-b", brokers, "-t", "duban.cases"], capture_output=True,
            text=True, check=True, timeout=30).stdout.split(" with ")[1].split()[0])
        base = {**env, "DUBAN_KAFKA_BROKERS": brokers,
                "DUBAN_REDIS_URL": f"redis://127.0.0.1:{REDIS}/0",
                "DUBAN_SCHEMA_DIR": os.path.join(ROOT, "schemas"), "DUBAN_LOG_LEVEL": "info",
                "DUBAN_OUTBOX_DIR": os.path.join(var, "outbox")}
        stamp = datetime.datetime.now().isoformat(timespec="seconds")
        head = (f"{CASES} cases ({2 * CASES} records in duban.cases, {CASES} in "
                f"duban.notifications), {os.cpu_count()} CPUs")
        if "together" in modes:
            say("the four services at once on an empty Redis (FLUSHALL)")
            done, cpu, rcpu = rebuild(list(PORTS), build, var, base, brokers, partitions)
            report(f"rebuild benchmark: {stamp}, {head}, the four services at once",
                   done, cpu, rcpu, kcat_cases, kcat_notes)
        if "alone" in modes:
            # As in production, where each service runs in its own container: one at a
            # time, each on an empty Redis, beside the same kcat figures.
            replicas = int(os.environ.get("BENCH_REPLICAS", "1"))
            alone = f"{replicas} instances" if replicas > 1 else "alone"
            for svc in os.environ.get("BENCH_ALONE", ",".join(PORTS)).split(","):
                say(f"{svc} {alone} on an empty Redis (FLUSHALL)")
                done, cpu, rcpu = rebuild([svc], build, var, base, brokers, partitions,
                                          replicas)
                report(f"rebuild benchmark: {stamp}, {head}, {svc} {alone}", done, cpu,
                       rcpu, kcat_cases, kcat_notes)
    finally:
        teardown([], env, var, say)


if __name__ == "__main__":
    main()
