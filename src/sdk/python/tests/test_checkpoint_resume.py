"""A training run killed mid-way and resumed ends bit-identical to an uninterrupted one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional

import pytest

from s3_fixture import S3Server, s3server  # noqa: F401  (fixture)

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
STEPS = 60

TRAIN = r"""
import os, signal, sys, time
import torch
from cumulus.checkpoint import Checkpointer, rng_state, set_rng_state

torch.set_num_threads(1)
torch.manual_seed(0)
steps, kill_at, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
data = torch.randn(512, 16)
target = data @ torch.randn(16, 1) + 0.1 * torch.randn(512, 1)
model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(64, 1))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=15, gamma=0.5)

ckpt = Checkpointer(every_n_steps=10)
restored = ckpt.restore(into={"model": model, "opt": opt, "sched": sched})
start = 0
if restored is not None:
    set_rng_state(restored.state["rng"])
    start = restored.step + 1
    print("resumed", restored.step, restored.source, flush=True)
for step in range(start, steps):
    idx = torch.randperm(512)[:32]  # shuffling and dropout draw from the RNG
    loss = torch.nn.functional.mse_loss(model(data[idx]), target[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    time.sleep(0.02)  # a step takes time; uploads run meanwhile
    if step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)  # as abrupt as a lost worker
    ckpt.maybe_save({"model": model, "opt": opt, "sched": sched, "rng": rng_state()}, step)
with open(out, "wb") as f:
    for t in model.state_dict().values():
        f.write(t.numpy().tobytes())
"""


def train(tmp_path: Path, name: str, kill_at: int = -1, env: Optional[Dict[str, str]] = None) -> "subprocess.CompletedProcess[str]":
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    full = {
        **os.environ,
        **(env or {}),
        "PYTHONPATH": str(PACKAGE_ROOT),
        "CUMULUS_JOB_ID": "j-train",
        "CUMULUS_CHECKPOINT_DIR": str(tmp_path / f"l1-{name}"),
    }
    return subprocess.run(
        [sys.executable, str(script), str(STEPS), str(kill_at), str(tmp_path / f"{name}.bin")],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    tmp = tmp_path_factory.mktemp("reference")
    done = train(tmp, "reference")
    assert done.returncode == 0, done.stderr
    return (tmp / "reference.bin").read_bytes()


def test_killed_and_resumed_from_l1_gives_bit_identical_weights(tmp_path: Path, reference: bytes) -> None:
    killed = train(tmp_path, "run", kill_at=37)
    assert killed.returncode == -9 and not (tmp_path / "run.bin").exists()
    resumed = train(tmp_path, "run")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed 30 l1" in resumed.stdout
    assert (tmp_path / "run.bin").read_bytes() == reference


def test_killed_then_l1_lost_resumes_from_s3_bit_identical(tmp_path: Path, reference: bytes, s3server: S3Server) -> None:
    killed = train(tmp_path, "run", kill_at=43, env=s3server.env())
    assert killed.returncode == -9
    shutil.rmtree(tmp_path / "l1-run")  # another worker: nothing local
    resumed = train(tmp_path, "run", env=s3server.env())
    assert resumed.returncode == 0, resumed.stderr
    # Step 40's upload may have been cut by the kill; then 30 is the newest.
    assert "resumed 40 l2" in resumed.stdout or "resumed 30 l2" in resumed.stdout, resumed.stdout
    # The run's last checkpoints reached S3 at exit (flushed by the atexit hook).
    keys = s3server.keys("cumulus/j-train/")
    assert "cumulus/j-train/000000000050/manifest.json" in keys, keys
    assert (tmp_path / "run.bin").read_bytes() == reference


def test_without_restored_rng_the_run_diverges(tmp_path: Path, reference: bytes) -> None:
    # Shows that the identity above is not trivial: a resume that keeps
    # the weights but not the RNG state ends elsewhere.
    script = TRAIN.replace('set_rng_state(restored.state["rng"])', "pass")
    (tmp_path / "train.py").write_text(script)
    killed = train_script(tmp_path, script, kill_at=37)
    assert killed.returncode == -9
    resumed = train_script(tmp_path, script)
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "run.bin").read_bytes() != reference


def train_script(tmp_path: Path, script: str, kill_at: int = -1) -> "subprocess.CompletedProcess[str]":
    path = tmp_path / "variant.py"
    path.write_text(script)
    full = {
        **os.environ,
        "PYTHONPATH": str(PACKAGE_ROOT),
        "CUMULUS_JOB_ID": "j-train",
        "CUMULUS_CHECKPOINT_DIR": str(tmp_path / "l1-variant"),
    }
    return subprocess.run(
        [sys.executable, str(path), str(STEPS), str(kill_at), str(tmp_path / "run.bin")],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )
