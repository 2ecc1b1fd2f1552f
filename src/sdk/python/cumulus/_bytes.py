"""Byte sizes as people write them ("512K", "100MiB", "1.5GB", "20G") and back.

The Python twin of src/sdk/bytes.ts (which src/core/bytes.ts re-exports): one
grammar and one formatter for the CLI, the orchestrator, the agent and both
SDKs. Both pass the same table of cases (tests/fixtures/bytes_cases.json).
"""

import math
import re
from typing import Optional

# One letter (K, M, G, T, as Docker's --memory reads them), Ki… and KiB… are
# binary; KB… decimal.
_UNIT_BYTES = {
    "": 1,
    "b": 1,
    "k": 1024,
    "ki": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mi": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gi": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
    "t": 1024**4,
    "ti": 1024**4,
    "tib": 1024**4,
    "tb": 1000**4,
}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$")
_MAX_SAFE = 2**53 - 1  # the TypeScript side's Number.MAX_SAFE_INTEGER
_FORMAT_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def parse_bytes(text: str, require_unit: bool = False) -> Optional[int]:
    """Parse a size into whole bytes, or None if it is not one.

    A number (digits, optionally a decimal fraction) and an optional unit,
    case-insensitive, spaces allowed around and between. ``require_unit``
    refuses a bare number (where one means something else, such as whole
    GPUs). Zero parses; callers that need a positive size check it.

    >>> parse_bytes("100M")
    104857600
    """
    m = _SIZE.match(text.strip())
    if not m:
        return None
    unit = _UNIT_BYTES.get(m.group(2).lower())
    if unit is None or (require_unit and m.group(2) == ""):
        return None
    # Round half away from zero, as JavaScript's Math.round does for positives.
    value = math.floor(float(m.group(1)) * unit + 0.5)
    return value if value <= _MAX_SAFE else None


def format_bytes(n: int) -> str:
    """Format a byte count for people with binary units, e.g. ``1.5 KiB``.

    Whole bytes below 1 KiB, one decimal below 100 of a unit, whole units from
    100; the same text as formatBytes in src/sdk/bytes.ts.
    """
    if n < 1024:
        return f"{n} B"
    unit = 0
    value = float(n)
    while value >= 1024 and unit < len(_FORMAT_UNITS) - 1:
        value /= 1024
        unit += 1
    text = _fixed(value, 0 if value >= 99.95 else 1)
    if float(text) >= 1024 and unit < len(_FORMAT_UNITS) - 1:
        unit += 1
        text = _fixed(value / 1024, 1)
    return f"{text} {_FORMAT_UNITS[unit]}"


def _fixed(value: float, digits: int) -> str:
    # Python's format rounds half to even; JavaScript's toFixed rounds the
    # exact binary value half up. Decimal-exact halves are rare in byte counts
    # over 1024, but round them the JavaScript way so both twins agree.
    scaled = value * 10**digits
    rounded = math.floor(scaled + 0.5)
    return f"{rounded / 10**digits:.{digits}f}"
