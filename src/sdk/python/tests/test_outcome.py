"""Results and exceptions: encoded in the container, rebuilt in the client."""

from __future__ import annotations

import io
import pickle
import sys
from typing import Any

import pytest

from cumulus._outcome import RemoteTraceback, decode_error, decode_value, dump_value, encode_error
from cumulus.errors import RemoteError


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:  # noqa: BLE001
        return caught


def test_value_round_trip() -> None:
    buf = io.BytesIO()
    dump_value({"a": [1, 2.5, None]}, buf)
    assert decode_value(buf.getvalue()) == {"a": [1, 2.5, None]}


def test_plain_exception_gets_the_traceback_in_its_message() -> None:
    err = decode_error(encode_error(_raised(ValueError("bad", 2))), "j-1")
    assert type(err) is ValueError
    assert str(err).startswith("('bad', 2)\n\nRemote traceback (job j-1):\nTraceback (most recent call last):")
    assert err.remote_traceback.endswith("ValueError: ('bad', 2)\n")  # type: ignore[attr-defined]


@pytest.mark.parametrize("exc", [KeyError("k"), FileNotFoundError(2, "No such file", "/x")])
def test_exception_with_its_own_str_keeps_it_and_gets_the_traceback_as_cause(exc: BaseException) -> None:
    err = decode_error(encode_error(_raised(exc)), "j-2")
    assert type(err) is type(exc) and str(err) == str(exc)
    assert isinstance(err.__cause__, RemoteTraceback)
    assert str(err.__cause__).startswith("Remote traceback (job j-2):\nTraceback")
    if sys.version_info >= (3, 11):
        assert "remote exception from job j-2" in err.__notes__[0]


class _NotRebuildable(Exception):
    def __init__(self, a: Any, b: Any) -> None:  # pickles, but cannot be rebuilt from args
        super().__init__(f"{a}/{b}")


def test_exception_that_does_not_round_trip_becomes_remote_error() -> None:
    data = encode_error(_raised(_NotRebuildable(1, 2)))
    assert pickle.loads(data)["exception"] is None
    err = decode_error(data, "j-3")
    assert isinstance(err, RemoteError)
    assert err.type_name.endswith("_NotRebuildable") and err.remote_message == "1/2"
    assert "in _raised" in err.remote_traceback


def test_unknown_type_becomes_remote_error() -> None:
    data = pickle.dumps({
        "format": "cumulus.error/1", "type": "elsewhere.Oops", "message": "m",
        "traceback": "Traceback ...\nelsewhere.Oops: m\n", "exception": b"\x80\x04cnot_a_module\nOops\n.",
    })
    err = decode_error(data, "j-4")
    assert isinstance(err, RemoteError) and err.type_name == "elsewhere.Oops"
    assert str(err).startswith("elsewhere.Oops: m\n\nTraceback ...")


@pytest.mark.parametrize("data", [b"junk", pickle.dumps({"format": "other"})])
def test_undecodable_error_result_is_still_an_error(data: bytes) -> None:
    assert isinstance(decode_error(data, "j-5"), RemoteError)
