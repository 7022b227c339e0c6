"""benchstack.py - what the Python benchmarks share: a Kafka and a Redis of their own
(deploy/local/stack.sh, no services) in a var dir under /tmp, and their teardown."""
import os
import secrets
import shutil
import signal
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
STACK = os.path.join(ROOT, "deploy", "local", "stack.sh")


def stack_env(name, build, kafka, controller, redis):
    """A new var dir and the environment stack.sh and the services run with."""
    var = tempfile.mkdtemp(prefix=f"duban-bench-{name}.")
    env = {k: v for k, v in os.environ.items()
           if k not in ("DUBAN_KAFKA_BROKERS", "DUBAN_REDIS_URL")}
    env.update({"DUBAN_VAR_DIR": var, "DUBAN_KAFKA_PORT": str(kafka),
                "DUBAN_KAFKA_CONTROLLER_PORT": str(controller),
                "DUBAN_REDIS_PORT": str(redis), "DUBAN_STACK_SERVICES": "",
                "DUBAN_BUILD_DIR": build, "DUBAN_BIND": "127.0.0.1",
                "DUBAN_CONFIG_DIR": os.path.join(ROOT, "deploy", "config"),
                "DUBAN_PII_KEY": secrets.token_hex(32)})
    return var, env


def stack_up(env):
    subprocess.run([STACK, "up"], env=env, cwd=ROOT, check=True, timeout=300,
                   stdout=subprocess.DEVNULL)


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True,
                          text=True, check=True, timeout=60).stdout.strip()


def teardown(procs, env, var, say):
    """SIGTERM to the services still running (SIGKILL after 30 s), the stack down, the
    var dir removed unless BENCH_KEEP_VAR."""
    for p in procs:
        if p and p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        if not p:
            continue
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
    subprocess.run([STACK, "down"], env=env, cwd=ROOT, timeout=120,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if os.environ.get("BENCH_KEEP_VAR"):
        say(f"kept {var}")
    else:
        shutil.rmtree(var, ignore_errors=True)
