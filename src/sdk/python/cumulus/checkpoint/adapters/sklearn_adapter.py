"""scikit-learn estimators (and pipelines, and sklearn-style models of other
libraries that are not handled more specifically), saved with ``joblib``.

joblib is the persistence scikit-learn documents; it stores the numpy arrays
inside an estimator without copying them through pickle. Loading replaces the
object in the returned state (estimators have no in-place load).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from cumulus.checkpoint.adapters.base import Adapter, EntryWriter, class_path, loaded, require

__all__ = ["SklearnAdapter"]


class SklearnAdapter(Adapter):
    """Objects deriving from ``sklearn.base.BaseEstimator``."""

    frameworks = ("sklearn.estimator",)

    def detect(self, obj: Any) -> Optional[str]:
        if not loaded("sklearn"):
            return None
        from sklearn.base import BaseEstimator

        return "sklearn.estimator" if isinstance(obj, BaseEstimator) else None

    def save(self, obj: Any, framework: str, out: EntryWriter) -> Dict[str, Any]:
        import joblib
        import sklearn

        with out.open(".joblib") as f:
            joblib.dump(obj, f)
        module, name = class_path(obj)
        return {"class": f"{module}.{name}", "sklearn_version": sklearn.__version__}

    def load(
        self,
        key: str,
        framework: str,
        meta: Mapping[str, Any],
        files: Mapping[str, Path],
        target: Any,
    ) -> Any:
        require("sklearn", key)
        joblib = require("joblib", key)
        (path,) = files.values()
        return joblib.load(path)
