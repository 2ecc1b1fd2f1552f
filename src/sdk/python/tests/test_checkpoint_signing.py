"""Signed checkpoints: each manifest carries an HMAC-SHA256 under the job's key,
and restore loads nothing whose manifest does not verify (forged, altered,
another job's, or unsigned from before signing); and L2 through presigned
URLs only (a real gRPC Runtime server presigning for a real s3rver)."""

from __future__ import annotations

import json
import logging
import os
import pickle
from pathlib import Path
from typing import Any, Dict, Iterator

import grpc
import numpy as np
import pytest

from bundle_helpers import pb2
from cumulus.checkpoint import CheckpointConfig
from cumulus.checkpoint.errors import BadSignatureError, CorruptCheckpointError, UnsignedCheckpointError
from cumulus.checkpoint.manifest import Entry, FileRecord, Manifest
from runtime_server import Presigner, start_presign_server
from s3_fixture import ACCESS_KEY, SECRET_KEY, S3Server, make_manager, s3server  # noqa: F401  (fixture)

KEY = b"k" * 32
OTHER = b"o" * 32


def manifest() -> Manifest:
    return Manifest(
        step=7,
        entries=(Entry("w", "numpy.ndarray", ("w.npy",), {"dtype": "uint8"}),),
        files=(FileRecord("w.npy", 10, "a" * 64),),
        job_id="j-1",
    )


def test_a_signed_manifest_verifies_with_its_key_only() -> None:
    data = manifest().signed(KEY).to_json()
    assert Manifest.from_json(data, KEY).step == 7
    with pytest.raises(BadSignatureError, match="does not verify"):
        Manifest.from_json(data, OTHER)


@pytest.mark.parametrize(
    "alter",
    [
        lambda d: d["files"][0].update(size=11),
        lambda d: d["files"][0].update(sha256="b" * 64),
        lambda d: d["entries"][0].update(framework="pickle"),
        lambda d: d["entries"][0]["meta"].update(dtype="int64"),
        lambda d: d.update(step=8),
        lambda d: d.update(job_id="j-2"),
    ],
)
def test_any_change_to_a_signed_manifest_breaks_its_signature(alter: Any) -> None:
    doc = json.loads(manifest().signed(KEY).to_json())
    alter(doc)
    with pytest.raises(BadSignatureError):
        Manifest.from_json(json.dumps(doc).encode(), KEY)


def test_unsigned_manifests_are_refused_saying_why() -> None:
    old = json.loads(manifest().to_json())
    old["format"] = 1  # as written before signing existed
    with pytest.raises(UnsignedCheckpointError, match="made before checkpoints were signed"):
        Manifest.from_json(json.dumps(old).encode(), KEY)
    stripped = json.loads(manifest().signed(KEY).to_json())
    del stripped["signature"]
    with pytest.raises(UnsignedCheckpointError):
        Manifest.from_json(json.dumps(stripped).encode(), KEY)
    # Both are still CorruptCheckpointError: restore skips them like damage.
    assert issubclass(UnsignedCheckpointError, CorruptCheckpointError)


class Bomb:
    """Unpickling it leaves a file: proof that restore loaded it."""

    marker = ""

    def __reduce__(self) -> Any:
        return (Path(self.marker).touch, ())


def plant_forged_step(directory: Path, step: int, key: bytes, marker: Path) -> None:
    """A step in ``directory`` whose one pickle entry runs code, signed with ``key``."""
    from cumulus.checkpoint.fileio import sha256_file

    Bomb.marker = str(marker)
    step_dir = directory / f"{step:012d}"
    step_dir.mkdir(parents=True)
    (step_dir / "evil.pkl").write_bytes(pickle.dumps(Bomb()))
    record = sha256_file(step_dir / "evil.pkl")
    forged = Manifest(step=step, entries=(Entry("w", "pickle", ("evil.pkl",)),), files=(record,), job_id="job-1")
    data = forged.signed(key).to_json() if key else forged.to_json()
    (step_dir / "manifest.json").write_bytes(data)


