"""The Python size grammar and formatter against the table the TypeScript twin uses."""

import json
from pathlib import Path

import pytest

from cumulus._bytes import format_bytes, parse_bytes

_CASES = json.loads((Path(__file__).resolve().parents[4] / "tests" / "fixtures" / "bytes_cases.json").read_text())


@pytest.mark.parametrize("text,want", _CASES["parse"])
def test_parse_bytes(text, want):
    assert parse_bytes(text) == want


@pytest.mark.parametrize("text,want", _CASES["parseRequireUnit"])
def test_parse_bytes_require_unit(text, want):
    assert parse_bytes(text, require_unit=True) == want


@pytest.mark.parametrize("n,want", _CASES["format"])
def test_format_bytes(n, want):
    text = format_bytes(n)
    assert text == want
    back = parse_bytes(text)
    assert back is not None and abs(back - n) <= 0.05 * n
