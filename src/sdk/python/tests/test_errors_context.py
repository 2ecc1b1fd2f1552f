"""Error classes and the job context (pure logic)."""

from __future__ import annotations

import pickle

import pytest

from cumulus import current_job
from cumulus.context import JobContext
from cumulus.errors import JobCancelled, JobFailed, RemoteError


def test_job_failed_message_has_reason_code_and_last_lines() -> None:
    err = JobFailed("j-1", "FAILED", 3, "exited with code 3", ["a", "b"])
    assert str(err) == "job j-1 FAILED without a result: exited with code 3; last 2 log line(s):\n  | a\n  | b"
    killed = JobFailed("j-2", "FAILED", 139, "the task failed", [])
    assert str(killed) == "job j-2 FAILED without a result: the task failed (exit code 139); it printed nothing"


def test_errors_pickle() -> None:
    for err in (JobCancelled("j", "CANCELLED", None, "cancelled by user", ["x"]), RemoteError("m.T", "msg", "tb")):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err)
    assert isinstance(JobCancelled("j", "CANCELLED", None, "", []), JobFailed)


def test_job_context_from_env() -> None:
    env = {
        "CUMULUS_JOB_ID": "j-abc", "CUMULUS_GPU_MEMORY": "0.5", "CUMULUS_GPU_COUNT": "2",
        "CUMULUS_DURATION": "60", "CUMULUS_DEADLINE_MS": "1700000060000", "CUMULUS_ATTEMPT": "2",
        "CUMULUS_PARTITION_ID": "p-1", "CUMULUS_DEVICE": "0",
    }
    ctx = JobContext.from_env(env)
    assert ctx == JobContext("j-abc", 0.5, 2, 60.0, 1_700_000_060.0, 2, "p-1", 0)
    assert ctx.seconds_left(now=1_700_000_000.0) == 60.0


def test_job_context_defaults_and_outside_a_job(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = JobContext.from_env({"CUMULUS_JOB_ID": "j", "CUMULUS_GPU_MEMORY": "junk"})
    assert ctx is not None and ctx.gpu_memory == 0.0 and ctx.partition_id is None and ctx.device is None
    assert ctx.seconds_left() == float("inf")
    monkeypatch.delenv("CUMULUS_JOB_ID", raising=False)
    assert current_job() is None
