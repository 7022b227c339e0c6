"""Readers of the deployment files, shared by the static checks (tests/deploy) and the
system test that runs docker-compose.yml's services as local processes
(tests/system/test_deploy_compose.py): the compose file as docker-compose resolves it,
the Dockerfile's stages, HAProxy's front ends and back ends, the rendered Kustomize
overlays and the partition counts of deploy/local/topics.sh."""
import base64
import os
import re
import shlex
import shutil
import subprocess
import tempfile

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COMPOSE_FILE = os.path.join(ROOT, "docker-compose.yml")
DOCKERFILE = os.path.join(ROOT, "Dockerfile")
HAPROXY_CFG = os.path.join(ROOT, "deploy", "compose", "haproxy.cfg")
K8S = os.path.join(ROOT, "deploy", "k8s")
OVERLAYS = ("dev", "prod")
SERVICES = ("intake", "assignment", "deadline", "notification")
# The topic each service reads, which caps the replicas that do work.
CONSUMES = {"intake": "duban.inbound", "assignment": "duban.cases",
            "deadline": "duban.cases", "notification": "duban.cases"}


def compose_config(env):
    """docker-compose.yml as `docker-compose config` resolves it with exactly the
    variables in 'env' (an .env file in the checkout is not read). Returns the parsed
    document; raises CalledProcessError with docker-compose's message on an error."""
    with tempfile.NamedTemporaryFile("w", suffix=".env") as empty:
        out = subprocess.run(
            ["docker-compose", "--env-file", empty.name, "-f", COMPOSE_FILE, "config"],
            cwd=ROOT, env={"PATH": os.environ["PATH"], **env}, capture_output=True,
            text=True, timeout=60, check=True)
    return yaml.safe_load(out.stdout)


def dockerfile_stages(path=DOCKERFILE):
    """The Dockerfile as [{"from", "name", "ops": [(INSTRUCTION, args)]}], continuation
    lines joined and comments dropped."""
    lines, joined = [], ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not joined and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.lstrip().startswith("#"):
                continue  # a comment inside a continued instruction
            if line.endswith("\\"):
                joined += line[:-1] + " "
                continue
            lines.append(joined + line)
            joined = ""
    stages = []
    for line in lines:
        op, _, args = line.strip().partition(" ")
        op = op.upper()
        if op == "FROM":
            words = args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append({"from": words[0], "name": name, "ops": []})
        elif stages:
            stages[-1]["ops"].append((op, args.strip()))
    return stages


def copies(stage):
    """(sources, destination, options) of each COPY of a stage."""
    found = []
    for op, args in stage["ops"]:
        if op == "COPY":
            words = shlex.split(args)
            opts = [w for w in words if w.startswith("--")]
            paths = [w for w in words if not w.startswith("--")]
            found.append((paths[:-1], paths[-1], opts))
    return found


def apt_packages(stage):
    """The packages a stage installs with apt-get install."""
    packages = []
    for op, args in stage["ops"]:
        if op != "RUN":
            continue
        for command in re.split(r"&&|;", args):
            words = command.split()
            if words[:2] == ["apt-get", "install"]:
                packages += [w for w in words[2:] if not w.startswith("-")]
    return packages


def haproxy(path=HAPROXY_CFG):
    """{"frontend": {name: bind port}, "backend": {name: {"count", "host", "port",
    "check"}}} of deploy/compose/haproxy.cfg."""
    parsed = {"frontend": {}, "backend": {}}
    section = None
    with open(path, encoding="utf-8") as f:
        for raw in f:
            words = raw.split("#", 1)[0].split()
            if not words:
                continue
            if words[0] in ("frontend", "backend"):
                section = (words[0], words[1])
                if words[0] == "backend":
                    parsed["backend"][words[1]] = {}
                continue
            if words[0] in ("global", "defaults", "resolvers"):
                section = None
                continue
            if section and section[0] == "frontend" and words[0] == "bind":
                parsed["frontend"][section[1]] = int(words[1].rsplit(":", 1)[1])
            if section and section[0] == "backend":
                entry = parsed["backend"][section[1]]
                if words[0] == "server-template":
                    host, port = words[3].rsplit(":", 1)
                    entry.update(count=int(words[2]), host=host, port=int(port))
                elif words[:2] == ["option", "httpchk"]:
                    entry["check"] = words[2:]
    return parsed


def topics_sh_partitions():
    """{topic: partitions} as deploy/local/topics.sh creates them by default."""
    with open(os.path.join(ROOT, "deploy", "local", "topics.sh"), encoding="utf-8") as f:
        text = f.read()
    return {topic: int(n) for topic, n in
            re.findall(r"\[(duban\.[a-z]+)\]=\$\{DUBAN_PARTITIONS_[A-Z]+:-(\d+)\}", text)}


def render(overlay):
    """kubectl kustomize of deploy/k8s/overlays/<overlay> (or "base") as a list of
    resources."""
    path = os.path.join(K8S, "base" if overlay == "base" else os.path.join("overlays", overlay))
    command = ["kubectl", "kustomize", path] if shutil.which("kubectl") else \
        ["kustomize", "build", path]  # what deploy/local/setup.sh installs without kubectl
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def secret_data(secret):
    """A Secret's data, decoded to bytes."""
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
