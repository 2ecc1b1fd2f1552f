"""Error classes and the job context (pure logic)."""

from __future__ import annotations

import pickle
from typing import Dict, Optional, Tuple

import pytest

from cumulus import current_job
from cumulus.context import JobContext
from cumulus.errors import JobCancelled, JobFailed, RemoteError


def test_job_failed_message_has_reason_code_and_last_lines() -> None:
    err = JobFailed("j-1", "FAILED", 3, "exited with code 3", ["a", "b"])
    assert str(err) == "job j-1 FAILED without a result: exited with code 3; last 2 log line(s):\n  | a\n  | b"
    killed = JobFailed("j-2", "FAILED", 139, "the task failed", [])
    assert str(killed) == "job j-2 FAILED without a result: the task failed (exit code 139); it printed nothing"


def test_job_failed_carries_its_reason_code() -> None:
    err = JobFailed("j-1", "FAILED", 1, "exceeded its 20.0 GiB GPU partition", [], "GPU_MEMORY_EXCEEDED")
    assert err.reason_code == "GPU_MEMORY_EXCEEDED"
    assert pickle.loads(pickle.dumps(err)).reason_code == "GPU_MEMORY_EXCEEDED"


def test_errors_pickle() -> None:
    for err in (JobCancelled("j", "CANCELLED", None, "cancelled by user", ["x"]), RemoteError("m.T", "msg", "tb")):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err)
    assert isinstance(JobCancelled("j", "CANCELLED", None, "", []), JobFailed)


def test_job_context_from_env() -> None:
    env = {
        "CUMULUS_JOB_ID": "j-abc", "CUMULUS_GPU_MEMORY": "0.5", "CUMULUS_GPU_COUNT": "1",
        "CUMULUS_DURATION": "60", "CUMULUS_DEADLINE_MS": "1700000060000", "CUMULUS_ATTEMPT": "2",
        "CUMULUS_PARTITION_ID": "p-0123456789ab", "CUMULUS_PARTITION_IDS": "p-0123456789ab",
        "CUMULUS_GPU_DEVICE": "3", "CUMULUS_GPU_DEVICES": "3",
        "CUMULUS_GPU_UUIDS": "GPU-8f0c", "CUMULUS_GPU_MEMORY_BYTES": "21474836480",
    }
    ctx = JobContext.from_env(env)
    assert ctx == JobContext(
        "j-abc", 0.5, 1, 60.0, 1_700_000_060.0, 2, "p-0123456789ab", 3,
        partition_ids=("p-0123456789ab",), devices=(3,), gpu_uuids=("GPU-8f0c",), gpu_memory_bytes=21474836480,
    )
    assert ctx.seconds_left(now=1_700_000_000.0) == 60.0
    assert not ctx.whole_gpus


def test_job_context_of_whole_gpus() -> None:
    env = {
        "CUMULUS_JOB_ID": "j-abc", "CUMULUS_GPU_MEMORY": "1", "CUMULUS_GPU_COUNT": "4",
        "CUMULUS_PARTITION_ID": "p-00000000000a", "CUMULUS_PARTITION_IDS": "p-00000000000a,p-00000000000b,p-00000000000c,p-00000000000d",
        "CUMULUS_GPU_DEVICE": "4", "CUMULUS_GPU_DEVICES": "4,5,6,7", "CUMULUS_GPU_UUIDS": "GPU-a,GPU-b,GPU-c,GPU-d",
    }
    ctx = JobContext.from_env(env)
    assert ctx is not None and ctx.whole_gpus and ctx.gpu_count == 4
    assert ctx.partition_ids == ("p-00000000000a", "p-00000000000b", "p-00000000000c", "p-00000000000d")
    assert ctx.partition_id == "p-00000000000a" and ctx.device == 4 and ctx.devices == (4, 5, 6, 7)
    assert ctx.gpu_uuids == ("GPU-a", "GPU-b", "GPU-c", "GPU-d") and ctx.gpu_memory_bytes is None


@pytest.mark.parametrize(
    "env, partition_ids, device, devices",
    [
        # An orchestrator that sets only the single-partition variables.
        ({"CUMULUS_PARTITION_ID": "p-1", "CUMULUS_GPU_DEVICE": "2"}, ("p-1",), 2, (2,)),
        # Set but empty (no partition): nothing.
        ({"CUMULUS_PARTITION_ID": "", "CUMULUS_PARTITION_IDS": ""}, (), None, ()),
        # Only the lists: the first of each.
        ({"CUMULUS_PARTITION_IDS": "p-1,p-2", "CUMULUS_GPU_DEVICES": "0,1"}, ("p-1", "p-2"), 0, (0, 1)),
        # A malformed device list falls back to the single device.
        ({"CUMULUS_GPU_DEVICE": "1", "CUMULUS_GPU_DEVICES": "1,x"}, (), 1, (1,)),
        ({"CUMULUS_GPU_DEVICE": "-1"}, (), None, ()),
    ],
    ids=["single-only", "empty", "lists-only", "bad-list", "negative"],
)
def test_job_context_fallbacks(
    env: Dict[str, str], partition_ids: Tuple[str, ...], device: Optional[int], devices: Tuple[int, ...],
) -> None:
    ctx = JobContext.from_env({"CUMULUS_JOB_ID": "j", **env})
    assert ctx is not None
    assert (ctx.partition_ids, ctx.device, ctx.devices) == (partition_ids, device, devices)
    assert ctx.partition_id == (partition_ids[0] if partition_ids else None)
    assert ctx.gpu_count == max(1, len(devices))


def test_job_context_defaults_and_outside_a_job(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = JobContext.from_env({"CUMULUS_JOB_ID": "j", "CUMULUS_GPU_MEMORY": "junk", "CUMULUS_GPU_MEMORY_BYTES": "x"})
    assert ctx is not None and ctx.gpu_memory == 0.0 and ctx.partition_id is None and ctx.device is None
    assert ctx.gpu_count == 1 and ctx.gpu_uuids == () and ctx.gpu_memory_bytes is None
    assert ctx.seconds_left() == float("inf")
    monkeypatch.delenv("CUMULUS_JOB_ID", raising=False)
    assert current_job() is None
