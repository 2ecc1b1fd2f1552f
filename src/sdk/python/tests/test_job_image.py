"""The cumulus-job image as a Swarm service with host networking, running
``cumulus.runtime`` against a real FetchBundle server on loopback.

Skipped (with the reason) where no Docker engine in Swarm mode or no job image
is available; scripts/test.sh runs bootstrap first, so there they run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from typing import Iterator, List, Optional, Tuple

import pytest

from bundle_helpers import JOB_ID, TOKEN, BundleServer, tar_gz
from docker_cli import docker
from cumulus import runtime

IMAGE = os.environ.get("CUMULUS_JOB_IMAGE", "cumulus-job:latest")


def _unavailable_reason() -> Optional[str]:
    if shutil.which("docker") is None:
        return "docker CLI not installed"
    info = docker("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}", check=False)
    if info.returncode != 0:
        return "no Docker engine answers (run scripts/bootstrap.sh)"
    if info.stdout.strip() != "active true":
        return "the Docker engine is not a Swarm manager (run scripts/bootstrap.sh)"
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        return f"image {IMAGE} not built (run scripts/bootstrap.sh)"
    return None


pytestmark = pytest.mark.skipif(_unavailable_reason() is not None, reason=str(_unavailable_reason()))


@pytest.fixture
def service_name() -> Iterator[str]:
    """A unique service name, removed after the test whatever happened."""
    name = f"cumulus-pytest-{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        docker("service", "rm", name, check=False)


def create_service(name: str, server: BundleServer, command: List[str]) -> None:
    docker(
        "service", "create", "--detach", "--quiet", "--name", name,
        "--network", "host", "--restart-condition", "none",
        "--label", "cumulus.test=pytest",
        "--env", f"CUMULUS_ORCHESTRATOR_URL={server.url}",
        "--env", f"CUMULUS_JOB_ID={JOB_ID}",
        "--env", f"CUMULUS_JOB_TOKEN={TOKEN}",
        IMAGE, "python3", "-m", "cumulus.runtime", "--", *command,
    )


def wait_task(name: str, timeout: float = 60) -> Tuple[str, int]:
    """Wait until the service's task ends; return (state, exit code)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = docker("service", "ps", "-q", "--no-trunc", name).stdout.split()
        if ids:
            task = json.loads(docker("inspect", ids[0]).stdout)[0]
            state = task["Status"]["State"]
            if state in ("complete", "failed", "rejected", "shutdown"):
                return state, int(task["Status"].get("ContainerStatus", {}).get("ExitCode", -1))
        time.sleep(0.1)
    raise AssertionError(f"service {name} did not finish within {timeout} s")


def test_job_runs_as_a_host_network_service_and_reports_its_exit_code(
    bundle_server: BundleServer, service_name: str
) -> None:
    bundle_server.bundle = tar_gz({"greeting.txt": b"hello from the bundle\n"})
    create_service(service_name, bundle_server, [
        "sh", "-c", "cat greeting.txt; id -u; pwd; tr '\\0' ' ' </proc/1/cmdline; echo; exit 3",
    ])
    state, code = wait_task(service_name)
    logs = docker("service", "logs", "--raw", service_name).stdout.splitlines()
    assert (state, code) == ("failed", 3), logs
    assert logs[:3] == ["hello from the bundle", "1000", "/workspace"]
    assert logs[3].startswith("/usr/bin/tini -g --")  # tini is PID 1, the job is not
    assert bundle_server.calls == [(JOB_ID, TOKEN)]


def test_bad_token_fails_the_task_with_exit_77(bundle_server: BundleServer, service_name: str) -> None:
    bundle_server.token = "a-different-token"
    create_service(service_name, bundle_server, ["true"])
    state, code = wait_task(service_name)
    assert (state, code) == ("failed", runtime.EXIT_BAD_TOKEN)


@pytest.fixture
def container_name() -> Iterator[str]:
    """A unique container name, removed after the test whatever happened."""
    name = f"cumulus-pytest-{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        docker("rm", "--force", name, check=False)


def test_sigterm_stops_a_sleeping_job_promptly(container_name: str) -> None:
    """tini is PID 1 and forwards SIGTERM to the job's process group, so a stop
    does not wait out the grace period (a bare `sh` as PID 1 ignores SIGTERM)."""
    docker("run", "--detach", "--name", container_name, IMAGE, "sh", "-c", "sleep 30")
    deadline = time.monotonic() + 30
    while "sleep" not in docker("top", container_name, check=False).stdout:
        assert time.monotonic() < deadline, "job never started"
        time.sleep(0.05)
    started = time.monotonic()
    docker("stop", "--time", "10", container_name)
    elapsed = time.monotonic() - started
    code = docker("inspect", "--format", "{{.State.ExitCode}}", container_name).stdout.strip()
    assert code == "143"  # 128 + SIGTERM: the job died of the forwarded signal, not SIGKILL
    assert elapsed < 2, f"docker stop took {elapsed:.1f} s"
