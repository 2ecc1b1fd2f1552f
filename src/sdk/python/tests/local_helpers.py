"""A plain local module the end-to-end tests' functions use remotely.

It is not installed in the job image: the SDK ships it in the job's bundle.
It must not import pytest (the image has none).
"""

from __future__ import annotations

from typing import List


class Point:
    """A class defined only here: instances must come back as this very class."""

    def __init__(self, x: float, y: float) -> None:
        self.x = x
        self.y = y

    def norm2(self) -> float:
        """Squared length."""
        return self.x * self.x + self.y * self.y


def scale(values: List[float], factor: float) -> List[float]:
    """Each value times ``factor``."""
    return [v * factor for v in values]


class HelperError(Exception):
    """An exception type from a local module."""
