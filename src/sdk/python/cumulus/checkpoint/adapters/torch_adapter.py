"""PyTorch: modules, optimizers, LR schedulers, other stateful objects, tensors.

Modules, optimizers, schedulers and anything of torch with ``state_dict`` /
``load_state_dict`` (e.g. ``GradScaler``) are saved as their ``state_dict()``
and loaded back in place with ``load_state_dict``. Tensors, and dicts, lists
or tuples that contain tensors (a bare ``state_dict()``), are saved as a tree.

The bytes go into a tensor archive (see :mod:`.tensor_archive`): raw tensor
bytes, so a restore is bit-identical, written on several threads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional

from cumulus.checkpoint.adapters.base import Adapter, EntryWriter, loaded, require
from cumulus.checkpoint.adapters.tensor_archive import read_tensor_tree, write_tensor_tree

__all__ = ["TorchAdapter"]


def _holds_tensor(torch: Any, obj: Any, depth: int = 0) -> bool:
    if isinstance(obj, torch.Tensor):
        return True
    if depth > 16:
        return False
    if isinstance(obj, dict):
        return any(_holds_tensor(torch, v, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_holds_tensor(torch, v, depth + 1) for v in obj)
    return False


def _device_mapper(torch: Any) -> Callable[[str], str]:
    """Saved device -> device to load onto: the same GPU when there is one, else CPU."""
    cuda = torch.cuda.is_available()
    count = torch.cuda.device_count() if cuda else 0

    def mapper(saved: str) -> str:
        if not saved.startswith("cuda") or not cuda:
            return "cpu"
        index = int(saved.split(":")[1]) if ":" in saved else 0
        return saved if index < count else "cuda:0"

    return mapper


class TorchAdapter(Adapter):
    """See the module docstring."""

    frameworks = (
        "torch.module",
        "torch.optimizer",
        "torch.lr_scheduler",
        "torch.stateful",
        "torch.generator",
        "torch.tensor",
        "torch.tree",
    )

    def detect(self, obj: Any) -> Optional[str]:
        if not loaded("torch"):
            return None
        import torch

        if isinstance(obj, torch.nn.Module):
            return "torch.module"
        if isinstance(obj, torch.optim.Optimizer):
            return "torch.optimizer"
        if _is_scheduler(torch, obj):
            return "torch.lr_scheduler"
        if isinstance(obj, torch.Generator):
            return "torch.generator"
        if isinstance(obj, torch.Tensor):
            return "torch.tensor"
        if type(obj).__module__.startswith("torch") and callable(getattr(obj, "state_dict", None)):
            if callable(getattr(obj, "load_state_dict", None)):
                return "torch.stateful"
        if isinstance(obj, (dict, list, tuple)) and _holds_tensor(torch, obj):
            return "torch.tree"
        return None

    def save(self, obj: Any, framework: str, out: EntryWriter) -> Dict[str, Any]:
        if framework == "torch.generator":
            tree: Any = obj.get_state()
            meta: Dict[str, Any] = {"device": str(obj.device)}
        elif framework in ("torch.tensor", "torch.tree"):
            tree, meta = obj, {}
        else:
            tree, meta = obj.state_dict(), {}
        write_tensor_tree(tree, out)
        return meta

    def load(
        self,
        key: str,
        framework: str,
        meta: Mapping[str, Any],
        files: Mapping[str, Path],
        target: Any,
    ) -> Any:
        torch = require("torch", key)
        value = read_tensor_tree(files, _device_mapper(torch))
        if framework == "torch.generator":
            gen = target if isinstance(target, torch.Generator) else torch.Generator(device="cpu")
            gen.set_state(value)
            return gen
        if framework == "torch.tensor":
            if isinstance(target, torch.Tensor) and target.shape == value.shape and target.dtype == value.dtype:
                with torch.no_grad():
                    target.copy_(value)
                return target
            return value
        if framework in ("torch.module", "torch.optimizer", "torch.lr_scheduler", "torch.stateful"):
            if target is not None and callable(getattr(target, "load_state_dict", None)):
                target.load_state_dict(value)
                return target
            # No object to load into: the state_dict itself.
            return value
        return value


def _is_scheduler(torch: Any, obj: Any) -> bool:
    sched = torch.optim.lr_scheduler
    bases = tuple(
        b for b in (getattr(sched, n, None) for n in ("LRScheduler", "_LRScheduler", "ReduceLROnPlateau")) if b
    )
    return isinstance(obj, bases)
