"""Framework memory caps (cumulus.gpu): which jobs get them, the numbers, which
frameworks are tried, and the function runtime applying them before the call.

The machines here have PyTorch without CUDA, so a cap is never really applied:
the tests check the decisions as pure functions and, with the real PyTorch,
that a job with a GPU grant but no usable CUDA runs on untouched and silent.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Set

import pytest

from bundle_helpers import PACKAGE_DIR
from cumulus._call import CallEnvelope, pickle_call, python_version
from cumulus._outcome import KIND_VALUE, decode_value
from cumulus.gpu import (
    FRAMEWORKS,
    MemoryCap,
    PartitionShare,
    apply_memory_cap,
    installed_frameworks,
    share_from_env,
    tensorflow_limit_mib,
    torch_fraction,
)
from runtime_server import RuntimeServer

GIB = 1 << 30
THIS_MODULE = sys.modules[__name__]
#: A fractional job on a worker with device access, as the orchestrator and the runtime wrapper set it up.
GRANTED = {
    "CUMULUS_JOB_ID": "j-0123456789ab", "CUMULUS_GPU_MEMORY": "0.25", "CUMULUS_GPU_COUNT": "1",
    "CUMULUS_PARTITION_ID": "p-0123456789ab", "CUMULUS_PARTITION_IDS": "p-0123456789ab",
    "CUDA_VISIBLE_DEVICES": "0", "CUMULUS_GPU_UUIDS": "GPU-8f0c", "CUMULUS_GPU_MEMORY_BYTES": str(20 * GIB),
}


def _without(*keys: str, **changes: str) -> Dict[str, str]:
    env = {k: v for k, v in GRANTED.items() if k not in keys}
    env.update(changes)
    return env


@pytest.mark.parametrize(
    "env, expected",
    [
        (GRANTED, PartitionShare(0.25, 20 * GIB, "p-0123456789ab")),
        (_without("CUMULUS_GPU_UUIDS"), PartitionShare(0.25, 20 * GIB, "p-0123456789ab")),
        (_without("CUDA_VISIBLE_DEVICES"), PartitionShare(0.25, 20 * GIB, "p-0123456789ab")),
        (_without("CUMULUS_GPU_MEMORY_BYTES"), PartitionShare(0.25, None, "p-0123456789ab")),
        (_without("CUMULUS_PARTITION_ID", "CUMULUS_PARTITION_IDS"), PartitionShare(0.25, 20 * GIB, "")),
        (_without("CUDA_VISIBLE_DEVICES", "CUMULUS_GPU_UUIDS"), None),
        (_without("CUMULUS_GPU_UUIDS", CUDA_VISIBLE_DEVICES="void"), None),
        (_without("CUMULUS_GPU_UUIDS", CUDA_VISIBLE_DEVICES="-1"), None),
        (_without(CUMULUS_GPU_MEMORY="1", CUMULUS_GPU_COUNT="2"), None),
        (_without(CUMULUS_GPU_MEMORY="junk"), None),
        (_without("CUMULUS_JOB_ID"), None),
        ({}, None),
    ],
    ids=[
        "granted", "no-uuids", "no-cuda-visible", "size-unknown", "no-partition-id", "no-gpu-in-container",
        "void", "minus-one", "whole-gpus", "bad-fraction", "outside-a-job", "empty",
    ],
)
def test_share_from_env(env: Dict[str, str], expected: Optional[PartitionShare]) -> None:
    assert share_from_env(env) == expected


@pytest.mark.parametrize(
    "share, total, fraction",
    [
        # The device reports its full 80 GiB: 20 GiB of it.
        (PartitionShare(0.25, 20 * GIB, "p"), 80 * GIB, 0.25),
        # Under MPS with a pinned limit the device may report the partition as its total.
        (PartitionShare(0.25, 20 * GIB, "p"), 20 * GIB, 1.0),
        # Reported total a little under the partition: never above 1.
        (PartitionShare(0.25, 20 * GIB, "p"), 19 * GIB, 1.0),
        # The partition in bytes wins over the fraction asked (a 20GiB request on an 80 GB card).
        (PartitionShare(0.5, 20 * GIB, "p"), 79 * GIB, 20 / 79),
        # Size unknown: the fraction asked.
        (PartitionShare(0.3, None, "p"), 80 * GIB, 0.3),
    ],
    ids=["full-total", "mps-total", "under-total", "bytes-win", "fraction-only"],
)
def test_torch_fraction(share: PartitionShare, total: int, fraction: float) -> None:
    assert torch_fraction(share, total) == pytest.approx(fraction)


def test_torch_fraction_refuses_a_device_without_memory() -> None:
    with pytest.raises(ValueError, match="^total_bytes: must be > 0, got 0$"):
        torch_fraction(PartitionShare(0.5, None, ""), 0)


def test_tensorflow_limit_is_the_partition_in_whole_mib() -> None:
    assert tensorflow_limit_mib(PartitionShare(0.25, 20 * GIB, "p")) == 20480
    assert tensorflow_limit_mib(PartitionShare(0.25, 20 * GIB + 123, "p")) == 20480
    assert tensorflow_limit_mib(PartitionShare(0.25, 1000, "p")) == 1
    assert tensorflow_limit_mib(PartitionShare(0.25, None, "p")) is None


def test_installed_frameworks_are_found_without_importing_them() -> None:
    # A stand-in for importlib's finder: which frameworks are tried is pure logic.
    asked: List[str] = []

    def find(installed: Set[str]) -> Any:
        def spec(name: str) -> Any:
            asked.append(name)
            if name == "broken":
                raise ValueError("bad spec")
            return object() if name in installed else None
        return spec

    assert installed_frameworks(find({"torch", "tensorflow"})) == ("pytorch", "tensorflow")
    assert installed_frameworks(find({"tensorflow"})) == ("tensorflow",)
    assert installed_frameworks(find(set())) == ()
    assert set(asked) == {"torch", "tensorflow"}
    assert FRAMEWORKS == ("pytorch", "tensorflow")


def test_the_real_finder_sees_debians_torch() -> None:
    pytest.importorskip("torch")
    assert "pytorch" in installed_frameworks()


def test_cap_describes_itself_in_one_line() -> None:
    cap = MemoryCap("pytorch", 0, 20 * GIB, "p-0123456789ab")
    assert cap.describe() == "capped PyTorch to 20.0 GiB of GPU 0 (partition p-0123456789ab)"
    assert MemoryCap("tensorflow", 0, 512 << 20, "").describe() == "capped TensorFlow to 512 MiB of GPU 0"


def test_unknown_framework_is_an_error() -> None:
    with pytest.raises(ValueError, match="^frameworks: unknown framework 'jax', expected one of pytorch, tensorflow$"):
        apply_memory_cap(GRANTED, frameworks=["jax"])


def _python(code: str, env: Dict[str, str]) -> subprocess.CompletedProcess:
    # Only the job's variables, plus where the machine keeps its GPU driver.
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PACKAGE_DIR)}
    if "LD_LIBRARY_PATH" in os.environ:
        base["LD_LIBRARY_PATH"] = os.environ["LD_LIBRARY_PATH"]
    return subprocess.run(
        [sys.executable, "-c", code], env={**base, **env},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )


_CAP_AND_REPORT = (
    "import sys; from cumulus import apply_memory_cap; caps = apply_memory_cap(); "
    "print(caps, 'torch' in sys.modules, 'tensorflow' in sys.modules)"
)


def test_nothing_is_imported_without_a_fractional_gpu_grant() -> None:
    for env in (_without("CUDA_VISIBLE_DEVICES", "CUMULUS_GPU_UUIDS"), _without(CUMULUS_GPU_MEMORY="1"), {}):
        proc = _python(_CAP_AND_REPORT, env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["[]", "False", "False"], env
        assert proc.stderr == ""


def test_without_cuda_pytorch_is_tried_and_nothing_happens() -> None:
    # The real (CPU-only) PyTorch: imported because the job has a grant, then
    # skipped silently because it has no CUDA device.
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():  # pragma: no cover - a GPU machine
        pytest.skip("this test is about a PyTorch without CUDA")
    proc = _python(_CAP_AND_REPORT, GRANTED)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[:2] == ["[]", "True"]
    assert proc.stderr == ""


def test_apply_memory_cap_in_process_returns_no_caps_without_cuda() -> None:
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():  # pragma: no cover - a GPU machine
        pytest.skip("this test is about a PyTorch without CUDA")
    out = io.StringIO()
    assert apply_memory_cap(GRANTED, frameworks=["pytorch"], stream=out) == []
    assert apply_memory_cap(GRANTED, stream=out) == []
    assert out.getvalue() == ""


_CAP_THEN_ALLOCATE = """
import torch
from cumulus import apply_memory_cap
caps = apply_memory_cap()
gib = 1 << 30
x = torch.empty(6 * gib, dtype=torch.uint8, device="cuda")  # 75 % of the 8 GiB partition
del x
torch.cuda.empty_cache()
try:
    y = torch.empty(12 * gib, dtype=torch.uint8, device="cuda")  # 150 %
    print("allocated 12 GiB")
