"""Framework adapters and the detection order.

The first adapter whose :meth:`~base.Adapter.detect` claims a value saves it:
PyTorch, TensorFlow/Keras, XGBoost, LightGBM, scikit-learn, NumPy, and pickle
last. XGBoost comes before scikit-learn because its models are also sklearn
estimators but have a better, versioned format.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

from cumulus.checkpoint.adapters.base import Adapter, EntryWriter, stem_for
from cumulus.checkpoint.adapters.keras_adapter import KerasAdapter
from cumulus.checkpoint.adapters.lightgbm_adapter import LightGBMAdapter
from cumulus.checkpoint.adapters.numpy_adapter import NumpyAdapter
from cumulus.checkpoint.adapters.pickle_adapter import PickleAdapter
from cumulus.checkpoint.adapters.sklearn_adapter import SklearnAdapter
from cumulus.checkpoint.adapters.torch_adapter import TorchAdapter
from cumulus.checkpoint.adapters.xgboost_adapter import XGBoostAdapter
from cumulus.checkpoint.errors import CorruptCheckpointError

__all__ = ["Adapter", "EntryWriter", "ADAPTERS", "detect", "adapter_for", "stem_for"]

#: Every adapter, in detection order.
ADAPTERS: Tuple[Adapter, ...] = (
    TorchAdapter(),
    KerasAdapter(),
    XGBoostAdapter(),
    LightGBMAdapter(),
    SklearnAdapter(),
    NumpyAdapter(),
    PickleAdapter(),
)

_BY_FRAMEWORK: Dict[str, Adapter] = {name: a for a in ADAPTERS for name in a.frameworks}


def detect(obj: Any) -> Tuple[Adapter, str]:
    """The adapter that saves ``obj`` and the framework name it records."""
    for adapter in ADAPTERS:
        framework = adapter.detect(obj)
        if framework is not None:
            return adapter, framework
    raise AssertionError("the pickle adapter claims everything")


def adapter_for(framework: str) -> Adapter:
    """The adapter that loads entries saved as ``framework``."""
    try:
        return _BY_FRAMEWORK[framework]
    except KeyError:
        raise CorruptCheckpointError(f"unknown framework {framework!r} in the manifest") from None
