#!/usr/bin/env python3
"""deadline.py BUILD_DIR - the deadline benchmark of issue 5.

One deadline instance holds CASES open cases (default 1,000,000); DUE of them (default
10,000) have their accept deadline in the same second. The script prints, beside the raw
limits measured in the same run (kcat reading the same records, redis-benchmark):
  - how fast deadline loaded the cases from duban.cases, against kcat's read rate;
  - its resident memory with every case loaded (target <= 300 MB);
  - the time it takes to become ready after a restart (target <= 20 s);
  - the fire lag p50/p99 of the DUE timers, from their moment to the write of their
    event (the record's timestamp) (target p99 <= 1 s).

It starts its own Kafka and Redis (deploy/local/stack.sh, no services) on ports
27092/27093/27379 and deadline on 27083, with a var dir under /tmp that it removes at the
end (BENCH_KEEP_VAR=1 keeps it). The cases are written straight to duban.cases as
duban.case.received events, keyed and partitioned as intake writes them; deadline runs
with DUBAN_DEADLINE_CLOCK_OFFSET_MS so that the moment comes when the script wants it.
Environment: BENCH_CASES, BENCH_DUE, BENCH_KAFKA_PORT, BENCH_KAFKA_CONTROLLER_PORT,
BENCH_REDIS_PORT, BENCH_DEADLINE_PORT, BENCH_LOAD_TIMEOUT (seconds, 1800)."""
import datetime
import glob
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
DUE = int(os.environ.get("BENCH_DUE", "10000"))
KAFKA = int(os.environ.get("BENCH_KAFKA_PORT", "27092"))
CONTROLLER = int(os.environ.get("BENCH_KAFKA_CONTROLLER_PORT", "27093"))
REDIS = int(os.environ.get("BENCH_REDIS_PORT", "27379"))
PORT = int(os.environ.get("BENCH_DEADLINE_PORT", "27083"))
LOAD_TIMEOUT = int(os.environ.get("BENCH_LOAD_TIMEOUT", "1800"))
LEAD_S = 20  # after the restart, the moment comes this much later on deadline's clock
FAR_S = 6 * 3600  # while loading, the moment is this far ahead


def say(text):
    print(f"deadline.py: {text}", file=sys.stderr, flush=True)


def working_days():
    off, on = set(), set()
    for path in glob.glob(os.path.join(ROOT, "deploy", "config", "calendar", "*.json")):
        with open(path, encoding="utf-8") as f:
            for day in json.load(f)["days"]:
                (off if day["isOffDay"] else on).add(day["date"])
    return lambda d: d.isoformat() in on or (d.weekday() < 5 and d.isoformat() not in off)


def previous_working(day, working):
    day -= datetime.timedelta(days=1)
    while not working(day):
        day -= datetime.timedelta(days=1)
    return day


def at(day, hh, mm, ss=0):
    return datetime.datetime.combine(day, datetime.time(hh, mm, ss), SHANGHAI)


def redis(*args):
    return redis_cli(REDIS, *args)


def timers_loaded():
    total = 0
    for key in redis("--scan", "--pattern", "duban:deadline:timers:*").split():
        total += int(redis("ZCARD", key) or 0)
    return total


