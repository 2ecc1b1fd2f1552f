"""XGBoost: ``Booster`` and the scikit-learn style models (``XGBClassifier``, ...).

Saved in XGBoost's own UBJSON model format (``save_raw("ubj")`` /
``save_model``), the format XGBoost documents as stable across versions, and
loaded with ``load_model``: in place into a booster or model given in
``into``, else into a new object of the saved class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from cumulus.checkpoint.adapters.base import Adapter, EntryWriter, class_path, loaded, require
from cumulus.checkpoint.errors import CorruptCheckpointError

__all__ = ["XGBoostAdapter"]


class XGBoostAdapter(Adapter):
    """``xgboost.Booster`` and fitted ``xgboost.XGBModel`` subclasses.

    An unfitted sklearn-style model has no booster to save; it falls through
    to the scikit-learn adapter (pickle).
    """

    frameworks = ("xgboost.booster", "xgboost.sklearn")

    def detect(self, obj: Any) -> Optional[str]:
        if not loaded("xgboost"):
            return None
        import xgboost

        if isinstance(obj, xgboost.Booster):
            return "xgboost.booster"
        if isinstance(obj, xgboost.XGBModel) and getattr(obj, "_Booster", None) is not None:
            return "xgboost.sklearn"
        return None

    def save(self, obj: Any, framework: str, out: EntryWriter) -> Dict[str, Any]:
        import xgboost

        meta: Dict[str, Any] = {"xgboost_version": xgboost.__version__}
        if framework == "xgboost.booster":
            with out.open(".ubj") as f:
                f.write(obj.save_raw(raw_format="ubj"))
            return meta
        # The sklearn wrapper adds its own attributes to the booster's model
        # file, which only its save_model writes.
        obj.save_model(str(out.path(".ubj")))
        module, name = class_path(obj)
        meta.update(module=module, name=name)
        return meta

    def load(
        self,
        key: str,
        framework: str,
        meta: Mapping[str, Any],
        files: Mapping[str, Path],
        target: Any,
    ) -> Any:
        xgboost = require("xgboost", key)
        (path,) = files.values()
        if framework == "xgboost.booster":
            booster = target if isinstance(target, xgboost.Booster) else xgboost.Booster()
            booster.load_model(str(path))
            return booster
        if isinstance(target, xgboost.XGBModel):
            target.load_model(str(path))
            return target
        module, name = str(meta.get("module", "")), str(meta.get("name", ""))
        # The class comes from the manifest: only XGBoost's own classes are built.
        if not (module == "xgboost" or module.startswith("xgboost.")) or not name.isidentifier():
            raise CorruptCheckpointError(f"entry {key!r}: not an XGBoost model class: {module}.{name}")
        cls = getattr(require(module, key), name, None)
        if cls is None or not issubclass(cls, xgboost.XGBModel):
            raise CorruptCheckpointError(f"entry {key!r}: not an XGBoost model class: {module}.{name}")
        model = cls()
        model.load_model(str(path))
        return model
