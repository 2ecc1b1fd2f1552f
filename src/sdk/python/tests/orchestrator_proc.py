"""A real ``cumulus orchestrator`` process for end-to-end tests.

Started as ``deno run -A main.ts orchestrator`` from the repository root on a
free loopback port with a fresh data dir, against the local Docker engine in
Swarm mode (``SWARM_MANAGER``) and the job image (``CUMULUS_JOB_IMAGE``), both
from the environment ``.cumulus/env`` exports. Missing Deno or Docker is an
error, never a skip: the project's test machines have both.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import Deque, Dict, List, Mapping

from bundle_helpers import REPO_ROOT

DEFAULT_SOCKET = "/run/cumulus-docker.sock"

#: The admin token of every orchestrator these tests start (user "admin"). Clients
#: in this process and its subprocesses find it through CUMULUS_TOKEN.
TEST_ADMIN_TOKEN = "cu_{}_{}".format(
    secrets.token_hex(6), base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
)
os.environ["CUMULUS_TOKEN"] = TEST_ADMIN_TOKEN


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_deno() -> str:
    """The Deno binary: on PATH, else the repository's ``.tools`` copy; raises when absent."""
    found = shutil.which("deno")
    if found:
        return found
    local = REPO_ROOT / ".tools/node_modules/deno/deno"
    if local.is_file():
        return str(local)
    raise RuntimeError("Deno not found: run scripts/bootstrap.sh, then `source .cumulus/env`")


def docker_env() -> Dict[str, str]:
    """The environment for the docker CLI and build scripts."""
    env = dict(os.environ)
    if "DOCKER_HOST" not in env:
        env["DOCKER_HOST"] = f"unix://{env.get('SWARM_MANAGER', DEFAULT_SOCKET)}"
    return env


def check_docker() -> None:
    """Raise unless a Docker engine in Swarm mode answers."""
    if shutil.which("docker") is None:
        raise RuntimeError("docker CLI not installed: run scripts/bootstrap.sh")
    proc = subprocess.run(
        ["docker", "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"],
        env=docker_env(), capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0 or proc.stdout.strip() != "active true":
        raise RuntimeError(
            f"no Docker engine in Swarm mode at {docker_env()['DOCKER_HOST']}: "
            f"{proc.stderr.strip() or proc.stdout.strip()} (run scripts/bootstrap.sh)"
        )


def build_job_image() -> None:
    """Bring the job image up to date with this checkout (cached by content hash: ~1 s when it is)."""
    proc = subprocess.run(
        ["bash", str(REPO_ROOT / "containers/job/build.sh")], env=docker_env(),
        capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"containers/job/build.sh failed:\n{proc.stderr[-3000:]}")


class Orchestrator:
    """A running orchestrator; ``url`` is ``127.0.0.1:PORT``."""

    def __init__(self, data_dir: Path, extra_env: Mapping[str, str] = {}) -> None:
        self.port = free_port()
        self.url = f"127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self._stderr: Deque[str] = deque(maxlen=300)
        self._ready = threading.Event()
        env = dict(os.environ)
        env.update({
            "ORCHESTRATOR_PORT": str(self.port),
            "ORCHESTRATOR_METRICS_PORT": "-1",
            "CUMULUS_DATA_DIR": str(data_dir),
            "SWARM_MANAGER": os.environ.get("SWARM_MANAGER", DEFAULT_SOCKET),
            "CUMULUS_JOB_IMAGE": os.environ.get("CUMULUS_JOB_IMAGE", "cumulus-job:latest"),
            "CUMULUS_STOP_GRACE_PERIOD": "2",
            "CUMULUS_ADMIN_TOKEN": TEST_ADMIN_TOKEN,
            "CUMULUS_ADMIN_USER": "admin",
        })
        env.update(extra_env)
        self._proc = subprocess.Popen(
            [find_deno(), "run", "-A", "main.ts", "orchestrator"],
            cwd=str(REPO_ROOT), env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        # Drain stderr for the whole life of the process: a full pipe would stall it.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr.append(line.rstrip("\n"))
            if "listening on" in line:
                self._ready.set()

    def wait_ready(self, timeout: float = 90) -> None:
        """Wait for "listening on"; raise with the orchestrator's output when it does not come."""
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"orchestrator did not start (exit {self._proc.returncode}):\n" + "\n".join(self._stderr)
                )

    def output(self) -> List[str]:
        """The orchestrator's last stderr lines (for failure messages)."""
        return list(self._stderr)

    def stop(self) -> int:
        """SIGTERM and wait (SIGKILL after 20 s); returns the exit status."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._reader.join(timeout=5)
        return int(self._proc.returncode)


def start_orchestrator(data_dir: Path, extra_env: Mapping[str, str] = {}) -> Orchestrator:
    """Check Docker, build the job image, start an orchestrator and wait until it serves."""
    check_docker()
    if os.environ.get("CUMULUS_E2E_SKIP_IMAGE_BUILD") != "1":
        build_job_image()
    orch = Orchestrator(data_dir, extra_env)
    orch.wait_ready()
    return orch

