"""Any other picklable Python value: numbers, dicts, RNG states, custom objects."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from cumulus.checkpoint.adapters.base import Adapter, EntryWriter

__all__ = ["PickleAdapter"]


class PickleAdapter(Adapter):
    """The fallback: ``pickle`` with the highest protocol. Loading replaces the value."""

    frameworks = ("pickle",)

    def detect(self, obj: Any) -> Optional[str]:
        return "pickle"

    def save(self, obj: Any, framework: str, out: EntryWriter) -> Dict[str, Any]:
        with out.open(".pkl") as f:
            pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
        return {}

    def load(
        self,
        key: str,
        framework: str,
        meta: Mapping[str, Any],
        files: Mapping[str, Path],
        target: Any,
    ) -> Any:
        (path,) = files.values()
        with open(path, "rb") as f:
            return pickle.load(f)
