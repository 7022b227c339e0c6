"""The Dockerfile, checked without a Docker engine: two stages (build on bookworm, run on
bookworm-slim), the build stage's own script compiles the services from exactly the
files it copies, the runtime stage installs the packages of the libraries those binaries
link against and nothing else but curl, a non-root numeric user, a HEALTHCHECK, and a
.dockerignore that keeps everything else out of the build context."""
import fnmatch
import os
import shutil
import subprocess

import pytest

from deployfiles import ROOT, SERVICES, apt_packages, copies, dockerfile_stages

STAGES = dockerfile_stages()
BUILD, RUNTIME = STAGES[0], STAGES[-1]
# What the runtime stage may install beyond the libraries: the health check's client.
TOOLS = {"curl", "ca-certificates"}


def test_two_stages_bookworm_then_slim():
    assert len(STAGES) == 2
    assert BUILD["from"] == "debian:bookworm" and BUILD["name"] == "build"
    assert RUNTIME["from"] == "debian:bookworm-slim"
    # Nothing of the build stage reaches the runtime image but the installed binaries.
    from_build = [c for c in copies(RUNTIME) if any(o.startswith("--from=") for o in c[2])]
    assert from_build == [(["/out/usr/local/bin/"], "/usr/local/bin/", ["--from=build"])]


def test_runs_as_a_numeric_non_root_user_with_a_healthcheck():
    users = [args for op, args in RUNTIME["ops"] if op == "USER"]
    assert users == ["10001:10001"], "numeric, so that Kubernetes can verify runAsNonRoot"
    checks = [args for op, args in RUNTIME["ops"] if op == "HEALTHCHECK"]
    assert len(checks) == 1 and 'CMD ["duban-healthcheck"' in checks[0]
    assert (["deploy/docker/duban-healthcheck"], "/usr/local/bin/duban-healthcheck", []) in \
        copies(RUNTIME)
    assert (["schemas"], "/usr/share/duban/schemas", []) in copies(RUNTIME)


@pytest.fixture(scope="module")
def image_binaries(tmp_path_factory):
    """The build stage, replayed: its COPY sources into a fresh tree, then its build
    script, as the RUN instruction calls it. Returns the directory of the binaries."""
    runs = [args for op, args in BUILD["ops"] if op == "RUN" and "build.sh" in args]
    assert runs == ["deploy/docker/build.sh /src /build /out"]
    work = tmp_path_factory.mktemp("image")
    src = work / "src"
    for sources, dest, _ in copies(BUILD):  # relative to WORKDIR /src, as Docker does
        base = src / dest
        for source in sources:
            path = os.path.join(ROOT, source)
            if os.path.isdir(path):
                shutil.copytree(path, base, dirs_exist_ok=True)
            elif dest.endswith("/"):
                base.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, base / os.path.basename(source))
            else:
                base.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, base)
    out = subprocess.run([str(src / "deploy/docker/build.sh"), str(src), str(work / "build"),
                          str(work / "out")], cwd=src, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return work / "out" / "usr" / "local" / "bin"


def test_build_stage_builds_the_four_services_from_what_it_copies(image_binaries):
    assert sorted(os.listdir(image_binaries)) == sorted(f"duban-{s}" for s in SERVICES)
    for name in os.listdir(image_binaries):
        out = subprocess.run(["file", "-b", str(image_binaries / name)], capture_output=True,
                             text=True, check=True)
        assert "stripped" in out.stdout and "not stripped" not in out.stdout, out.stdout


def _package_of(library_path):
    out = subprocess.run(["dpkg", "-S", os.path.realpath(library_path)], capture_output=True,
                         text=True)
    if out.returncode != 0:  # /lib is a symlink to /usr/lib on bookworm
        out = subprocess.run(["dpkg", "-S", library_path], capture_output=True, text=True,
                             check=True)
    return out.stdout.split(":", 1)[0]


def test_runtime_stage_installs_exactly_the_libraries_the_binaries_need(image_binaries):
    needed = set()
    for name in os.listdir(image_binaries):
        out = subprocess.run(["ldd", str(image_binaries / name)], capture_output=True,
                             text=True, check=True)
        direct = subprocess.run(["objdump", "-p", str(image_binaries / name)],
                                capture_output=True, text=True, check=True).stdout
        sonames = {line.split()[1] for line in direct.splitlines()
                   if line.strip().startswith("NEEDED")}
        for line in out.stdout.splitlines():
            parts = line.split()
            if parts and parts[0] in sonames:
                assert "=>" in parts and parts[2] != "not", line
                needed.add(_package_of(parts[2]))
    needed.discard("libc6")  # part of bookworm-slim
    installed = set(apt_packages(RUNTIME))
    assert needed <= installed, f"missing in the runtime stage: {sorted(needed - installed)}"
    assert installed - needed <= TOOLS, \
        f"installed but not needed by any binary: {sorted(installed - needed - TOOLS)}"
    assert "--no-install-recommends" in " ".join(a for o, a in RUNTIME["ops"] if o == "RUN")


def test_dockerignore_lets_in_exactly_what_the_stages_copy():
    with open(os.path.join(ROOT, ".dockerignore"), encoding="utf-8") as f:
        patterns = [p.strip() for p in f if p.strip() and not p.startswith("#")]
    assert patterns[0] == "*", "everything out by default"
    allowed = [p[1:].rstrip("/") for p in patterns[1:] if p.startswith("!")]
    for stage in STAGES:
        for sources, _, opts in copies(stage):
            if any(o.startswith("--from=") for o in opts):
                continue
            for source in sources:
                assert any(source == a or source.startswith(a + "/") or
                           fnmatch.fnmatch(source, a) for a in allowed), source
    # Nothing large or secret: builds, data, jars, the .env file, git.
    for path in ("build", "var", "deploy/kafka/lib", ".env", ".git", "tests"):
        assert not any(path == a or path.startswith(a + "/") for a in allowed), path


def test_healthcheck_refuses_a_process_that_is_no_duban_service():
    script = os.path.join(ROOT, "deploy", "docker", "duban-healthcheck")
    out = subprocess.run([script], env={"PATH": os.environ["PATH"],
                                        "DUBAN_HEALTHCHECK_PID": str(os.getpid())},
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 2
    assert "not a Duban service" in out.stderr
