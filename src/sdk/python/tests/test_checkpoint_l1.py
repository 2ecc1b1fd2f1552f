"""L1: layout, atomicity, damaged checkpoints, pruning, the module-level API."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from cumulus import checkpoint
from cumulus.checkpoint import CheckpointConfig, CheckpointConfigError, Checkpointer
from s3_fixture import make_manager


def state(i: int) -> dict:
    return {"weights": np.full((64, 64), float(i)), "meta": {"step": i}}


def test_layout_and_manifest(tmp_path: Path) -> None:
    manager = make_manager(tmp_path, job_id="j-abc", attempt=2)
    manager.save(state(1), 1234)
    step_dir = tmp_path / "000000001234"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000000001234"]  # no temporary left
    assert sorted(p.name for p in step_dir.iterdir()) == ["manifest.json", "meta.pkl", "weights.npy"]
    doc = json.loads((step_dir / "manifest.json").read_text())
    assert doc["step"] == 1234 and doc["job_id"] == "j-abc" and doc["attempt"] == 2 and doc["format"] == 2
    assert len(doc["signature"]) == 64  # HMAC-SHA256, hex
    assert doc["created"].endswith("Z")
    assert {e["key"]: e["framework"] for e in doc["entries"]} == {"weights": "numpy.ndarray", "meta": "pickle"}
    for f in doc["files"]:
        data = (step_dir / f["name"]).read_bytes()
        assert f["size"] == len(data) and f["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "delete_file", "delete_manifest", "garbage_manifest"])
def test_damaged_newest_checkpoint_falls_back_to_the_previous_valid_one(tmp_path: Path, damage: str) -> None:
    manager = make_manager(tmp_path)
    for step in (10, 20, 30):
        manager.save(state(step), step)
    newest = tmp_path / "000000000030"
    target = newest / "weights.npy"
    if damage == "truncate":
        os.truncate(target, target.stat().st_size - 100)
    elif damage == "flip_byte":  # same size, different content: only sha256 sees it
        data = bytearray(target.read_bytes())
        data[-1] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "delete_file":
        target.unlink()
    elif damage == "delete_manifest":
        (newest / "manifest.json").unlink()
    else:
        (newest / "manifest.json").write_text("{not json")
    restored = manager.restore()
    assert restored is not None and restored.step == 20
    assert np.array_equal(restored.state["weights"], np.full((64, 64), 20.0))
    assert not newest.exists()  # moved aside, never counted again


def test_temporary_directories_never_count_and_are_cleaned(tmp_path: Path) -> None:
    manager = make_manager(tmp_path)
    manager.save(state(1), 1)
    # What a writer killed mid-save leaves: a temp dir with files, even a manifest.
    crashed = tmp_path / ".tmp-000000000002-999999-deadbeef"
    crashed.mkdir()
    (crashed / "manifest.json").write_text("{}")
    restored = manager.restore()
    assert restored is not None and restored.step == 1
    manager.save(state(3), 3)
    assert not crashed.exists()


def test_keep_last_prunes_old_steps(tmp_path: Path) -> None:
    manager = make_manager(tmp_path)
    for step in range(1, 8):
        manager.save(state(step), step, keep_last=2)
    assert manager.l1.steps() == [7, 6]


def test_saving_a_step_again_replaces_it(tmp_path: Path) -> None:
    manager = make_manager(tmp_path)
    manager.save(state(1), 5)
    manager.save(state(2), 5)
    restored = manager.restore()
    assert restored.step == 5 and restored.state["meta"] == {"step": 2}
    assert manager.l1.steps() == [5]


def test_nothing_saved_restores_none(tmp_path: Path) -> None:
    assert make_manager(tmp_path / "missing").restore() is None


@pytest.mark.parametrize("bad", [-1, 1.5, "3", 10**12, True])
def test_bad_step_is_refused(tmp_path: Path, bad: object) -> None:
    with pytest.raises(CheckpointConfigError):
        make_manager(tmp_path).save(state(1), bad)  # type: ignore[arg-type]


def test_module_api_uses_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("CUMULUS_CHECKPOINT_DIR", "CUMULUS_S3_BUCKET", "CUMULUS_JOB_ID", "CUMULUS_ATTEMPT"):
        monkeypatch.delenv(var, raising=False)
    checkpoint.configure()
    checkpoint.save({"x": np.arange(3)}, 4)
    assert (tmp_path / ".cumulus-checkpoints/local/000000000004/manifest.json").is_file()
    monkeypatch.setenv("CUMULUS_CHECKPOINT_DIR", str(tmp_path / "mounted"))
    monkeypatch.setenv("CUMULUS_JOB_ID", "j-1")
    checkpoint.configure()
    assert checkpoint.restore() is None
    checkpoint.save({"x": np.arange(3)}, 9)
    restored = checkpoint.restore()
    assert restored.step == 9 and list(restored.state["x"]) == [0, 1, 2]
    assert checkpoint.flush(timeout=1) is True  # no L2: nothing to wait for
    checkpoint.configure(CheckpointConfig(directory=tmp_path / "other"))


def test_config_from_env() -> None:
    cfg = CheckpointConfig.from_env(
        {
            "CUMULUS_JOB_ID": "j-1",
            "CUMULUS_ATTEMPT": "3",
            "CUMULUS_CHECKPOINT_DIR": "/ck",
            "CUMULUS_S3_BUCKET": "b",
            "CUMULUS_S3_ENDPOINT": "http://127.0.0.1:9",
            "AWS_SECRET_ACCESS_KEY": "hidden",
        }
    )
    assert (cfg.job_id, cfg.attempt, str(cfg.directory)) == ("j-1", 3, "/ck")
    assert cfg.s3 is not None and (cfg.s3.prefix, cfg.s3.region, cfg.s3.endpoint) == ("cumulus", "us-east-1", "http://127.0.0.1:9")
    assert CheckpointConfig.from_env({}).s3 is None
    with pytest.raises(CheckpointConfigError, match="CUMULUS_ATTEMPT"):
        CheckpointConfig.from_env({"CUMULUS_ATTEMPT": "zero"})
    with pytest.raises(CheckpointConfigError, match="CUMULUS_JOB_ID"):
        CheckpointConfig.from_env({"CUMULUS_JOB_ID": "../etc"})


def test_checkpointer_saves_on_multiples_and_on_time(tmp_path: Path) -> None:
    manager = make_manager(tmp_path)
    now = [0.0]
    by_steps = Checkpointer(every_n_steps=3, keep_last=10, manager=manager, save_on_preempt=False)
    saved = [s for s in range(1, 11) if by_steps.maybe_save(state(s), s)]
    assert saved == [3, 6, 9]
    by_time = Checkpointer(every_seconds=5, keep_last=10, manager=manager, save_on_preempt=False, clock=lambda: now[0])
    hits = []
    for s in range(20, 30):
        now[0] += 2
        if by_time.maybe_save(state(s), s):
            hits.append(s)
    assert hits == [22, 25, 28]
    assert Checkpointer(save_on_preempt=False, manager=manager).every_n_steps == checkpoint.DEFAULT_EVERY_N_STEPS
    with pytest.raises(CheckpointConfigError):
        Checkpointer(every_n_steps=0, save_on_preempt=False)
