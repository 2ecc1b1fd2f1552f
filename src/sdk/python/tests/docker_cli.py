"""The docker CLI for tests that build or run job images against the project's engine."""

from __future__ import annotations

import os
import subprocess
from typing import Dict

#: The engine scripts/bootstrap.sh starts, used when DOCKER_HOST is unset.
DEFAULT_SOCK = "/run/cumulus-docker.sock"


def docker_env() -> Dict[str, str]:
    """This process's environment, with DOCKER_HOST pointing at the project's engine if unset."""
    env = dict(os.environ)
    if "DOCKER_HOST" not in env and os.path.exists(DEFAULT_SOCK):
        env["DOCKER_HOST"] = f"unix://{DEFAULT_SOCK}"
    return env


def docker(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs the docker CLI (argv only) against the project's engine."""
    return subprocess.run(
        ["docker", *args], env=docker_env(), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=timeout, check=check,
    )
