"""containers/job-gpu/build-from-host.sh against the local Docker engine.

A real GPU host copies gigabytes (its /usr and a PyTorch environment); here the
script builds from a small root instead: Debian's Python 3.11 with exactly the
shared libraries ``ldd`` says it and its extension modules need, plus a real
venv holding Debian's grpc, protobuf and cloudpickle. The image must then run
``cumulus.runtime --function`` against a real Runtime server on loopback, as a
job container does. Skipped (with the reason) where no Docker engine answers.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator, List, Set

import pytest

from bundle_helpers import JOB_ID, REPO_ROOT, TOKEN
from docker_cli import docker, docker_env
from cumulus._call import CallEnvelope, pickle_call, python_version
from cumulus._outcome import KIND_VALUE, decode_value
from runtime_server import RuntimeServer

SCRIPT = REPO_ROOT / "containers/job-gpu/build-from-host.sh"
DIST = Path("/usr/lib/python3/dist-packages")
THIS_MODULE = sys.modules[__name__]


def _unavailable_reason() -> str:
    if shutil.which("docker") is None:
        return "docker CLI not installed"
    if docker("version", "--format", "{{.Server.Version}}", check=False).returncode != 0:
        return "no Docker engine answers (run scripts/bootstrap.sh)"
    for module in ("grpc", "google/protobuf", "cloudpickle"):
        if not (DIST / module).is_dir():
            return f"Debian's python3 package for {module} is not installed"
    if shutil.which("ldd") is None:
        return "ldd not installed"
    return ""


def _python_env(root: Path) -> Path:
    """A real venv of Debian's Python with grpc, protobuf and cloudpickle copied in."""
    env = root / "env"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(env)], check=True, timeout=60)
    site = env / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    for name in ("grpc", "google", "cloudpickle"):
        shutil.copytree(DIST / name, site / name, ignore=shutil.ignore_patterns("__pycache__"))
    return env


def _libraries(binaries: List[Path]) -> Set[str]:
    """Every shared library the binaries load, as the loader names it and as the file it is."""
    found: Set[str] = set()
    for binary in binaries:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=30).stdout
        for path in re.findall(r"(/\S+) \(0x", out):
            lib = Path(path)
            # /lib/x86_64-linux-gnu/libz.so.1 on a merged-/usr host: keep the link and its target.
            found.add(str(Path(os.path.realpath(lib.parent)) / lib.name))
            found.add(os.path.realpath(lib))
    return found


def small_roots(env: Path) -> str:
    """The --roots for an image that runs Debian's python3 with the venv's packages."""
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    interpreter = Path(os.path.realpath("/usr/bin/python3"))
    modules = [interpreter, *Path(f"/usr/lib/{version}/lib-dynload").glob("*.so"), *env.rglob("*.so")]
    roots = {"bin", "lib", "lib64", "usr/lib64", f"usr/lib/{version}", str(interpreter).lstrip("/")}
    roots |= {lib.lstrip("/") for lib in _libraries(modules)}
    return " ".join(sorted(roots))


@pytest.fixture(scope="module")
def built_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """The image the script builds from the small root, removed after the module."""
    reason = _unavailable_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("gpu-image")
    env = _python_env(root)
    tag = f"cumulus-pytest-gpuimg-{uuid.uuid4().hex[:10]}:1"
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--python-env", str(env), "--tag", tag, "--roots", small_roots(env),
         "--require", "grpc cloudpickle google.protobuf", "--progress-every", "16"],
        env=docker_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
    )
    seconds = time.monotonic() - started
    try:
        yield tag, env, proc, seconds
    finally:
        docker("image", "rm", "-f", tag, check=False)


def test_build_from_host_makes_an_image_that_runs_the_runtime_as_uid_1000(built_image: tuple) -> None:
    tag, _env, proc, seconds = built_image
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    # Every progress line carries the elapsed seconds.
    assert lines and all(re.match(r"^\[ *\d+\.\d s\] ", line) for line in lines), proc.stdout
    assert any("imported " + tag in line for line in lines), proc.stdout
    # A progress line per 16 MiB of the ~110 MB stream, and none of them went into the image's tar.
    assert len([line for line in lines if re.search(r"\] streamed \d+MiB \(", line)]) >= 3, proc.stdout
    verified = [line for line in lines if "verified:" in line]
    assert verified and re.search(rf"Python {sys.version_info[0]}\.{sys.version_info[1]}\.\d+ uid 1000 in /workspace$",
                                  verified[0]), proc.stdout
    assert seconds < 120, f"the small build took {seconds:.0f} s"
    inspect = docker("image", "inspect", "--format", "{{json .Config.Entrypoint}} {{.Config.User}} {{.Config.WorkingDir}}", tag)
    assert inspect.stdout.split() == ['["/opt/cumulus/bin/tini","-g","--"]', "1000:1000", "/workspace"]


def _where() -> dict:
    """Runs in the image: where it is and what it runs on."""
    import getpass
    import platform

    import cumulus

    return {"python": platform.python_version(), "user": getpass.getuser(), "uid": os.getuid(),
            "cwd": os.getcwd(), "cumulus": cumulus.__file__}


def test_image_runs_a_function_job_against_a_runtime_server(built_image: tuple, server: RuntimeServer) -> None:
    tag, _env, proc, _ = built_image
    assert proc.returncode == 0, proc.stdout + proc.stderr
    server.function = CallEnvelope(
        call=pickle_call(_where, (), {}, by_value=[THIS_MODULE]), bundle=False, python=python_version(),
    ).to_bytes()
    run = docker(
        "run", "--rm", "--network", "host",
        "-e", f"CUMULUS_ORCHESTRATOR_URL={server.url}", "-e", f"CUMULUS_JOB_ID={JOB_ID}",
        "-e", f"CUMULUS_JOB_TOKEN={TOKEN}", "-e", "CUMULUS_CONNECT_TIMEOUT=10",
        tag, "python3", "-m", "cumulus.runtime", "--function", check=False, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "warning" not in run.stderr, run.stderr
    kind, data = server.results[-1]
    assert kind == KIND_VALUE
    assert decode_value(data) == {
        "python": python_version(), "user": "cumulus", "uid": 1000, "cwd": "/workspace",
        "cumulus": "/opt/cumulus/python/cumulus/__init__.py",
    }


def test_an_environment_without_torch_is_refused_with_the_module_named(tmp_path: Path) -> None:
    if not all((DIST / m).is_dir() for m in ("grpc", "google/protobuf", "cloudpickle")):
        pytest.skip("Debian's grpc, protobuf and cloudpickle are not installed")
    env = _python_env(tmp_path)
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--python-env", str(env), "--docker", "/bin/true"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert re.search(rf"^error: {re.escape(str(env))} cannot import: torch \(install them", proc.stderr, re.M), proc.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "--python-env: required"),
        (["--python-env", "relative/env"], "--python-env: must be an absolute path, got relative/env"),
        (["--python-env", "/nonexistent-env"], "--python-env: no executable bin/python3 in /nonexistent-env"),
        (["--python-env", "/usr", "--tag", "Bad Tag"], "--tag: not an image reference, got Bad Tag"),
        (["--frobnicate"], "unknown option: --frobnicate"),
        (["--tag"], "--tag: expected a value"),
    ],
)
def test_bad_arguments_fail_with_one_line(args: List[str], message: str) -> None:
    proc = subprocess.run(["bash", str(SCRIPT), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), proc.stderr
