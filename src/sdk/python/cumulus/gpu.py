"""Framework memory caps for a job that holds a fraction of one GPU.

A partition is enforced in two layers. On NVIDIA GPUs the first is the
driver's: the job's processes are MPS clients with a pinned device memory
limit, so an allocation beyond the partition fails whatever allocates it.
The second layer, and the only one on other GPUs, is this module: it tells
the job's ML frameworks how much memory they may take, so they run out of
memory inside the partition instead of taking a neighbour's share.

* PyTorch (CUDA, ROCm, Intel XPU builds):
  ``set_per_process_memory_fraction(f, 0)`` where ``f`` is the partition's
  bytes over the total memory PyTorch reports for the device. Under MPS that
  total may already be the partition's, so ``f`` is computed against what
  PyTorch reports and never taken blindly from ``CUMULUS_GPU_MEMORY``.
* TensorFlow, where installed: one logical device of the partition's size on
  the first GPU (``set_logical_device_configuration``), which must happen
  before TensorFlow first touches the GPU.

Function jobs (``client.run``/``submit``) get the caps before the function is
even unpickled. A plain command runs in a process the runtime cannot reach, so
there the caps are the job's own business: call :func:`apply_memory_cap` at the
start of the program (MPS, the first layer, holds either way on NVIDIA).

Nothing happens, and no framework is imported, outside a job, for whole-GPU
jobs, and for jobs whose container got no GPU (no ``CUDA_VISIBLE_DEVICES`` or
``CUMULUS_GPU_UUIDS``): a framework is only imported (1–2 s for PyTorch) when
there is something to cap.

>>> from cumulus.gpu import apply_memory_cap  # doctest: +SKIP
>>> apply_memory_cap()                        # doctest: +SKIP
cumulus: capped PyTorch to 20.0 GiB of GPU 0 (partition p-0123456789ab)
[MemoryCap(framework='pytorch', gpu=0, limit_bytes=21474836480, partition_id='p-0123456789ab')]
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from typing import IO, Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from cumulus._bytes import format_bytes
from cumulus.context import JobContext

__all__ = [
    "FRAMEWORKS",
    "PartitionShare",
    "MemoryCap",
    "share_from_env",
    "torch_fraction",
    "tensorflow_limit_mib",
    "installed_frameworks",
    "apply_memory_cap",
]

#: Frameworks :func:`apply_memory_cap` knows, in the order it caps them.
FRAMEWORKS: Tuple[str, ...] = ("pytorch", "tensorflow")

_MODULES: Dict[str, str] = {"pytorch": "torch", "tensorflow": "tensorflow"}
_NAMES: Dict[str, str] = {"pytorch": "PyTorch", "tensorflow": "TensorFlow"}
# What container runtimes put in CUDA_VISIBLE_DEVICES to hand over no GPU.
_NO_GPU = frozenset({"", "-1", "none", "void", "nodevfiles"})
_MIB = 1 << 20
# Problems reported once per process (e.g. TensorFlow already initialised).
_reported: Set[str] = set()


@dataclass(frozen=True)
class PartitionShare:
    """The fraction of one GPU a job holds, as the caps need it.

    Attributes:
        fraction: ``CUMULUS_GPU_MEMORY``, in (0, 1).
        memory_bytes: The partition's size in bytes (``CUMULUS_GPU_MEMORY_BYTES``),
            or ``None`` where the worker did not say.
        partition_id: The partition's id ("" when unknown), for messages.
    """

    fraction: float
    memory_bytes: Optional[int]
    partition_id: str


@dataclass(frozen=True)
class MemoryCap:
    """One cap that was applied.

    Attributes:
        framework: ``"pytorch"`` or ``"tensorflow"``.
        gpu: The device index inside the container (``CUDA_VISIBLE_DEVICES`` numbering).
        limit_bytes: The most the framework may allocate on that device.
        partition_id: The partition the cap follows ("" when unknown).
    """

    framework: str
    gpu: int
    limit_bytes: int
    partition_id: str

    def describe(self) -> str:
        """One line for people, e.g. ``capped PyTorch to 20.0 GiB of GPU 0 (partition p-…)``."""
        partition = f" (partition {self.partition_id})" if self.partition_id else ""
        size = format_bytes(self.limit_bytes)
        return f"capped {_NAMES.get(self.framework, self.framework)} to {size} of GPU {self.gpu}{partition}"


def _has_gpus(env: Mapping[str, str]) -> bool:
    """True when the container was handed GPUs (the runtime wrapper sets these)."""
    if env.get("CUMULUS_GPU_UUIDS", "").strip():
        return True
    return env.get("CUDA_VISIBLE_DEVICES", "").strip().lower() not in _NO_GPU


def share_from_env(env: Mapping[str, str]) -> Optional[PartitionShare]:
    """The fractional partition to cap to, read from a job's environment.

    Args:
        env: The environment, e.g. ``os.environ``.

    Returns:
        The share, or ``None`` when there is nothing to cap: outside a job, for
        whole GPUs (``CUMULUS_GPU_MEMORY`` >= 1) or an unknown fraction, or
        when the container got no GPU.
    """
    ctx = JobContext.from_env(env)
    if ctx is None or not 0.0 < ctx.gpu_memory < 1.0 or not _has_gpus(env):
        return None
    memory_bytes = ctx.gpu_memory_bytes if ctx.gpu_memory_bytes else None
    return PartitionShare(fraction=ctx.gpu_memory, memory_bytes=memory_bytes, partition_id=ctx.partition_id or "")


def torch_fraction(share: PartitionShare, total_bytes: int) -> float:
    """The ``set_per_process_memory_fraction`` argument for a device.

    Args:
        share: The job's partition.
        total_bytes: The device's total memory as the framework reports it.

    Returns:
        ``min(1, share.memory_bytes / total_bytes)`` when the partition's
        size is known (under MPS the reported total may already be the
        partition's, which gives 1), else ``share.fraction``.

    Raises:
        ValueError: ``total_bytes`` is not positive.
    """
    if total_bytes <= 0:
        raise ValueError(f"total_bytes: must be > 0, got {total_bytes}")
    if share.memory_bytes:
        return min(1.0, share.memory_bytes / total_bytes)
    return share.fraction


def tensorflow_limit_mib(share: PartitionShare) -> Optional[int]:
    """TensorFlow's ``memory_limit`` (MiB) for the partition, ``None`` when its size is unknown.

    Args:
        share: The job's partition.

    Returns:
        The partition's whole MiB (at least 1), or ``None`` without ``memory_bytes``
        (TensorFlow reports no device total before it initialises the GPU).
    """
    if not share.memory_bytes:
        return None
    return max(1, share.memory_bytes // _MIB)


def installed_frameworks(find_spec: Callable[[str], Any] = importlib.util.find_spec) -> Tuple[str, ...]:
    """The known frameworks that are installed, without importing them.

    Args:
        find_spec: How to look a top-level module up (``importlib.util.find_spec``).

    Returns:
        The names from :data:`FRAMEWORKS` whose module can be found, in that order.
    """
    found: List[str] = []
    for name in FRAMEWORKS:
        try:
            if find_spec(_MODULES[name]) is not None:
                found.append(name)
        except (ImportError, ValueError):
            continue
    return tuple(found)


def _say(stream: IO[str], text: str) -> None:
    print(f"cumulus: {text}", file=stream, flush=True)


def _cap_torch(share: PartitionShare) -> Optional[MemoryCap]:
    import torch

    cuda = torch.cuda
    if cuda.is_available():
        total = int(cuda.get_device_properties(0).total_memory)
        fraction = torch_fraction(share, total)
        cuda.set_per_process_memory_fraction(fraction, 0)
        return MemoryCap("pytorch", 0, int(fraction * total), share.partition_id)
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and hasattr(xpu, "set_per_process_memory_fraction") and xpu.is_available():
        total = int(xpu.get_device_properties(0).total_memory)
        fraction = torch_fraction(share, total)
        xpu.set_per_process_memory_fraction(fraction, 0)
        return MemoryCap("pytorch", 0, int(fraction * total), share.partition_id)
    return None  # a CPU build, or no device visible: nothing to cap


def _cap_tensorflow(share: PartitionShare, stream: IO[str]) -> Optional[MemoryCap]:
    limit = tensorflow_limit_mib(share)
    if limit is None:
        if "tensorflow-size" not in _reported:
            _reported.add("tensorflow-size")
            _say(stream, "TensorFlow not capped: the partition's size is unknown (no CUMULUS_GPU_MEMORY_BYTES)")
        return None
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    try:
        tf.config.set_logical_device_configuration(gpus[0], [tf.config.LogicalDeviceConfiguration(memory_limit=limit)])
    except RuntimeError as err:
        # TensorFlow refuses once it has initialised its GPUs; say so once, not per call.
        if "tensorflow-initialised" not in _reported:
            _reported.add("tensorflow-initialised")
            _say(stream, f"TensorFlow not capped: its GPUs were already initialised ({err})")
        return None
    return MemoryCap("tensorflow", 0, limit * _MIB, share.partition_id)


def apply_memory_cap(
    env: Optional[Mapping[str, str]] = None,
    *,
    frameworks: Optional[Sequence[str]] = None,
    stream: Optional[IO[str]] = None,
) -> List[MemoryCap]:
    """Cap the ML frameworks' GPU allocators to the job's fractional partition.

    Safe to call anywhere and more than once: outside a fractional GPU job it
    does nothing and imports nothing; a framework without a usable GPU is
    skipped silently; a framework that fails is reported on ``stream`` and
    skipped, never raised (the job runs on, with MPS as its limit on NVIDIA).
    Each cap applied prints one line on ``stream``.

    Args:
        env: The job's environment (default ``os.environ``).
        frameworks: Which frameworks to cap (names from :data:`FRAMEWORKS`);
            default: every installed one.
        stream: Where the one-line reports go (default ``sys.stderr``).

    Returns:
        The caps applied, in :data:`FRAMEWORKS` order.

    Raises:
        ValueError: ``frameworks`` names an unknown framework.
    """
    out = stream if stream is not None else sys.stderr
    wanted = tuple(frameworks) if frameworks is not None else None
    if wanted is not None:
        unknown = [name for name in wanted if name not in _MODULES]
        if unknown:
            raise ValueError(f"frameworks: unknown framework {unknown[0]!r}, expected one of {', '.join(FRAMEWORKS)}")
    share = share_from_env(os.environ if env is None else env)
    if share is None:
        return []
    caps: List[MemoryCap] = []
    for name in installed_frameworks():
        if wanted is not None and name not in wanted:
            continue
        try:
            cap = _cap_torch(share) if name == "pytorch" else _cap_tensorflow(share, out)
        except Exception as err:  # noqa: BLE001 - a broken framework install must not fail the job
            _say(out, f"{_NAMES[name]} not capped: {type(err).__name__}: {err}")
            continue
        if cap is not None:
            _say(out, cap.describe())
            caps.append(cap)
    return caps
