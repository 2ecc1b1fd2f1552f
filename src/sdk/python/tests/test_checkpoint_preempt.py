"""SIGTERM handling, in real subprocesses: hooks run, L2 is flushed, exit 143."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

from s3_fixture import S3Server, s3server  # noqa: F401  (fixture)

PACKAGE_ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, os, sys, time
import numpy as np
from cumulus import checkpoint

mode = sys.argv[1]
out = sys.argv[2]
step = 0
weights = np.zeros(1000)

def state():
    return {"w": weights, "step": step}

def record(event):
    with open(out, "a") as f:
        f.write(json.dumps({"event": event, "step": step, "t": time.time()}) + "\n")

if mode == "hook":
    @checkpoint.on_preempt
    def final():
        checkpoint.save(state(), step)
        record("hook-saved")
elif mode == "checkpointer":
    ckpt = checkpoint.Checkpointer(every_n_steps=10**6)
    checkpoint.on_preempt(lambda: record("hook"))
elif mode == "stuck":
    checkpoint.on_preempt(lambda: time.sleep(3600))

checkpoint.save(state(), 0)
print("ready", flush=True)
while True:
    step += 1
    weights += 1.0
    time.sleep(0.01)
    if mode == "checkpointer":
        ckpt.maybe_save(state(), step)
"""


def start(tmp_path: Path, mode: str, env: Dict[str, str]) -> "subprocess.Popen[str]":
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    full = {**os.environ, **env, "PYTHONPATH": str(PACKAGE_ROOT), "CUMULUS_CHECKPOINT_DIR": str(tmp_path / "l1")}
    proc = subprocess.Popen(
        [sys.executable, str(script), mode, str(tmp_path / "events.jsonl")],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as in a container
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
    time.sleep(0.3)  # some training steps
    return proc


def terminate_group(proc: "subprocess.Popen[str]") -> None:
    """SIGTERM to the job's whole process group, as the container's init (tini -g) sends it:
    the upload worker gets it too and must keep serving the final flush."""
    os.killpg(proc.pid, signal.SIGTERM)


def events(tmp_path: Path) -> List[dict]:
    path = tmp_path / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def l2_steps(server: S3Server) -> List[int]:
    return [int(k.split("/")[-2]) for k in server.keys("cumulus/j-pre/") if k.endswith("/manifest.json")]


def job_env(server: S3Server) -> Dict[str, str]:
    return {**server.env(), "CUMULUS_JOB_ID": "j-pre", "CUMULUS_STOP_GRACE_PERIOD": "10"}


def test_sigterm_runs_the_hook_flushes_l2_and_exits_143(tmp_path: Path, s3server: S3Server) -> None:
    proc = start(tmp_path, "hook", job_env(s3server))
    sent = time.time()
    terminate_group(proc)
    assert proc.wait(15) == 143, proc.stderr.read() if proc.stderr else ""
    (hook,) = events(tmp_path)
    assert hook["event"] == "hook-saved" and hook["step"] > 0 and hook["t"] >= sent
    # The hook's checkpoint is in S3 already: the flush ran before exit.
    assert hook["step"] in l2_steps(s3server)
    stderr = proc.stderr.read() if proc.stderr else ""
    assert "preempted; exiting with status 143" in stderr
    # The upload worker ignored the group's SIGTERM: no upload failed on the way.
    assert "failed" not in stderr, stderr


def test_checkpointer_saves_the_next_step_then_runs_hooks(tmp_path: Path, s3server: S3Server) -> None:
    proc = start(tmp_path, "checkpointer", job_env(s3server))
    terminate_group(proc)
    assert proc.wait(15) == 143, proc.stderr.read() if proc.stderr else ""
    (hook,) = events(tmp_path)
    assert hook["event"] == "hook" and hook["step"] > 0
    # The final checkpoint is the step the loop was at, taken at its end
    # (every_n_steps alone would never have saved it), in L1 and in S3.
    assert max(l2_steps(s3server)) == hook["step"]
    from cumulus.checkpoint import CheckpointConfig, CheckpointManager

    restored = CheckpointManager(CheckpointConfig(directory=tmp_path / "l1")).restore()
    assert restored.step == hook["step"]
    assert restored.state["w"][0] == float(hook["step"])  # consistent: weights match the step


def test_a_stuck_hook_does_not_outlive_the_grace_period(tmp_path: Path, s3server: S3Server) -> None:
    proc = start(tmp_path, "stuck", {**job_env(s3server), "CUMULUS_STOP_GRACE_PERIOD": "2"})
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 143
    assert time.monotonic() - sent < 2.5
    assert "ran out of time" in (proc.stderr.read() if proc.stderr else "")


def test_s3_down_at_preemption_still_exits_within_the_grace_period(tmp_path: Path, s3server: S3Server) -> None:
    proc = start(tmp_path, "hook", {**job_env(s3server), "CUMULUS_STOP_GRACE_PERIOD": "3"})
    s3server.stop()
    sent = time.monotonic()
    terminate_group(proc)
    assert proc.wait(15) == 143
    assert time.monotonic() - sent < 3.5
    (hook,) = events(tmp_path)
    from cumulus.checkpoint import CheckpointConfig, CheckpointManager

    # Not in S3, but on L1: the job resumes from it on this worker.
    assert CheckpointManager(CheckpointConfig(directory=tmp_path / "l1")).restore().step == hook["step"]
    assert "L2 flush incomplete" in (proc.stderr.read() if proc.stderr else "")
