"""L2 against a real S3-protocol server (s3rver): upload order, fallbacks, outages."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, List

import numpy as np
import pytest

from cumulus.checkpoint import CheckpointUnavailableError
from s3_fixture import S3Server, make_manager, s3server  # noqa: F401  (fixture)

PREFIX = "cumulus/job-1/"


def state(i: int, size: int = 64) -> dict:
    return {"weights": np.full((size, size), float(i)), "meta": {"step": i}}


def wait_until(cond: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def manifests(server: S3Server) -> List[str]:
    return [k for k in server.keys(PREFIX) if k.endswith("/manifest.json")]


class Recorder:
    """The real boto3 client, with the order of object writes noted."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.writes: List[str] = []

    def upload_file(self, path: str, bucket: str, key: str, **kw: Any) -> None:
        self._client.upload_file(path, bucket, key, **kw)
        self.writes.append(key)

    def put_object(self, **kw: Any) -> Any:
        out = self._client.put_object(**kw)
        self.writes.append(kw["Key"])
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_upload_layout_multipart_and_manifest_last(tmp_path: Path, s3server: S3Server) -> None:
    from cumulus.checkpoint.l2 import make_s3_client

    client = Recorder(make_s3_client(s3server.settings()))
    calls: List[str] = []
    # botocore's own event hooks on the real client: which S3 operations ran.
    client.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    manager = make_manager(tmp_path, s3server, s3_client=client)
    big = np.random.RandomState(0).randn(5 * 1024 * 1024)  # 40 MB: multipart
    manager.save({"big": big, "meta": {"a": 1}}, 12)
    assert manager.flush(timeout=60)
    step = f"{PREFIX}000000000012/"
    assert s3server.keys(step) == [step + "big.npy", step + "manifest.json", step + "meta.pkl"]
    assert client.writes[-1] == step + "manifest.json"
    assert calls.count("CreateMultipartUpload") == 1 and calls.count("UploadPart") == 3  # 16 MiB parts
    assert calls.count("CompleteMultipartUpload") == 1
    shutil.rmtree(tmp_path)
    restored = manager.restore()
    assert restored.source == "l2" and restored.step == 12
    assert restored.state["big"].tobytes() == big.tobytes()


def test_corrupt_l1_falls_back_to_l2(tmp_path: Path, s3server: S3Server) -> None:
    manager = make_manager(tmp_path, s3server)
    manager.save(state(1), 1)
    manager.save(state(2), 2)
    assert manager.flush(timeout=30)
    with open(tmp_path / "000000000002/weights.npy", "r+b") as f:
        f.seek(200)
        f.write(b"\xff\xff")
    restored = manager.restore()
    assert (restored.step, restored.source) == (2, "l2")
    assert np.array_equal(restored.state["weights"], np.full((64, 64), 2.0))
    # Downloaded into L1: the next restore needs no S3.
    s3server.stop()
    again = make_manager(tmp_path).restore()
    assert (again.step, again.source) == (2, "l1")


def test_newer_step_in_l2_wins_over_older_l1(tmp_path: Path, s3server: S3Server) -> None:
    other_worker = make_manager(tmp_path / "worker-b", s3server)
    other_worker.save(state(50), 50)
    assert other_worker.flush(timeout=30)
    here = make_manager(tmp_path / "worker-a", s3server)
    # This worker's L1 only has an older step (the job moved away and back).
    make_manager(tmp_path / "worker-a").save(state(40), 40)
    restored = here.restore()
    assert (restored.step, restored.source) == (50, "l2")


def test_partial_and_mismatching_uploads_never_count(tmp_path: Path, s3server: S3Server) -> None:
    manager = make_manager(tmp_path / "a", s3server)
    manager.save(state(4), 4, keep_last=10)
    manager.save(state(6), 6, keep_last=10)
    assert manager.flush(timeout=30)
    raw = s3server.client()
    # Step 8: files but no manifest, as after a kill mid-upload.
    for name in ("weights.npy", "meta.pkl"):
        raw.copy_object(Bucket=s3server.bucket, Key=f"{PREFIX}000000000008/{name}",
                        CopySource={"Bucket": s3server.bucket, "Key": f"{PREFIX}000000000006/{name}"})  # fmt: skip
    # Step 6: one file replaced by other bytes of the same size (sha256 differs).
    key = f"{PREFIX}000000000006/weights.npy"
    body = bytearray(raw.get_object(Bucket=s3server.bucket, Key=key)["Body"].read())
    body[-8:] = b"\x00" * 8
    raw.put_object(Bucket=s3server.bucket, Key=key, Body=bytes(body))
    restored = make_manager(tmp_path / "b", s3server).restore()
    assert (restored.step, restored.source) == (4, "l2")
    assert np.array_equal(restored.state["weights"], np.full((64, 64), 4.0))


def test_s3_down_mid_run_then_back_uploads_catch_up(
    tmp_path: Path, s3server: S3Server, caplog: pytest.LogCaptureFixture
) -> None:
    manager = make_manager(tmp_path, s3server, max_pending=8)
    manager.save(state(1), 1)
    assert manager.flush(timeout=30)
    s3server.stop()
    with caplog.at_level(logging.WARNING, logger="cumulus.checkpoint"):
        started = time.monotonic()
        for step in (2, 3, 4):
            manager.save(state(step), step)
        assert time.monotonic() - started < 5  # training does not wait for S3
        assert manager.flush(timeout=1.0) is False
        wait_until(lambda: manager.uploader.down_since is not None)
    assert any("checkpoints stay on L1" in r.getMessage() for r in caplog.records)
    assert manager.l1.steps()[:3] == [4, 3, 2]
    s3server.start()
    assert manager.flush(timeout=30)
    names = manifests(s3server)
    assert [n.split("/")[-2] for n in names] == ["000000000002", "000000000003", "000000000004"]
    shutil.rmtree(tmp_path)
    assert manager.restore().step == 4


def test_bounded_queue_drops_the_oldest_pending_upload(tmp_path: Path, s3server: S3Server) -> None:
    manager = make_manager(tmp_path, s3server, max_pending=2)
    s3server.stop()
    for step in range(1, 7):
        manager.save(state(step), step, keep_last=10)
        assert manager.uploader.pending() <= 2
    assert len(manager.uploader.dropped) == 4
    s3server.start()
    assert manager.flush(timeout=30)
    uploaded = [int(n.split("/")[-2]) for n in manifests(s3server)]
    # The newest always gets there; one older may have been in flight.
    assert len(uploaded) == 2 and uploaded[-1] == 6


def test_keep_last_applies_to_l2(tmp_path: Path, s3server: S3Server) -> None:
    manager = make_manager(tmp_path, s3server)
    for step in range(1, 6):
        manager.save(state(step), step, keep_last=2)
        assert manager.flush(timeout=30)
    folders = sorted({k.split("/")[2] for k in s3server.keys(PREFIX)})
    assert folders == ["000000000004", "000000000005"]
    assert manager.l1.steps() == [5, 4]


def test_resumed_attempt_refuses_to_start_from_scratch_when_s3_is_unreachable(tmp_path: Path, s3server: S3Server) -> None:
    first = make_manager(tmp_path / "a", s3server)
    first.save(state(1), 1)
    assert first.flush(timeout=30)
    s3server.stop()
    resumed = make_manager(tmp_path / "b", s3server, attempt=2, restore_wait=1.0)
    with pytest.raises(CheckpointUnavailableError):
        resumed.restore()
    # A first attempt has nothing to resume: it starts, with a warning.
    assert make_manager(tmp_path / "c", s3server, attempt=1, restore_wait=0.5).restore() is None
    # With a valid L1 checkpoint, a resumed attempt goes on from it.
    make_manager(tmp_path / "b").save(state(1), 1)
    assert resumed.restore().step == 1


def test_restore_downloads_into_l1_verified(tmp_path: Path, s3server: S3Server) -> None:
    manager = make_manager(tmp_path / "a", s3server)
    manager.save(state(3), 3)
    assert manager.flush(timeout=30)
    fresh = make_manager(tmp_path / "b", s3server)
    restored = fresh.restore()
    assert restored.source == "l2"
    assert fresh.l1.verify(3).step == 3
    assert not [p for p in os.listdir(tmp_path / "b") if p.startswith(".tmp-")]