def ready():
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/readyz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def rss_mb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def write_events(path, due_start, rest_start):
    """CASES lines 'key<TAB>event': DUE cases reported at due_start, the rest later."""
    with open(path, "w", encoding="utf-8") as f:
        for i in range(CASES):
            case_id = f"DBBENCH{i:020d}"
            start = due_start if i < DUE else rest_start + datetime.timedelta(seconds=i)
            t = start.isoformat()
            data = {"case_id": case_id, "kind": "complaint", "category": "work_style",
                    "severity": "normal", "title": "某街道便民服务窗口推诿扯皮",
                    "region": f"3201{i % 100:02d}",
                    "subject": {"unit_id": f"U-STREET-{i % 50:02d}"}, "anonymous": True,
                    "received_at": t, "clock_start": t,
                    "origin": {"source": "/gov/hotline-12345", "id": f"bench-{i}"}}
            event = {"specversion": "1.0", "id": f"{case_id}.received",
                     "source": "/duban/intake", "type": "duban.case.received",
                     "subject": case_id, "time": t, "datacontenttype": "application/json",
                     "data": data}
            f.write(f"{case_id}\t{json.dumps(event, ensure_ascii=False)}\n")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: deadline.py BUILD_DIR")
    build = os.path.abspath(sys.argv[1])
    binary = os.path.join(build, "services", "deadline", "duban-deadline")
    if not os.access(binary, os.X_OK):
        sys.exit(f"deadline.py: {binary} is missing; build first (make build)")
    var, env = stack_env("deadline", build, KAFKA, CONTROLLER, REDIS)
    brokers = f"127.0.0.1:{KAFKA}"
    deadline = None
    log = open(os.path.join(var, "deadline.log"), "ab")

    def start(offset_ms):
        e = {**env, "DUBAN_KAFKA_BROKERS": brokers,
             "DUBAN_REDIS_URL": f"redis://127.0.0.1:{REDIS}/0",
             "DUBAN_SCHEMA_DIR": os.path.join(ROOT, "schemas"),
             "DUBAN_DEADLINE_PORT": str(PORT), "DUBAN_LOG_LEVEL": "warn",
             "DUBAN_DEADLINE_CLOCK_OFFSET_MS": str(offset_ms)}
        return subprocess.Popen([binary], env=e, cwd=ROOT, stdout=log, stderr=log)

    try:
        say("starting Kafka and Redis")
        stack_up(env)
        working = working_days()
        today = datetime.datetime.now(SHANGHAI).date()
        w2 = previous_working(today, working)
        w1 = previous_working(w2, working)
        moment = at(w2, 23, 59, 59)  # the accept deadline of a case reported on w1
        moment_ms = int(moment.timestamp() * 1000)
        events = os.path.join(var, "events.txt")
        say(f"writing {CASES} cases, {DUE} of them due at {moment.isoformat()}")
        write_events(events, at(w1, 10, 0), at(w2, 12, 0))
        t = time.monotonic()
        subprocess.run(["kcat", "-P", "-b", brokers, "-t", "duban.cases", "-K", "\t",
                        "-H", "content-type=application/cloudevents+json",
                        "-X", "partitioner=murmur2_random", "-X", "linger.ms=50",
                        "-l", events], check=True, timeout=1800)
        produce_s = time.monotonic() - t
        t = time.monotonic()
        read = subprocess.run(["kcat", "-C", "-b", brokers, "-t", "duban.cases", "-e", "-q",
                               "-o", "beginning", "-f", "%o\n"], check=True,
                              capture_output=True, timeout=1800).stdout.count(b"\n")
        kcat_read_s = time.monotonic() - t
        assert read == CASES, f"kcat read {read} records"
        bench = subprocess.run(["redis-benchmark", "-p", str(REDIS), "-q", "-n", "200000",
                                "-P", "16", "-t", "set,get"], capture_output=True,
                               text=True, timeout=300).stdout
        redis_rates = " ".join(line.split(" requests")[0].replace("\r", " ").split()[-1] +
                               " " + line.split(":")[0].split()[-1]
                               for line in bench.splitlines() if "requests per second" in line)

        # Load: the moment is far ahead, nothing fires.
        say("deadline loads the cases")
        offset = moment_ms - FAR_S * 1000 - int(time.time() * 1000)
        t = time.monotonic()
        deadline = start(offset)
        loaded = 0
        while time.monotonic() - t < LOAD_TIMEOUT:
            loaded = timers_loaded()
            if loaded >= CASES and ready():
                break
            if deadline.poll() is not None:
                sys.exit("deadline.py: deadline exited while loading")
            time.sleep(2)
        load_s = time.monotonic() - t
        assert loaded >= CASES, f"only {loaded} cases loaded in {load_s:.0f} s"
        rss_loaded = rss_mb(deadline.pid)
        redis_mb = int(redis("INFO", "memory").split("used_memory:")[1].split()[0]) / 2**20

        # Restart with the moment LEAD_S ahead; time until ready.
        say("restarting deadline")
        deadline.send_signal(signal.SIGTERM)
        deadline.wait(timeout=60)
        offset = moment_ms - LEAD_S * 1000 - int(time.time() * 1000)
        t = time.monotonic()
        deadline = start(offset)
        while not ready():
            if time.monotonic() - t > 300 or deadline.poll() is not None:
                sys.exit("deadline.py: deadline did not become ready after its restart")
            time.sleep(0.05)
        ready_s = time.monotonic() - t

        # The DUE timers fall due in the same second.
        real_moment = (moment_ms - offset) / 1000
        while time.time() < real_moment + 10:
            time.sleep(0.5)
        lags, until = [], time.monotonic() + 300
        while time.monotonic() < until:
            out = subprocess.run(["kcat", "-C", "-b", brokers, "-t", "duban.cases", "-e",
                                  "-q", "-o", "beginning", "-f", "%T %k %s\n"],
                                 capture_output=True, check=True, timeout=1800).stdout
            lags = [int(line.split(b" ", 2)[0]) + offset - moment_ms
                    for line in out.splitlines() if b".overdue.accept." in line]
            if len(lags) >= DUE:
                break
            time.sleep(2)
        rss_fired = rss_mb(deadline.pid)
        peak = rss_mb(deadline.pid, "VmHWM")

        print(f"\ndeadline benchmark: {datetime.datetime.now().isoformat(timespec='seconds')},"
              f" {CASES} open cases, {DUE} due in one second, {os.cpu_count()} CPUs")
        print(f"{'figure':44} {'value':>14}   {'target / baseline':28} verdict")
        kcat_rate = CASES / kcat_read_s
        load_rate = CASES / load_s

        def line(name, value, target, verdict="-"):
            print(f"{name:44} {value:>14}   {target:28} {verdict}")
        line("kcat reads duban.cases (baseline)", f"{kcat_rate:,.0f} msg/s", "(baseline)")
        line("kcat writes the cases (baseline)", f"{CASES / produce_s:,.0f} msg/s", "(baseline)")
        line("redis-benchmark -P 16 (baseline)", redis_rates, "(baseline)")
        line("deadline loads cases", f"{load_rate:,.0f} cases/s",
             f"ratio to kcat read {load_rate / kcat_rate:.3f}")
        line("resident memory, all cases loaded", f"{rss_loaded:.1f} MB", "<= 300 MB",
             "met" if rss_loaded <= 300 else "not met")
        line("resident memory after firing (peak)", f"{rss_fired:.1f} ({peak:.1f}) MB",
             "<= 300 MB", "met" if peak <= 300 else "not met")
        line("redis memory for the cases", f"{redis_mb:.0f} MB", "-")
        line("ready after a restart", f"{ready_s:.2f} s", "<= 20 s",
             "met" if ready_s <= 20 else "not met")
        if len(lags) >= DUE:
            p50, p99 = percentile(lags, 50) / 1000, percentile(lags, 99) / 1000
            line(f"fire lag p50 / p99 / max ({len(lags)} timers)",
                 f"{p50:.3f} / {p99:.3f} / {max(lags) / 1000:.3f} s", "p99 <= 1 s",
                 "met" if p99 <= 1 else "not met")
            dup = len(lags) - DUE
            line("timer events beyond one per case", str(dup), "0", "met" if dup == 0 else
                 "not met")
        else:
            line("fire lag", f"only {len(lags)} of {DUE} fired", "p99 <= 1 s", "not met")
    finally:
        teardown([deadline], env, var, say)


if __name__ == "__main__":
    main()
