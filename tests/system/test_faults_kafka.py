"""The broker misbehaving while cases flow: nothing accepted is lost, nothing is written
twice (the scenario and what it requires are in faults.py; cases come over HTTP only,
as a publisher of duban.inbound needs the broker too).

The faults are real ones on the real broker: the JVM frozen with SIGSTOP for 15 s and
then continued, and the broker killed with SIGKILL and started again on its data. Under
the ASan build the stack's teardown also fails the module on any sanitizer report (a
delivery callback that outlived what it writes to, review C1). The module runs on a
stack of its own, since it takes the broker away from everyone using it.

It also makes the broker refuse what assignment writes (review C12f): a write that
will never pass goes to the DLQ, and the cases behind it are assigned. That test fails
on assignment retrying every produce error (checked by reverting its classification:
no dead letter came in 90 s)."""
import os
import signal
import subprocess
import uuid

import pytest

from assigning import dead_letters, subject_of
from conftest import ROOT, partition_of, wait_until
from faults import case_event, nothing_lost, own_stack_and_unit

PREFIX = "KF"
FAULT_S = 15
KAFKA_SH = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "local", "kafka.sh")
KAFKA_LIB = os.path.join(ROOT, "deploy", "kafka", "lib")


# The module's own stack, and its own unit on it.
stack, unit = own_stack_and_unit(PREFIX)


def kafka_pid(stack):
    with open(os.path.join(stack.var_dir, "kafka", "kafka.pid")) as f:
        return int(f.read().strip())


def frozen_fault(stack):
    """The broker's JVM stopped: connections stay open and nothing answers."""
    pid = kafka_pid(stack)
    os.kill(pid, signal.SIGSTOP)
    return (lambda: os.kill(pid, signal.SIGCONT)), "kafka"


def killed_fault(stack):
    """The broker killed without a word, and started again (on the same data, as after
    a crash) once the fault's time is over."""
    pid = kafka_pid(stack)
    os.kill(pid, signal.SIGKILL)

    def restart():
        up = subprocess.run([KAFKA_SH, "start"], env=stack.env, capture_output=True,
                            text=True, timeout=180)
        assert up.returncode == 0, up.stdout + up.stderr
    return restart, "kafka"


@pytest.mark.parametrize("make_fault", [frozen_fault, killed_fault],
                         ids=["frozen", "killed"])
def test_nothing_accepted_is_lost_while_the_broker_is_away(stack, unit, make_fault):
    nothing_lost(stack, unit, make_fault, "kafka", FAULT_S)


def topic_config(stack, topic, *change):
    """Alters a topic's configuration with Kafka's own ConfigCommand (the class behind
    kafka-configs.sh), e.g. "--add-config", "max.message.bytes=100"."""
    out = subprocess.run(
        ["java", "-cp", os.path.join(KAFKA_LIB, "*"), "kafka.admin.ConfigCommand",
         "--bootstrap-server", f"127.0.0.1:{stack.ports['kafka']}", "--entity-type",
         "topics", "--entity-name", topic, "--alter", *change],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_write_the_broker_refuses_is_dead_lettered_and_blocks_nothing(stack, unit):
    """duban.cases made to refuse records over 100 bytes while assignment is away, and
    one case waiting for it. Its assignment can never be written: assignment
    dead-letters the case's received event as too_large instead of retrying it for
    ever, and once the topic takes records again a later case on the same partition is
    assigned."""
    tag = uuid.uuid4().hex[:8]
    subject = subject_of(unit.unit[2:])
    partitions = stack.partitions("duban.cases")
    stack.kill("assignment", signal.SIGTERM)
    r = stack.post_event(case_event(f"poison-{tag}", subject))
    assert r.status_code == 202, r.text
    stuck = r.json()["case_id"]
    topic_config(stack, "duban.cases", "--add-config", "max.message.bytes=100")
    try:
        stack.start_missing()
        d = wait_until(lambda: [x for x in dead_letters(stack, stuck)
                                if x["reason"] == "too_large"], 90,
                       f"a too_large dead letter for case {stuck}", step=0.5,
                       show=lambda: dead_letters(stack, stuck))[0]
        assert d["origin"]["topic"] == "duban.cases", d
    finally:
        topic_config(stack, "duban.cases", "--delete-config", "max.message.bytes")
    # Cases until one lands on the refused record's partition (keyed by case id).
    behind = None
    for i in range(20 * partitions):
        r = stack.post_event(case_event(f"next-{tag}-{i}", subject))
        assert r.status_code == 202, r.text
        if partition_of(r.json()["case_id"], partitions) == partition_of(stuck, partitions):
            behind = r.json()["case_id"]
            break
    assert behind, f"no case on partition {partition_of(stuck, partitions)} in {i + 1}"
    stack.wait_for("assignment", f"/v1/assignments/{behind}",
                   lambda r: r.status_code == 200 and r.json().get("officer") in
                   unit.officers, timeout=60)
