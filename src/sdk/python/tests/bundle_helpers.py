"""Test helpers: a FetchBundle servicer, bundle builders, and a runner for
``python3 -m cumulus.runtime`` as a real process."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import grpc

PACKAGE_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = PACKAGE_DIR.parents[2]
if str(PACKAGE_DIR) not in sys.path:
    sys.path.insert(0, str(PACKAGE_DIR))

from cumulus._proto import cumulus_pb2 as pb2  # noqa: E402
from cumulus import runtime  # noqa: E402

JOB_ID = "job-1"
TOKEN = "s3cret-token-value"


@dataclass
class BundleServer:
    """What the test's FetchBundle server serves; tests change the fields."""

    url: str = ""
    bundle: bytes = b""
    job_id: str = JOB_ID
    token: str = TOKEN
    chunk_size: int = 64 * 1024
    #: total_bytes announced on the first chunk; None means len(bundle).
    announce: Optional[int] = None
    #: (job_id, token) of each FetchBundle call, as received.
    calls: List[Tuple[str, Optional[str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fetch(self, request: pb2.FetchBundleRequest, context: grpc.ServicerContext) -> Iterator[pb2.BundleChunk]:
        metadata = dict(context.invocation_metadata())
        token = metadata.get(runtime.TOKEN_METADATA_KEY)
        with self.lock:
            self.calls.append((request.job_id, token))
        if token != self.token:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad job token")
        if request.job_id != self.job_id:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown job {request.job_id}")
        total = len(self.bundle) if self.announce is None else self.announce
        for offset in range(0, len(self.bundle), self.chunk_size):
            yield pb2.BundleChunk(
                data=self.bundle[offset:offset + self.chunk_size],
                total_bytes=total if offset == 0 else 0,
            )


def tar_gz(entries: Mapping[str, bytes] = {}, extra: Sequence[tarfile.TarInfo] = (), mode: int = 0o644) -> bytes:
    """A gzipped tar with regular files ``entries`` (name → content) then ``extra`` members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        for name, content in dict(entries).items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = mode
            info.mtime = 1_700_000_000
            archive.addfile(info, io.BytesIO(content))
        for info in extra:
            archive.addfile(info)
    return buf.getvalue()


def member(name: str, kind: bytes, linkname: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    """A data-less tar member (directory, link, device, FIFO)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = mode
    return info


def runtime_env(server: BundleServer, workdir: Path, **overrides: str) -> Dict[str, str]:
    """The environment the orchestrator gives a job container, pointed at ``server``."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(PACKAGE_DIR),
        "CUMULUS_ORCHESTRATOR_URL": server.url,
        "CUMULUS_JOB_ID": JOB_ID,
        "CUMULUS_JOB_TOKEN": TOKEN,
        "CUMULUS_WORKDIR": str(workdir),
        "CUMULUS_CONNECT_TIMEOUT": "5",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def run_runtime(env: Mapping[str, str], *command: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run ``python3 -m cumulus.runtime -- command...`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "cumulus.runtime", "--", *command],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
