"""Random number generator states, so that a resumed run is bit-reproducible.

Save ``rng_state()`` with the rest of the state and call
:func:`set_rng_state` after a restore: the run then draws the same numbers
(data shuffling, dropout masks, augmentations) as one never interrupted.
Covered: Python's ``random``, NumPy's global generator, and PyTorch's CPU
and CUDA generators -- each only when its module is already imported.
Explicit generator objects (``numpy.random.Generator``, ``torch.Generator``)
are saved by putting them in the state themselves.
"""

from __future__ import annotations

import random
import sys
from typing import Any, Dict, Mapping

__all__ = ["rng_state", "set_rng_state"]


def rng_state() -> Dict[str, Any]:
    """The global RNG states of Python, NumPy and PyTorch (those imported)."""
    state: Dict[str, Any] = {"python": random.getstate()}
    if "numpy" in sys.modules:
        import numpy as np

        state["numpy"] = np.random.get_state()
    if "torch" in sys.modules:
        import torch

        state["torch"] = torch.get_rng_state()
        # Only when CUDA is already in use: querying it would initialise it.
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore states made by :func:`rng_state`."""
    if "python" in state:
        random.setstate(_tuples(state["python"]))
    if "numpy" in state:
        import numpy as np

        np.random.set_state(state["numpy"])
    if "torch" in state:
        import torch

        torch.set_rng_state(state["torch"].cpu() if hasattr(state["torch"], "cpu") else state["torch"])
        cuda = state.get("torch_cuda")
        if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


def _tuples(value: Any) -> Any:
    """``random.setstate`` needs tuples; a state that went through JSON-ish paths has lists."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, tuple):
        return tuple(_tuples(v) for v in value)
    return value
