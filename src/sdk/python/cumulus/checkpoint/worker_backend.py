"""The training process's side of the L2 upload worker (see :mod:`.upload_worker`).

The worker is ``python -m cumulus.checkpoint.upload_worker``; this module
starts it and turns the upload methods of :class:`~cumulus.checkpoint.l2.S3Store`
into JSON-line commands on its stdin, each answered by one line on its stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, Optional

from cumulus.checkpoint.config import S3Settings
from cumulus.checkpoint.manifest import FileRecord, Manifest, step_name

__all__ = ["WorkerBackend", "WorkerError"]


class WorkerError(Exception):
    """The worker reported a failed S3 operation, or died (the uploader retries)."""


class WorkerBackend:
    """The S3 operations of :class:`~cumulus.checkpoint.l2.S3Store`, run in a worker process."""

    def __init__(self, settings: S3Settings, job_id: str) -> None:
        self.settings = settings
        self.job_id = job_id
        self.bucket = settings.bucket
        prefix = settings.prefix.strip("/")
        self._base = f"{prefix}/{job_id}/" if prefix else f"{job_id}/"
        self._proc: Optional["subprocess.Popen[bytes]"] = None
        self._lock = threading.Lock()
        self._closed = False

    def url(self, step: int) -> str:
        """``s3://`` URL of a step's folder, for messages."""
        return f"s3://{self.bucket}/{self._base}{step_name(step)}/"

    def begin_step(self, step: int) -> None:
        """See :meth:`S3Store.begin_step`."""
        self._call({"op": "begin", "step": step})

    def upload_file(self, step: int, path: Path, record: FileRecord) -> None:
        """See :meth:`S3Store.upload_file`; ``FileNotFoundError`` when ``path`` is gone."""
        self._call(
            {"op": "file", "step": step, "path": str(path), "name": record.name, "size": record.size,
             "sha256": record.sha256}
        )  # fmt: skip

    def put_manifest(self, manifest: Manifest) -> None:
        """See :meth:`S3Store.put_manifest`."""
        self._call({"op": "manifest", "step": manifest.step, "json": manifest.to_json().decode("utf-8")})

    def prune(self, keep_last: int, current: Optional[int] = None) -> None:
        """See :meth:`S3Store.prune`."""
        self._call({"op": "prune", "keep_last": keep_last, "current": current})

    def close(self) -> None:
        """Let the worker exit (its stdin closes), killing it after 2 s.

        Does not wait for a command in flight: that one fails, and the
        uploader, being stopped, does not retry it.
        """
        self._closed = True
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except (OSError, ValueError):
            pass
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _start(self) -> "subprocess.Popen[bytes]":
        env = dict(os.environ)
        # The worker imports this very package, wherever it was loaded from.
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        proc = subprocess.Popen(
            [sys.executable, "-m", "cumulus.checkpoint.upload_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        s = self.settings
        hello = {
            "bucket": s.bucket, "region": s.region, "endpoint": s.endpoint, "prefix": s.prefix,
            "job_id": self.job_id, "access_key_id": s.access_key_id, "secret_access_key": s.secret_access_key,
            "presign": s.presign,
        }  # fmt: skip
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(hello).encode() + b"\n")
        proc.stdin.flush()
        return proc

    def _call(self, command: Dict[str, Any]) -> Dict[str, Any]:
        with self._lock:
            if self._closed:
                raise WorkerError("upload worker closed")
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()
            proc = self._proc
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(json.dumps(command).encode() + b"\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
            except (OSError, ValueError) as err:  # ValueError: closed by close()
                line = b""
                reason = str(err)
            else:
                reason = f"exit status {proc.poll()}"
            if not line:
                self._proc = None
                proc.kill()
                proc.wait()
                raise WorkerError(f"upload worker died ({reason})")
        reply: Dict[str, Any] = json.loads(line)
        if reply.get("ok"):
            return reply
        if reply.get("missing"):
            raise FileNotFoundError(reply.get("error", "file missing"))
        raise WorkerError(reply.get("error", "unknown error"))
