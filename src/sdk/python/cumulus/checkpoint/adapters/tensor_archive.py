"""The tensor archive: how PyTorch state is laid out on disk.

Built so that saving costs about one plain write of the tensor bytes, spread
over several cores, and restoring is bit-identical:

``<stem>.tensors``
    a header (magic, skeleton length) and a pickled *skeleton*: the saved
    tree with every dense tensor replaced by a :class:`TensorRef`, a table of
    each tensor's dtype, shape, device and offset in the *data stream*, and
    the list of segments holding that stream.
data stream
    every tensor's raw bytes, 64-byte aligned, one after the other. Up to
    ``shard_bytes`` it follows the skeleton inside ``<stem>.tensors``; beyond,
    it is cut into shard files ``<stem>.t000``, ``<stem>.t001``, ... that are
    written (and hashed) in parallel.

Tensors with no plain byte layout (sparse, quantized, tensor subclasses)
stay inside the pickled skeleton.
"""

from __future__ import annotations

import collections
import os
import pickle
import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

from cumulus.checkpoint.errors import CorruptCheckpointError

__all__ = ["TensorRef", "write_tensor_tree", "read_tensor_tree", "HEADER_SUFFIX", "SHARD_BYTES"]

#: Suffix of the archive's header file.
HEADER_SUFFIX = ".tensors"
#: Size of a shard file (the data stream above it is split into shards).
SHARD_BYTES = 32 * 1024 * 1024
_MAGIC = b"CUMULUS-TENSORS2"
_HEADER = struct.Struct("<16sQ")
_ALIGN = 64
_ZEROS = bytes(_ALIGN)
# Dtypes numpy has (bytes are written through a zero-copy numpy view).
_NUMPY_DTYPES = {
    "float16", "float32", "float64", "int8", "int16", "int32", "int64",
    "uint8", "bool", "complex64", "complex128",
}  # fmt: skip
# Other dtypes (bfloat16, float8, ...) travel as same-sized integers.
_CARRIER = {1: "uint8", 2: "int16", 4: "int32", 8: "int64"}


class TensorRef:
    """Placeholder for tensor number ``index`` of the archive's table."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __reduce__(self) -> Tuple[Any, Tuple[int]]:
        return (TensorRef, (self.index,))


def _pad(n: int) -> int:
    return (-n) % _ALIGN


def _layout(torch: Any, t: Any) -> Optional[Dict[str, Any]]:
    """How ``t``'s bytes are stored, or ``None`` when it must stay pickled."""
    if type(t) not in (torch.Tensor, torch.nn.Parameter) or getattr(t, "is_nested", False):
        return None
    if t.layout != torch.strided or t.is_quantized or t.device.type == "meta":
        return None
    name = str(t.dtype).replace("torch.", "")
    if name in _NUMPY_DTYPES:
        carrier = name
    elif t.element_size() in _CARRIER:
        carrier = _CARRIER[t.element_size()]
    else:
        return None
    return {
        "dtype": name,
        "carrier": carrier,
        "shape": list(t.shape),
        "itemsize": t.element_size(),
        "nbytes": t.numel() * t.element_size(),
        "device": str(t.device),
        "param": isinstance(t, torch.nn.Parameter),
        "requires_grad": bool(t.requires_grad),
    }


