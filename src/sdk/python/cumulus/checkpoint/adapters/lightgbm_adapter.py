"""LightGBM ``Booster`` as LightGBM's text model (``model_to_string``).

LightGBM is not installable on the development machine; this adapter follows
LightGBM's documented API (``Booster.model_to_string(num_iteration=-1)`` keeps
every iteration; ``Booster(model_str=...)`` and ``Booster.model_from_string``
load it) and its test runs wherever ``lightgbm`` imports. sklearn-style
LightGBM models (``LGBMClassifier``, ...) go through the scikit-learn adapter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from cumulus.checkpoint.adapters.base import Adapter, EntryWriter, loaded, require

__all__ = ["LightGBMAdapter"]


class LightGBMAdapter(Adapter):
    """``lightgbm.Booster``."""

    frameworks = ("lightgbm.booster",)

    def detect(self, obj: Any) -> Optional[str]:
        if not loaded("lightgbm"):
            return None
        import lightgbm

        return "lightgbm.booster" if isinstance(obj, lightgbm.Booster) else None

    def save(self, obj: Any, framework: str, out: EntryWriter) -> Dict[str, Any]:
        import lightgbm

        text = obj.model_to_string(num_iteration=-1)
        with out.open(".lgb.txt") as f:
            f.write(text.encode("utf-8"))
        return {"lightgbm_version": lightgbm.__version__}

    def load(
        self,
        key: str,
        framework: str,
        meta: Mapping[str, Any],
        files: Mapping[str, Path],
        target: Any,
    ) -> Any:
        lightgbm = require("lightgbm", key)
        (path,) = files.values()
        text = path.read_text(encoding="utf-8")
        if isinstance(target, lightgbm.Booster):
            target.model_from_string(text)
            return target
        return lightgbm.Booster(model_str=text)
