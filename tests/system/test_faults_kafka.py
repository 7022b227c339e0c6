"""The broker misbehaving while cases flow: nothing accepted is lost, nothing is written
twice (the scenario and what it requires are in faults.py; cases come over HTTP only,
as a publisher of duban.inbound needs the broker too).

The faults are real ones on the real broker: the JVM frozen with SIGSTOP for 15 s and
then continued, and the broker killed with SIGKILL and started again on its data. Under
the ASan build the stack's teardown also fails the module on any sanitizer report (a
delivery callback that outlived what it writes to, review C1). The module runs on a
stack of its own, since it takes the broker away from everyone using it."""
import os
import signal
import subprocess

import pytest

from faults import nothing_lost, own_stack_and_unit

PREFIX = "KF"
FAULT_S = 15
KAFKA_SH = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "local", "kafka.sh")


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
