"""TensorFlow / Keras models in the native Keras format (``model.save("x.keras")``).

TensorFlow is not installable on the development machine; this adapter
follows Keras' documented API (``Model.save`` to a ``.keras`` file,
``keras.models.load_model``, ``get_weights``/``set_weights``; Keras 3, and
``tf.keras`` from TensorFlow 2.13) and its test runs wherever ``tensorflow`` or
``keras`` imports.

Restore returns the loaded model (architecture, weights, compiled optimizer
state). With a model in ``into`` its weights are also set in place, so code
holding that object keeps working. Custom layers must be registered with
``keras.saving.register_keras_serializable`` to load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from cumulus.checkpoint.adapters.base import Adapter, EntryWriter, loaded, require

__all__ = ["KerasAdapter"]

_ROOTS = ("keras", "tf_keras", "tensorflow")


def _keras_module(root: str, key: str) -> Any:
    """The keras API module behind a class from package ``root``."""
    if root == "tensorflow":
        return require("tensorflow", key).keras
    return require(root, key)


class KerasAdapter(Adapter):
    """Any ``keras.Model`` (functional, sequential or subclassed)."""

    frameworks = ("keras.model",)

    def detect(self, obj: Any) -> Optional[str]:
        if not loaded(*_ROOTS):
            return None
        for cls in type(obj).__mro__:
            root = cls.__module__.split(".")[0]
            if cls.__name__ == "Model" and root in _ROOTS:
                return "keras.model"
        return None

    def save(self, obj: Any, framework: str, out: EntryWriter) -> Dict[str, Any]:
        root = next(c.__module__.split(".")[0] for c in type(obj).__mro__ if c.__name__ == "Model")
        obj.save(str(out.path(".keras")))
        return {"root": root}

    def load(
        self,
        key: str,
        framework: str,
        meta: Mapping[str, Any],
        files: Mapping[str, Path],
        target: Any,
    ) -> Any:
        root = str(meta.get("root", "keras"))
        keras = _keras_module(root if root in _ROOTS else "keras", key)
        (path,) = files.values()
        model = keras.models.load_model(str(path))
        if target is not None and callable(getattr(target, "set_weights", None)):
            target.set_weights(model.get_weights())
        return model
