"""Redis misbehaving for 20 s while cases flow: nothing accepted is lost (the scenario
and what it requires are in faults.py).

The faults are real ones on the real redis-server: maxmemory with noeviction (OOM),
REPLICAOF a master that does not answer (READONLY), the process frozen with SIGSTOP
(nothing answers), and a restart with a dataset large enough that Redis answers LOADING
for several seconds. The module runs on a stack of its own, since it breaks Redis for
everyone using it."""
import json
import os
import signal
import socket
import subprocess
import time
import uuid

import pytest
import requests

from assigning import problem, subject_of
from conftest import HOTLINE, wait_until
from faults import nothing_lost, own_stack_and_unit
from test_intake import event_status

PREFIX = "RF"
FAULT_S = 20


# The module's own stack, and its own unit on it.
stack, unit = own_stack_and_unit(PREFIX)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def oom_fault(stack):
    """maxmemory just above what Redis uses, with noeviction: the first writes go in,
    then every write is refused with OOM (also half-way through a pipeline)."""
    policy = stack.redis("CONFIG", "GET", "maxmemory-policy").split()[-1]
    used = int(next(line.split(":")[1] for line in stack.redis("INFO", "memory").split()
                    if line.startswith("used_memory:")))
    stack.redis("CONFIG", "SET", "maxmemory-policy", "noeviction")
    stack.redis("CONFIG", "SET", "maxmemory", str(used + 256 * 1024))

    def restore():
        stack.redis("CONFIG", "SET", "maxmemory", "0")
        stack.redis("CONFIG", "SET", "maxmemory-policy", policy)
    return restore, "OOM"


def readonly_fault(stack):
    """Redis made a replica of a master that does not answer, as after a failover that
    left the services on the old master: it keeps its data and refuses writes."""
    stack.redis("REPLICAOF", "127.0.0.1", str(free_port()))
    return (lambda: stack.redis("REPLICAOF", "NO", "ONE")), "READONLY"


def frozen_fault(stack):
    """redis-server stopped with SIGSTOP: connections stay open and nothing answers,
    as with a host paused or a process stuck in a long fork."""
    pid = redis_pid(stack)
    os.kill(pid, signal.SIGSTOP)
    return (lambda: os.kill(pid, signal.SIGCONT)), "redis is not reachable"


# Records of padding (100-byte values, in database 1, which no service uses) that make
# a restart load long enough: 3,000,000 took 7.5 s to load on the 2-core test machine.
PAD_KEYS = 3_000_000


def redis_pid(stack):
    with open(os.path.join(stack.var_dir, "redis", "redis.pid")) as f:
        return int(f.read().strip())


def loading_fault(stack):
    """Redis shut down and started again on its append-only file, which holds the
    services' data and PAD_KEYS records of padding: until it has read them all it
    answers every command with LOADING (and before it listens, not at all)."""
    value = "x" * 100
    proto = "".join(f"*3\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n$100\r\n{value}\r\n"
                    for k in (f"pad:{i}" for i in range(PAD_KEYS)))
    subprocess.run(["redis-cli", "-p", str(stack.ports["redis"]), "-n", "1", "--pipe"],
                   input=proto.encode(), check=True, capture_output=True, timeout=300)
    script = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "local",
                          "redis.sh")
    stop = subprocess.run([script, "stop"], env=stack.env, capture_output=True, text=True,
                          timeout=60)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    starting = subprocess.Popen([script, "start"], env={**stack.env,
                                                        "DUBAN_REDIS_START_TIMEOUT": "120"},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    saw = []

    def loading():
        r = subprocess.run(["redis-cli", "-p", str(stack.ports["redis"]), "PING"],
                           capture_output=True, text=True, timeout=10)
        saw.append(r.stdout.strip())
        return "LOADING" in r.stdout
    wait_until(loading, 30, "Redis answering LOADING after its restart", step=0.05,
               show=lambda: saw[-5:])

    def restore():
        out, _ = starting.communicate(timeout=180)
        assert starting.returncode == 0, out
        print(f"\nLOADING: {sum('LOADING' in x for x in saw)} answers of LOADING seen by "
              f"the test before it went on")
        stack.redis("-n", "1", "FLUSHDB", "ASYNC")
    return restore, "LOADING"


@pytest.mark.parametrize("make_fault", [oom_fault, readonly_fault, frozen_fault,
                                        loading_fault],
                         ids=["oom", "readonly", "frozen", "loading"])
def test_nothing_accepted_is_lost_while_redis_misbehaves(stack, unit, make_fault):
    nothing_lost(stack, unit, make_fault, "redis", FAULT_S)


def test_rejections_answered_while_redis_is_frozen(stack, unit):
    """Review C9: intake recorded each rejected event with a SET on the HTTP thread, so
    with Redis frozen a batch of bad events held its request for a Redis timeout per
    event. Rejections are recorded through the recorder now: the answer comes while
    Redis is still frozen, and the records are written once it answers again."""
    tag = uuid.uuid4().hex[:8]
    events = []
    for i in range(100):
        e = problem(f"c9-{tag}-{i}", subject_of(PREFIX))
        e["data"]["kind"] = "rumour"  # not a kind of problem: a schema violation
        events.append(e)
    pid = redis_pid(stack)
    os.kill(pid, signal.SIGSTOP)
    try:
        t = time.monotonic()
        try:
            r = requests.post(stack.url("intake", "/v1/events"), data=json.dumps(events),
                              headers={"Authorization": f"Bearer {HOTLINE}",
                                       "Content-Type": "application/cloudevents-batch+json"},
                              timeout=30)
        except requests.RequestException as e:
            raise AssertionError(f"no answer to a batch of 100 bad events in "
                                 f"{time.monotonic() - t:.0f} s with Redis frozen: {e!r}")
        took = time.monotonic() - t
    finally:
        os.kill(pid, signal.SIGCONT)
    assert r.status_code == 207, r.text[:500]
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["rejected"] * 100, results[:3]
    assert {x["error"]["code"] for x in results} == {"schema_violation"}
    print(f"\n100 bad events answered in {took:.2f} s with Redis frozen")

    def recorded():
        g = event_status(stack, events[-1]["source"], events[-1]["id"])
        return g.status_code == 200 and g.json().get("status") == "rejected" and [g]
    wait_until(recorded, 60, "the last rejection recorded once Redis answered",
               show=lambda: event_status(stack, events[-1]["source"], events[-1]["id"]).text)
