"""A real S3-protocol server (s3rver, npm) for the checkpoint tests.

s3rver is installed by scripts/bootstrap.sh at ``$CUMULUS_S3RVER``. When it
is missing the tests fail loudly instead of skipping: CI has it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, List, Optional

import pytest

from cumulus.checkpoint import S3Settings

__all__ = ["S3Server", "s3rver_script", "s3server", "make_manager", "ACCESS_KEY", "SECRET_KEY"]

#: s3rver's fixed credentials.
ACCESS_KEY = "S3RVER"
SECRET_KEY = "S3RVER"
_REPO = Path(__file__).resolve().parents[4]
_LISTENING = re.compile(r"S3rver listening on 127\.0\.0\.1:(\d+)")


def s3rver_script() -> Path:
    """Path of s3rver's entry point; fails the test when it is not installed."""
    raw = os.environ.get("CUMULUS_S3RVER") or str(_REPO / ".tools/s3rver/node_modules/s3rver/bin/s3rver.js")
    path = Path(raw)
    if not path.is_file() or shutil.which("node") is None:
        pytest.fail(f"s3rver not installed at {path} (or node missing): run scripts/bootstrap.sh", pytrace=False)
    return path


class S3Server:
    """One s3rver process on loopback; :meth:`stop` and :meth:`start` keep port and data."""

    def __init__(self, data_dir: Path, bucket: str) -> None:
        self.data_dir = data_dir
        self.bucket = bucket
        self.port = 0
        self._proc: Optional[subprocess.Popen] = None  # type: ignore[type-arg]
        self._output: List[str] = []

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        """Start (again, on the same port once one was chosen) and wait until it listens."""
        self._proc = subprocess.Popen(
            ["node", str(s3rver_script()), "-d", str(self.data_dir), "-p", str(self.port),
             "--address", "127.0.0.1", "--configure-bucket", self.bucket, "--silent"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        found = threading.Event()

        def read(proc: Any) -> None:
            for line in proc.stdout:
                self._output.append(line)
                match = _LISTENING.search(line)
                if match and not found.is_set():
                    self.port = int(match.group(1))
                    found.set()

        threading.Thread(target=read, args=(self._proc,), daemon=True).start()
        if not found.wait(timeout):
            self.stop()
            raise RuntimeError(f"s3rver did not start: {''.join(self._output)[-2000:]}")

    def stop(self) -> None:
        """Kill the server (connections are refused until :meth:`start`)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
            self._proc = None

    def settings(self, prefix: str = "cumulus") -> S3Settings:
        """:class:`S3Settings` pointing at this server."""
        return S3Settings(
            bucket=self.bucket,
            region="us-east-1",
            endpoint=self.endpoint,
            prefix=prefix,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
        )

    def env(self, prefix: str = "cumulus") -> dict:
        """The environment variables a job container would get for this server."""
        return {
            "CUMULUS_S3_BUCKET": self.bucket,
            "CUMULUS_S3_REGION": "us-east-1",
            "CUMULUS_S3_ENDPOINT": self.endpoint,
            "CUMULUS_S3_PREFIX": prefix,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def client(self) -> Any:
        """A boto3 client of its own (not the one under test)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def keys(self, prefix: str = "") -> List[str]:
        """Every object key under ``prefix``, sorted."""
        client = self.client()
        out: List[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out.extend(o["Key"] for o in page.get("Contents", []))
        return sorted(out)


@pytest.fixture
def s3server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A fresh s3rver with its own data directory and bucket."""
    server = S3Server(tmp_path_factory.mktemp("s3rver"), f"ckpt-{uuid.uuid4().hex[:12]}")
    server.start()
    try:
        yield server
    finally:
        # Stop the test's uploader threads first: none may outlive its test.
        while _made:
            _made.pop().close(timeout=0)
        server.stop()


def make_manager(directory: Path, server: Optional[S3Server] = None, job_id: str = "job-1", attempt: int = 1, **options: Any) -> Any:
    """A CheckpointManager on ``directory`` (L1) and, when given, ``server`` (L2).

    Tests use short backoffs so that recovery after an outage is quick.
    """
    from cumulus.checkpoint import CheckpointConfig, CheckpointManager
    from cumulus.checkpoint.uploader import Backoff

    config = CheckpointConfig(
        directory=directory,
        job_id=job_id,
        attempt=attempt,
        s3=server.settings() if server is not None else None,
    )
    options.setdefault("backoff", Backoff(0.05, 0.5))
    options.setdefault("restore_wait", 5.0)
    manager = CheckpointManager(config, **options)
    _made.append(manager)
    return manager


_made: List[Any] = []
