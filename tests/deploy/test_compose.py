"""docker-compose.yml, checked without a Docker engine: Debian's docker-compose parses and
resolves it, and what it resolves to hangs together: the services can be scaled (no
fixed host port, no container name), each one's health check, environment, volumes and
dependencies are right, the proxy in front reaches every service on the port it listens
on, the topics job creates the partition counts of the local stack, Redis keeps its
append-only file and Kafka runs in KRaft mode. The wiring itself is exercised by
tests/system/test_deploy_compose.py."""
import os
import re
import subprocess

import pytest

from deployfiles import (CONSUMES, HAPROXY_CFG, ROOT, SERVICES, compose_config, copies,
                         dockerfile_stages, haproxy, topics_sh_partitions)

KEY = "ab" * 32


@pytest.fixture(scope="module")
def compose():
    return compose_config({"DUBAN_PII_KEY": KEY})


def test_docker_compose_config_is_valid():
    out = subprocess.run(["docker-compose", "-f", "docker-compose.yml", "config", "-q"],
                         cwd=ROOT, env={**os.environ, "DUBAN_PII_KEY": KEY},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_the_reporter_key_is_required():
    with pytest.raises(subprocess.CalledProcessError) as failed:
        compose_config({})
    assert "DUBAN_PII_KEY" in failed.value.stderr


def test_every_service_can_be_scaled(compose):
    """`up --scale <service>=N` needs interchangeable replicas: no fixed host port, no
    container name, no per-replica state but the shared outbox volume."""
    for svc in SERVICES:
        spec = compose["services"][svc]
        assert "ports" not in spec, f"{svc} publishes a host port: a second replica clashes"
        assert "container_name" not in spec, svc
        assert spec["command"] == [f"duban-{svc}"], svc
        assert spec["image"] == compose["services"]["intake"]["image"], "one image for all"


def test_the_four_share_one_environment(compose):
    """Adding a variable is one line (x-duban-env): the four environments are equal."""
    envs = [compose["services"][svc]["environment"] for svc in SERVICES]
    assert all(env == envs[0] for env in envs)
    env = envs[0]
    for svc in SERVICES:
        assert f"DUBAN_{svc.upper()}_PORT" in env
    assert env["DUBAN_PII_KEY"] == KEY


def test_health_checks_and_dependencies(compose):
    services = compose["services"]
    for svc in SERVICES:
        spec = services[svc]
        assert spec["healthcheck"]["test"] == ["CMD", "duban-healthcheck", "/readyz"], svc
        assert spec["depends_on"] == {
            "kafka": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "topics": {"condition": "service_completed_successfully"}}, svc
        # SIGTERM drains for DUBAN_DRAIN_MS; compose must wait longer before SIGKILL.
        grace = int(re.fullmatch(r"(\d+)s", spec["stop_grace_period"]).group(1))
        assert grace * 1000 >= int(spec["environment"]["DUBAN_DRAIN_MS"]) + 5000, svc
    for dep in ("kafka", "redis"):
        assert services[dep]["healthcheck"]["test"], dep
    assert services["topics"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert services["topics"]["restart"] == "no"


def test_services_run_locked_down(compose):
    for svc in SERVICES:
        spec = compose["services"][svc]
        assert spec["read_only"] is True, svc
        assert spec["cap_drop"] == ["ALL"], svc
        assert "no-new-privileges:true" in spec["security_opt"], svc


def _mounts(spec):
    found = {}
    for volume in spec.get("volumes", []):
        source, target, *mode = volume.split(":")
        found[target] = (source, mode[0] if mode else "rw")
    return found


def test_paths_match_the_image_and_the_mounts(compose):
    """The configuration is mounted read-only where DUBAN_CONFIG_DIR points, the outbox
    is a writable volume (the root file system is read-only), and DUBAN_SCHEMA_DIR is
    where the image keeps the schemas."""
    runtime = dockerfile_stages()[-1]
    schema_dirs = [dest for sources, dest, _ in copies(runtime) if sources == ["schemas"]]
    for svc in SERVICES:
        spec = compose["services"][svc]
        env, mounts = spec["environment"], _mounts(spec)
        assert mounts[env["DUBAN_CONFIG_DIR"]] == (os.path.join(ROOT, "deploy", "config"),
                                                   "ro"), svc
        assert mounts[env["DUBAN_OUTBOX_DIR"]] == ("outbox", "rw"), svc
        assert [env["DUBAN_SCHEMA_DIR"]] == schema_dirs, svc
    assert "outbox" in compose["volumes"]


def test_addresses_point_at_compose_services(compose):
    services = compose["services"]
    env = services["intake"]["environment"]
    kafka = services["kafka"]["environment"]
    advertised = dict(item.split("://") for item in kafka["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert env["DUBAN_KAFKA_BROKERS"] == advertised[kafka["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    assert env["DUBAN_REDIS_URL"] == "redis://redis:6379/0"
    smtp = re.fullmatch(r"smtp://([a-z0-9-]+):(\d+)", env["DUBAN_SMTP_URL"])
    assert smtp and smtp.group(1) in services, "the SMTP catcher is part of the stack"
    assert env["DUBAN_BIND"] == "0.0.0.0"


def test_kafka_runs_kraft_and_redis_keeps_its_append_only_file(compose):
    kafka = compose["services"]["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    node = kafka["KAFKA_NODE_ID"]
    voter = kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    listeners = dict(item.split("://") for item in kafka["KAFKA_LISTENERS"].split(","))
    assert voter == f"{node}@kafka{listeners[kafka['KAFKA_CONTROLLER_LISTENER_NAMES']]}"
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert not any("ZOOKEEPER" in k for k in kafka)
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:")
    redis = compose["services"]["redis"]["command"]
    assert redis[redis.index("--appendonly") + 1] == "yes"
    assert _mounts(compose["services"]["redis"])["/data"][0] == "redis-data"


def test_topics_job_creates_the_partitions_of_the_local_stack(compose):
    topics = compose["services"]["topics"]
    # `config` keeps compose's "$$" escapes; the container's shell sees "$".
    env, script = topics["environment"], topics["command"][0].replace("$$", "$")
    wanted = {}
    for topic, var in re.findall(r'^create (duban\.[a-z]+) "\$(PARTITIONS_[A-Z]+)"', script,
                                 re.M):
        wanted[topic] = int(env[var])
    assert wanted == topics_sh_partitions() == {
        "duban.inbound": 6, "duban.cases": 12, "duban.notifications": 6, "duban.dlq": 3}
    assert re.search(r"^create duban\.cases .*retention\.ms=-1$", script, re.M), \
        "duban.cases is the system of record: kept forever"


def test_proxy_reaches_every_service_on_its_port(compose):
    """One host port per service on the proxy; its back end is the service's name and
    the port the service listens on, health-checked on /readyz, with a slot for every
    replica that can do work."""
    out = subprocess.run(["haproxy", "-c", "-f", HAPROXY_CFG], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    cfg = haproxy()
    proxy = compose["services"]["proxy"]
    published = {}
    for port in proxy["ports"]:
        host_ip, host_port, container_port = port.removesuffix("/tcp").split(":")
        assert host_ip == "127.0.0.1"
        published[int(container_port)] = int(host_port)
    env = compose["services"]["intake"]["environment"]
    partitions = topics_sh_partitions()
    for svc in SERVICES:
        port = int(env[f"DUBAN_{svc.upper()}_PORT"])
        assert cfg["frontend"][svc] == port
        backend = cfg["backend"][svc]
        assert (backend["host"], backend["port"]) == (svc, port)
        assert backend["check"] == ["GET", "/readyz"]
        assert backend["count"] >= partitions[CONSUMES[svc]]
        assert published[port] == port  # the default host port is the service's own
    assert _mounts(proxy)["/usr/local/etc/haproxy/haproxy.cfg"] == (HAPROXY_CFG, "ro")
