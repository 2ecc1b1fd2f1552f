"""NumPy arrays as ``.npy`` files (no pickle), loaded in place when shapes match."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from cumulus.checkpoint.adapters.base import Adapter, EntryWriter, loaded, require

__all__ = ["NumpyAdapter", "write_npy"]


def write_npy(np: Any, arr: Any, out: Any) -> None:
    """Write ``arr`` in the ``.npy`` format, its data straight from the array's memory."""
    fmt = np.lib.format
    if not (arr.flags.c_contiguous or arr.flags.f_contiguous):
        arr = np.ascontiguousarray(arr)
    header = fmt.header_data_from_array_1_0(arr)
    try:
        fmt.write_array_header_1_0(out, header)
    except ValueError:  # header over 64 KiB (huge structured dtypes)
        fmt.write_array_header_2_0(out, header)
    data = arr if arr.flags.c_contiguous else arr.T  # Fortran order: header says so
    if data.size:
        out.write(memoryview(data.reshape(-1).view(np.uint8)))


class NumpyAdapter(Adapter):
    """Plain ``numpy.ndarray`` (not object arrays, not subclasses: those are pickled)."""

    frameworks = ("numpy.ndarray",)

    def detect(self, obj: Any) -> Optional[str]:
        if not loaded("numpy"):
            return None
        import numpy as np

        if type(obj) is np.ndarray and not obj.dtype.hasobject:
            return "numpy.ndarray"
        return None

    def save(self, obj: Any, framework: str, out: EntryWriter) -> Dict[str, Any]:
        import numpy as np

        with out.open(".npy") as f:
            write_npy(np, obj, f)
        return {}

    def load(
        self,
        key: str,
        framework: str,
        meta: Mapping[str, Any],
        files: Mapping[str, Path],
        target: Any,
    ) -> Any:
        np = require("numpy", key)
        (path,) = files.values()
        value = np.load(path, allow_pickle=False)
        if (
            type(target) is np.ndarray
            and target.shape == value.shape
            and target.dtype == value.dtype
            and target.flags.writeable
        ):
            target[...] = value
            return target
        return value