@pytest.mark.parametrize("key", [OTHER, b""], ids=["other-key", "unsigned"])
def test_restore_skips_a_forged_l1_step_and_never_unpickles_it(
    tmp_path: Path, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    l1, marker = tmp_path / "l1", tmp_path / "pwned"
    manager = make_manager(l1, signing_key=KEY)
    manager.save({"w": np.arange(4)}, 1)
    plant_forged_step(l1, 2, key, marker)
    with caplog.at_level(logging.WARNING, "cumulus.checkpoint"):
        restored = manager.restore()
    assert restored is not None and restored.step == 1  # the older valid one
    assert not marker.exists()
    assert "signature" in caplog.text or "unsigned" in caplog.text
    # Only forged steps: nothing is loaded, the job starts fresh.
    only = make_manager(tmp_path / "l1b", signing_key=KEY)
    plant_forged_step(tmp_path / "l1b", 3, key, marker)
    assert only.restore() is None and not marker.exists()


def test_restore_skips_a_step_planted_in_l2_with_another_jobs_key(
    tmp_path: Path, s3server: S3Server  # noqa: F811
) -> None:
    marker = tmp_path / "pwned"
    manager = make_manager(tmp_path / "a", s3server, signing_key=KEY)
    manager.save({"w": np.arange(4)}, 1)
    assert manager.flush(30)
    # An attacker uploads a newer step straight to S3, signed with its own key.
    plant_forged_step(tmp_path / "forge", 5, OTHER, marker)
    client = s3server.client()
    for name in ("evil.pkl", "manifest.json"):
        client.upload_file(str(tmp_path / "forge" / "000000000005" / name), s3server.bucket, f"cumulus/job-1/000000000005/{name}")
    fresh = make_manager(tmp_path / "b", s3server, signing_key=KEY)
    restored = fresh.restore()
    assert restored is not None and restored.step == 1 and restored.source == "l2"
    assert not marker.exists()


# -- L2 through presigned URLs -------------------------------------------------


@pytest.fixture
def presigner(s3server: S3Server) -> Iterator[Presigner]:  # noqa: F811
    state = Presigner(s3server.endpoint, s3server.bucket, "cumulus/job-1/", (ACCESS_KEY, SECRET_KEY))
    server = start_presign_server(state)
    try:
        yield state
    finally:
        server.stop(grace=None)


def job_env(server: S3Server, url: str) -> Dict[str, str]:
    env = {k: v for k, v in server.env().items() if not k.startswith("AWS_")}
    env.update(
        CUMULUS_S3_PRESIGN="1", CUMULUS_ORCHESTRATOR_URL=url, CUMULUS_JOB_ID="job-1", CUMULUS_JOB_TOKEN="t"
    )
    return env


def test_l2_save_and_restore_through_presigned_urls_multipart_included(
    tmp_path: Path, s3server: S3Server, presigner: Presigner, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    from cumulus.checkpoint import CheckpointManager

    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    for k, v in job_env(s3server, presigner.url).items():
        monkeypatch.setenv(k, v)
    big = np.random.RandomState(1).randint(0, 255, 40 << 20, dtype=np.uint8)  # > 16 MiB: multipart
    config = CheckpointConfig.from_env(cwd=tmp_path)
    assert config.s3 is not None and config.s3.presign and config.s3.access_key_id is None
    manager = CheckpointManager(config, report=False)
    try:
        for step in (1, 2):
            manager.save({"w": big, "n": step}, step, keep_last=1)
        assert manager.flush(120)
    finally:
        manager.close(5)
    keys = s3server.keys("cumulus/job-1/")
    assert keys and all(k.startswith("cumulus/job-1/000000000002/") for k in keys)  # step 1 pruned
    assert any(s.startswith("PUT ") for s in presigner.signed)
    fresh = CheckpointManager(
        CheckpointConfig(directory=tmp_path / "other-worker", job_id="job-1", s3=config.s3), report=False
    )
    restored = fresh.restore()
    assert restored is not None and restored.source == "l2" and restored.step == 2
    assert np.array_equal(restored.state["w"], big) and restored.state["n"] == 2
    assert presigner.refused == 0


def test_a_presigning_client_cannot_reach_another_jobs_prefix(
    tmp_path: Path, s3server: S3Server, presigner: Presigner, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    from cumulus.checkpoint.l2 import make_s3_client

    for k, v in job_env(s3server, presigner.url).items():
        monkeypatch.setenv(k, v)
    s3server.client().put_object(Bucket=s3server.bucket, Key="cumulus/job-2/secret", Body=b"x")
    client = make_s3_client(CheckpointConfig.from_env(cwd=tmp_path).s3)  # type: ignore[arg-type]
    with pytest.raises(grpc.RpcError) as info:
        client.get_object(Bucket=s3server.bucket, Key="cumulus/job-2/secret")
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert presigner.refused == 1
    assert os.environ.get("AWS_ACCESS_KEY_ID") is None