except torch.cuda.OutOfMemoryError:
    print("out of memory at 12 GiB")
print(len(caps), caps[0].framework if caps else "")
"""


def test_on_a_cuda_gpu_the_cap_makes_pytorch_run_out_at_the_partition() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU here (run on a GPU machine: this is the real cap)")
    env = _without(CUMULUS_GPU_MEMORY_BYTES=str(8 * GIB), CUMULUS_GPU_MEMORY="0.1")
    env.pop("CUDA_VISIBLE_DEVICES")  # the machine's own GPU 0; the grant's UUID still marks the job as granted
    proc = _python(_CAP_THEN_ALLOCATE, env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["out of memory at 12 GiB", "1 pytorch"], proc.stdout
    assert re.search(r"^cumulus: capped PyTorch to 8\.0 GiB of GPU 0 \(partition p-0123456789ab\)$", proc.stderr, re.M), proc.stderr


# -- the function runtime applies the cap before the call ---------------------


def frameworks_loaded() -> Dict[str, bool]:
    """Runs in the job: which frameworks the runtime imported before the call."""
    return {"torch": "torch" in sys.modules, "tensorflow": "tensorflow" in sys.modules}


def _run_function(server: RuntimeServer, workdir: Path, env: Dict[str, str]) -> subprocess.CompletedProcess:
    from bundle_helpers import runtime_env

    server.function = CallEnvelope(
        call=pickle_call(frameworks_loaded, (), {}, by_value=[THIS_MODULE]), bundle=False, python=python_version(),
    ).to_bytes()
    return subprocess.run(
        [sys.executable, "-m", "cumulus.runtime", "--function"],
        env=runtime_env(server, workdir, **env),  # type: ignore[arg-type]
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )


def test_function_runtime_tries_the_cap_for_a_fractional_grant(server: RuntimeServer, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    grant = {k: v for k, v in GRANTED.items() if k != "CUMULUS_JOB_ID"}  # the server's job id stays
    proc = _run_function(server, tmp_path / "w", grant)
    assert proc.returncode == 0, proc.stderr
    kind, data = server.results[-1]
    assert kind == KIND_VALUE and decode_value(data)["torch"] is True
    assert "not capped" not in proc.stderr


def test_function_runtime_imports_no_framework_without_a_grant(server: RuntimeServer, tmp_path: Path) -> None:
    proc = _run_function(server, tmp_path / "w", {"CUMULUS_GPU_MEMORY": "0.25"})
    assert proc.returncode == 0, proc.stderr
    kind, data = server.results[-1]
    assert kind == KIND_VALUE and decode_value(data) == {"torch": False, "tensorflow": False}