def _bytes_of(torch: Any, t: Any, layout: Mapping[str, Any], start: int, end: int) -> memoryview:
    """Bytes ``[start, end)`` of ``t``'s values: a view for contiguous CPU tensors,
    else a host copy of just that slice."""
    flat = t.detach()
    if flat.device.type == "cpu" and flat.is_contiguous() and not flat.is_conj() and not flat.is_neg():
        flat = flat.reshape(-1)
        whole = True
    else:
        flat = flat.reshape(-1)
        whole = False
    size = layout["itemsize"]
    # Segment bounds are 64-byte aligned from the tensor's start, so they
    # never split an element (item sizes divide 64).
    part = flat[start // size : end // size]
    if not whole:
        part = part.to("cpu").resolve_conj().resolve_neg().contiguous()
    if layout["carrier"] != layout["dtype"]:
        part = part.view(getattr(torch, layout["carrier"]))
    return memoryview(part.numpy()).cast("B")


def _pieces(torch: Any, tensors: List[Any], table: List[Dict[str, Any]], start: int, end: int) -> Iterator[memoryview]:
    """The data stream's bytes in ``[start, end)``, tensor by tensor, padding included."""
    pos = start
    for t, layout in zip(tensors, table):
        lo = layout["offset"]
        hi = lo + layout["nbytes"]
        padded = hi + _pad(layout["nbytes"])
        if padded <= pos:
            continue
        if lo >= end:
            break
        if pos < hi:
            a, b = pos - lo, min(hi, end) - lo
            yield _bytes_of(torch, t, layout, a, b)
            pos = lo + b
        if pos < end and pos < padded:
            n = min(padded, end) - pos
            yield memoryview(_ZEROS[:n])
            pos += n


def write_tensor_tree(tree: Any, out: Any, shard_bytes: int = SHARD_BYTES, workers: Optional[int] = None) -> None:
    """Write ``tree`` (a tensor, or dicts/lists/tuples holding tensors) through
    ``out`` (an :class:`~cumulus.checkpoint.adapters.base.EntryWriter`)."""
    import torch

    if shard_bytes % _ALIGN:
        raise ValueError("shard_bytes must be a multiple of 64")
    table: List[Dict[str, Any]] = []
    tensors: List[Any] = []
    seen: Dict[int, int] = {}
    total = 0

    def strip(obj: Any) -> Any:
        nonlocal total
        if isinstance(obj, torch.Tensor):
            # The same tensor object twice (tied weights) is stored once and
            # comes back as one object.
            if id(obj) in seen:
                return TensorRef(seen[id(obj)])
            layout = _layout(torch, obj)
            if layout is None:
                return obj
            layout["offset"] = total
            total += layout["nbytes"] + _pad(layout["nbytes"])
            seen[id(obj)] = len(table)
            table.append(layout)
            tensors.append(obj)
            return TensorRef(len(table) - 1)
        return map_children(obj, strip)

    stripped = strip(tree)
    inline = total <= shard_bytes
    segments = [] if inline else [
        (f".t{k:03d}", k * shard_bytes, min(shard_bytes, total - k * shard_bytes))
        for k in range((total + shard_bytes - 1) // shard_bytes)
    ]  # fmt: skip
    skeleton = pickle.dumps(
        {"tree": stripped, "tensors": table, "total": total, "inline": inline, "segments": segments},
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    with out.open(HEADER_SUFFIX) as head:
        head.write(_HEADER.pack(_MAGIC, len(skeleton)))
        head.write(skeleton)
        head.write(_ZEROS[: _pad(_HEADER.size + len(skeleton))])
        if inline:
            for piece in _pieces(torch, tensors, table, 0, total):
                head.write(piece)
    if inline:
        return
    shard_files = [out.open(suffix) for suffix, _, _ in segments]

    def write_shard(k: int) -> None:
        _, start, length = segments[k]
        for piece in _pieces(torch, tensors, table, start, start + length):
            shard_files[k].write(piece)
        # Closing here syncs this shard while the other threads still write,
        # so the disk's writeback overlaps the writing instead of following it.
        shard_files[k].close()

    # Shards are independent: writing and hashing them on several threads
    # uses several cores (file writes and hashlib release the GIL), and with
    # more threads than cores one shard's sync overlaps the others' writes.
    # 32 MiB shards x 4 threads measured 0.86 of a raw write + fsync on a
    # 2-core machine, vs 0.72 with 64 MiB x 2 (docs/BENCHMARKS.md).
    if workers is None and hasattr(out, "defer"):
        # The shared pool, and no waiting here: the step's next entry (an
        # optimizer after its model) starts while these shards still write.
        out.defer([_shard_pool().submit(write_shard, k) for k in range(len(segments))])
        return
    with ThreadPoolExecutor(max_workers=workers or 4, thread_name_prefix="cumulus-ckpt-shard") as pool:
        for future in [pool.submit(write_shard, k) for k in range(len(segments))]:
            future.result()


_POOL: Optional[ThreadPoolExecutor] = None
_POOL_LOCK = threading.Lock()


def _shard_pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cumulus-ckpt-shard")
        return _POOL


def read_tensor_tree(files: Mapping[str, Path], map_device: Callable[[str], str]) -> Any:
    """Read an archive; ``files`` maps file names to paths (the header ends with
    :data:`HEADER_SUFFIX`); tensors land on ``map_device(saved_device)``."""
    import numpy as np
    import torch

    head_name = next((n for n in files if n.endswith(HEADER_SUFFIX)), None)
    if head_name is None:
        raise CorruptCheckpointError("tensor archive without its header file")
    stem = head_name[: -len(HEADER_SUFFIX)]
    head_path = files[head_name]
    with open(head_path, "rb", buffering=0) as f:
        raw_head = f.read(_HEADER.size)
        if len(raw_head) != _HEADER.size:
            raise CorruptCheckpointError(f"{head_name}: truncated header")
        magic, length = _HEADER.unpack(raw_head)
        if magic != _MAGIC:
            raise CorruptCheckpointError(f"{head_name}: not a Cumulus tensor archive")
        skeleton = pickle.loads(f.read(length))
    data_start = _HEADER.size + length + _pad(_HEADER.size + length)
    if skeleton["inline"]:
        segments = [(head_path, data_start, 0, skeleton["total"])]
    else:
        segments = []
        for suffix, start, size in skeleton["segments"]:
            path = files.get(stem + suffix)
            if path is None:
                raise CorruptCheckpointError(f"tensor archive {head_name}: shard {stem + suffix} missing")
            segments.append((path, 0, start, size))
    made: List[Any] = []
    with _FileCache() as cache:
        for layout in skeleton["tensors"]:
            raw = np.empty(layout["nbytes"], dtype=np.uint8)
            _read_range(cache, segments, layout["offset"], raw.data)
            t = torch.from_numpy(raw.view(np.dtype(layout["carrier"])))
            if layout["dtype"] != layout["carrier"]:
                t = t.view(getattr(torch, layout["dtype"]))
            t = t.reshape(layout["shape"])
            device = map_device(layout["device"])
            if device != "cpu":
                t = t.to(device)
            if layout["param"]:
                t = torch.nn.Parameter(t, requires_grad=layout["requires_grad"])
            elif layout["requires_grad"]:
                t.requires_grad_(True)
            made.append(t)

    def fill(obj: Any) -> Any:
        if isinstance(obj, TensorRef):
            return made[obj.index]
        if isinstance(obj, torch.Tensor):
            return obj
        return map_children(obj, fill)

    return fill(skeleton["tree"])


class _FileCache:
    """Open files by path, closed together."""

    def __init__(self) -> None:
        self._fds: Dict[Path, int] = {}

    def fd(self, path: Path) -> int:
        if path not in self._fds:
            self._fds[path] = os.open(path, os.O_RDONLY)
        return self._fds[path]

    def __enter__(self) -> "_FileCache":
        return self

    def __exit__(self, *_: Any) -> None:
        for fd in self._fds.values():
            os.close(fd)


def _read_range(cache: _FileCache, segments: List[Tuple[Path, int, int, int]], start: int, dest: memoryview) -> None:
    """Fill ``dest`` with the data stream's bytes from ``start`` on."""
    pos, end = start, start + len(dest)
    for path, file_offset, seg_start, seg_len in segments:
        seg_end = seg_start + seg_len
        if seg_end <= pos or seg_start >= end:
            continue
        n = min(end, seg_end) - pos
        got = os.preadv(cache.fd(path), [dest[pos - start : pos - start + n]], file_offset + pos - seg_start)
        if got != n:
            raise CorruptCheckpointError(f"{path.name}: truncated tensor data")
        pos += n
        if pos >= end:
            return
    if pos < end:
        raise CorruptCheckpointError("tensor archive: data stream shorter than its table")


def map_children(obj: Any, fn: Callable[[Any], Any]) -> Any:
    """``obj`` with ``fn`` applied to the items of dicts, lists and tuples; other objects as is."""
    t = type(obj)
    if t is dict or t is collections.OrderedDict:
        new = t((k, fn(v)) for k, v in obj.items())
        # Module.state_dict() keeps per-module versions in ``_metadata``;
        # load_state_dict reads them back.
        if hasattr(obj, "_metadata"):
            new._metadata = obj._metadata
        return new
    if t is list:
        return [fn(v) for v in obj]
    if t is tuple:
        return tuple(fn(v) for v in obj)
    if isinstance(obj, tuple) and hasattr(t, "_fields"):  # namedtuple
        return t(*(fn(v) for v in obj))
    return obj
