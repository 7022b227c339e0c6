"""deploy/k8s rendered by `kubectl kustomize` (base and both overlays) and read back:
every Duban Deployment has its liveness (/healthz) and readiness (/readyz) probes on the
port the service listens on, requests and limits, the restricted security context, a
PodDisruptionBudget, an autoscaler bounded by its topic's partitions, a grace period
that covers the drain, Prometheus scraping; the mounted configuration is deploy/config
file for file; the reporter key reaches only intake and notification; the topics match
the local stack; production carries no secret from git."""
import os
import re

import pytest
import yaml

from deployfiles import (CONSUMES, ROOT, SERVICES, dockerfile_stages, render, secret_data,
                         topics_sh_partitions)

CONFIG = os.path.join(ROOT, "deploy", "config")
NOT_CONFIG = {"README.md", "kustomization.yaml"}
# Secrets production creates itself (deploy/k8s/overlays/prod/kustomization.yaml).
OPERATOR_SECRETS = {"duban-pii", "duban-clients", "duban-notification"}


@pytest.fixture(scope="module", params=["base", "dev", "prod"])
def rendered(request):
    return request.param, render(request.param)


def by_kind(resources, kind):
    return [r for r in resources if r["kind"] == kind]


def named(resources, kind, name):
    found = [r for r in by_kind(resources, kind) if r["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def generated(resources, kind, name):
    """A ConfigMap or Secret by its name before Kustomize's hash suffix."""
    found = [r for r in by_kind(resources, kind)
             if re.fullmatch(re.escape(name) + r"(-[a-z0-9]{10})?", r["metadata"]["name"])]
    return found[0] if len(found) == 1 else None


def deployment(resources, svc):
    return named(resources, "Deployment", f"duban-{svc}")


def env_of(resources):
    return generated(resources, "ConfigMap", "duban-env")["data"]


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def container(dep):
    containers = dep["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def port_number(ctr, port):
    if isinstance(port, int):
        return port
    return {p["name"]: p["containerPort"] for p in ctr["ports"]}[port]


def test_every_overlay_renders_the_four_services(rendered):
    _, resources = rendered
    names = sorted(d["metadata"]["name"] for d in by_kind(resources, "Deployment"))
    assert names == sorted(f"duban-{s}" for s in SERVICES)
    images = {container(deployment(resources, s))["image"] for s in SERVICES}
    assert len(images) == 1, "one image for the four services"
    for svc in SERVICES:
        assert container(deployment(resources, svc))["command"] == [f"duban-{svc}"]


@pytest.mark.parametrize("svc", SERVICES)
def test_probes_on_the_right_paths_and_ports(rendered, svc):
    _, resources = rendered
    dep = deployment(resources, svc)
    ctr = container(dep)
    listen = int(env_of(resources)[f"DUBAN_{svc.upper()}_PORT"])
    probes = {"livenessProbe": "/healthz", "readinessProbe": "/readyz",
              "startupProbe": "/healthz"}
    for probe, path in probes.items():
        get = ctr[probe]["httpGet"]
        assert get["path"] == path, (svc, probe)
        assert port_number(ctr, get["port"]) == listen, (svc, probe)
    assert ctr["readinessProbe"]["timeoutSeconds"] >= 2, "readyz pings Kafka for up to 1 s"
    service = named(resources, "Service", f"duban-{svc}")
    assert selects({"matchLabels": service["spec"]["selector"]},
                   dep["spec"]["template"]["metadata"]["labels"])
    assert [port_number(ctr, p["targetPort"]) for p in service["spec"]["ports"]] == [listen]
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == listen


@pytest.mark.parametrize("svc", SERVICES)
def test_resources_and_restricted_security_context(rendered, svc):
    _, resources = rendered
    dep = deployment(resources, svc)
    pod, ctr = dep["spec"]["template"]["spec"], container(dep)
    for kind in ("requests", "limits"):
        assert set(ctr["resources"][kind]) >= {"cpu", "memory"}, (svc, kind)
    user, group = next(a for o, a in dockerfile_stages()[-1]["ops"] if o == "USER").split(":")
    assert pod["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": int(user), "runAsGroup": int(group),
        "fsGroup": int(group), "seccompProfile": {"type": "RuntimeDefault"}}
    assert ctr["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
        "privileged": False, "capabilities": {"drop": ["ALL"]}}
    assert pod["automountServiceAccountToken"] is False
    # A Service named duban-intake would otherwise put DUBAN_INTAKE_PORT=tcp://… into
    # every pod's environment.
    assert pod["enableServiceLinks"] is False
    # The root file system is read-only: whatever is written is on a volume.
    mounts = {m["mountPath"]: m for m in ctr["volumeMounts"]}
    assert mounts["/etc/duban"].get("readOnly") is True
    if svc == "notification":
        assert env_of(resources)["DUBAN_OUTBOX_DIR"] in mounts


@pytest.mark.parametrize("svc", SERVICES)
def test_disruption_budget_and_autoscaler(rendered, svc):
    _, resources = rendered
    dep = deployment(resources, svc)
    labels = dep["spec"]["template"]["metadata"]["labels"]
    pdbs = [p for p in by_kind(resources, "PodDisruptionBudget")
            if selects(p["spec"]["selector"], labels)]
    assert len(pdbs) == 1, svc
    assert pdbs[0]["spec"].get("maxUnavailable") == 1, "drains evict one pod at a time"
    hpas = [h for h in by_kind(resources, "HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                               "name": f"duban-{svc}"}]
    assert len(hpas) == 1, svc
    spec = hpas[0]["spec"]
    assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]
    assert dep["spec"]["replicas"] <= spec["maxReplicas"]
    if svc != "intake":  # intake's HTTP side scales past its topic's partitions
        assert spec["maxReplicas"] <= topics_sh_partitions()[CONSUMES[svc]], \
            "replicas beyond the partition count would sit idle"
    rolling = dep["spec"]["strategy"]["rollingUpdate"]
    assert rolling == {"maxSurge": 1, "maxUnavailable": 0}


@pytest.mark.parametrize("svc", SERVICES)
def test_graceful_termination_covers_the_drain(rendered, svc):
    _, resources = rendered
    pod = deployment(resources, svc)["spec"]["template"]["spec"]
    ctr = container(deployment(resources, svc))
    pre_stop = ctr["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain_ms = int(env_of(resources)["DUBAN_DRAIN_MS"])
    # preStop, then SIGTERM and the drain, then closing Kafka and Redis (2 s spare).
    assert pod["terminationGracePeriodSeconds"] * 1000 >= \
        int(pre_stop[1]) * 1000 + drain_ms + 2000, svc
    assert pod["terminationGracePeriodSeconds"] <= 60


def test_only_intake_and_notification_get_the_reporter_key(rendered):
    _, resources = rendered
    for svc in SERVICES:
        ctr = container(deployment(resources, svc))
        secrets = {e["secretRef"]["name"] for e in ctr.get("envFrom", []) if "secretRef" in e}
        has_key = any(re.fullmatch(r"duban-pii(-[a-z0-9]{10})?", s) for s in secrets)
        assert has_key == (svc in ("intake", "notification")), svc
        assert not any(e["name"] == "DUBAN_PII_KEY" for e in ctr.get("env", [])), svc
    assert "DUBAN_PII_KEY" not in env_of(resources), "a key in a ConfigMap"


def test_every_reference_resolves(rendered):
    """ConfigMaps and Secrets the pods use exist in the rendering; production's secrets
    are the operator's and none comes from git."""
    overlay, resources = rendered
    present = {(r["kind"], r["metadata"]["name"]) for r in resources}
    for svc in SERVICES:
        pod = deployment(resources, svc)["spec"]["template"]["spec"]
        refs = []
        for src in container(deployment(resources, svc)).get("envFrom", []):
            kind = "ConfigMap" if "configMapRef" in src else "Secret"
            ref = src.get("configMapRef") or src.get("secretRef")
            refs.append((kind, ref["name"], ref.get("optional", False)))
        for vol in pod["volumes"]:
            for source in vol.get("projected", {}).get("sources", []):
                if "configMap" in source:
                    refs.append(("ConfigMap", source["configMap"]["name"], False))
                if "secret" in source:
                    refs.append(("Secret", source["secret"]["name"], False))
        for kind, name, optional in refs:
            if kind == "Secret" and (overlay != "dev") and name in OPERATOR_SECRETS:
                continue
            if optional:
                continue
            assert (kind, name) in present, (overlay, svc, kind, name)
    if overlay == "prod":
        assert by_kind(resources, "Secret") == [], "secrets never come from git"


def test_mounted_configuration_is_deploy_config(rendered):
    """What every pod sees in /etc/duban, rebuilt from the rendered ConfigMap, Secret
    and volume items, is deploy/config file for file and byte for byte."""
    overlay, resources = rendered
    expected = {}
    for base, _, files in os.walk(CONFIG):
        for name in files:
            rel = os.path.relpath(os.path.join(base, name), CONFIG)
            if rel not in NOT_CONFIG:
                with open(os.path.join(base, name), "rb") as f:
                    expected[rel] = f.read()
    for svc in SERVICES:
        dep = deployment(resources, svc)
        mounts = {m["name"]: m["mountPath"] for m in container(dep)["volumeMounts"]}
        volume = next(v for v in dep["spec"]["template"]["spec"]["volumes"]
                      if mounts.get(v["name"]) == "/etc/duban")
        seen = {}
        for source in volume["projected"]["sources"]:
            if "configMap" in source:
                cm = named(resources, "ConfigMap", source["configMap"]["name"])
                data = {k: v.encode() for k, v in cm["data"].items()}
                items = source["configMap"]["items"]
            else:
                secret = [s for s in by_kind(resources, "Secret")
                          if s["metadata"]["name"] == source["secret"]["name"]]
                if not secret:
                    continue  # production: the operator's Secret
                data, items = secret_data(secret[0]), source["secret"]["items"]
            assert sorted(i["key"] for i in items) == sorted(data), \
                "every key is mounted and every mounted key exists"
            for item in items:
                seen[item["path"]] = data[item["key"]]
        if overlay == "prod":
            assert "clients.json" not in seen
            seen["clients.json"] = expected["clients.json"]
        assert sorted(seen) == sorted(expected), svc
        for path, content in expected.items():
            assert seen[path] == content, path


def test_kafka_topics_match_the_local_stack(rendered):
    overlay, resources = rendered
    topics = {t["metadata"]["name"]: t for t in by_kind(resources, "KafkaTopic")}
    assert {name: t["spec"]["partitions"] for name, t in topics.items()} == \
        topics_sh_partitions()
    for topic in topics.values():
        assert topic["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "duban"
        replicas = 1 if overlay == "dev" else 3
        assert topic["spec"]["replicas"] == replicas, overlay
        assert topic["spec"]["config"]["min.insync.replicas"] == max(1, replicas - 1)
    assert topics["duban.cases"]["spec"]["config"]["retention.ms"] == -1
    env = env_of(resources)
    assert env["DUBAN_KAFKA_BROKERS"] == "duban-kafka-bootstrap:9092"


def test_production_spreads_and_monitors():
    resources = render("prod")
    for svc in SERVICES:
        pod = deployment(resources, svc)["spec"]["template"]["spec"]
        keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
        assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
        hpa = named(resources, "HorizontalPodAutoscaler", f"duban-{svc}")
        assert hpa["spec"]["minReplicas"] >= 3
    monitor = named(resources, "PodMonitor", "duban")
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "http"
    rules = named(resources, "PrometheusRule", "duban")["spec"]["groups"][0]["rules"]
    alerts = {r["alert"] for r in rules}
    assert {"DubanServiceDown", "DubanConsumerLag", "DubanDeadLetters",
            "DubanTimersLate"} <= alerts
    metric_names = set()
    for rule in rules:
        metric_names |= set(re.findall(r"\bduban_[a-z_]+", rule["expr"]))
    sources = ""
    for base in ("libs", "services"):
        for top, _, files in os.walk(os.path.join(ROOT, base)):
            for name in files:
                if name.endswith(".c"):
                    with open(os.path.join(top, name), encoding="utf-8") as f:
                        sources += f.read()
    for name in metric_names:  # every series an alert reads is one a service exports
        family = re.sub(r"_(bucket|count|sum)$", "", name)
        assert f'"{family}"' in sources, name


def test_rendered_yaml_is_what_kubectl_accepts():
    """Each document has apiVersion, kind and metadata.name (kubectl apply's minimum)."""
    for overlay in ("dev", "prod"):
        for r in render(overlay):
            assert r.get("apiVersion") and r.get("kind") and r["metadata"].get("name"), r
            yaml.safe_dump(r)
