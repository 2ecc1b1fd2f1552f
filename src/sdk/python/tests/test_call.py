"""The call payload: envelope encoding, pickling with a named culprit, by-value modules."""

from __future__ import annotations

import functools
import pickle
import sys
import threading
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from cumulus._call import (
    CALL_PATH,
    INLINE_CALL_LIMIT,
    CallEnvelope,
    PayloadError,
    defining_module,
    pickle_call,
    split_call,
)
from cumulus.errors import NotPicklableError


def test_envelope_round_trip() -> None:
    env = CallEnvelope(call=b"abc", bundle=True, python="3.11.2")
    assert CallEnvelope.from_bytes(env.to_bytes()) == env


def test_envelope_is_plain_data() -> None:
    """Reading it must not need cloudpickle or any user code."""
    data = pickle.loads(CallEnvelope(call=None, bundle=True).to_bytes())
    assert data == {"format": "cumulus.call/1", "call": None, "bundle": True, "python": ""}


def test_bare_call_tuple_is_an_inline_call() -> None:
    raw = cloudpickle.dumps((len, ("abc",), {}))
    assert CallEnvelope.from_bytes(raw) == CallEnvelope(call=raw, bundle=False)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"not a pickle", "not a pickle"),
        (pickle.dumps([1, 2]), "holds a list"),
        (pickle.dumps({"format": "cumulus.call/1", "call": None, "bundle": False}), "neither an inline call nor a bundle"),
        (pickle.dumps({"format": "cumulus.call/1", "call": "str", "bundle": False}), "'call' is not bytes"),
    ],
)
def test_bad_payloads_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        CallEnvelope.from_bytes(data)


def test_pickled_call_loads_back() -> None:
    k = 3
    fn, args, kwargs = pickle.loads(pickle_call(lambda a, b=0: a * k + b, (2,), {"b": 1}))
    assert fn(*args, **kwargs) == 7


@pytest.mark.parametrize(
    "build, what",
    [
        (lambda lock: ((lambda: lock.locked()), (), {}), "the function"),
        (lambda lock: ((lambda x: x), (1, lock), {}), "argument 1"),
        (lambda lock: ((lambda **kw: kw), (), {"guard": lock}), "keyword argument 'guard'"),
    ],
    ids=["function", "argument", "keyword"],
)
def test_unpicklable_part_is_named(build: Any, what: str) -> None:
    fn, args, kwargs = build(threading.Lock())
    with pytest.raises(NotPicklableError) as info:
        pickle_call(fn, args, kwargs)
    assert info.value.what == what
    assert str(info.value).startswith(f"cannot send the job: {what} (")
    assert "cannot pickle '_thread.lock' object" in str(info.value)
    assert isinstance(info.value, TypeError)


def test_by_value_registration_is_undone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "byval_mod.py").write_text("def f():\n    return 'by value'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import byval_mod  # type: ignore[import-not-found]

    data = pickle_call(byval_mod.f, (), {}, by_value=[byval_mod])
    assert "byval_mod" not in cloudpickle.list_registry_pickle_by_value()
    # By value: it loads without the module being importable.
    del sys.modules["byval_mod"]
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    fn, _, _ = pickle.loads(data)
    assert fn() == "by value"
    # By reference (not registered) it needs the module.
    sys.modules["byval_mod"] = byval_mod
    by_ref = pickle_call(byval_mod.f, (), {})
    del sys.modules["byval_mod"]
    with pytest.raises(ModuleNotFoundError):
        pickle.loads(by_ref)


def test_a_module_the_user_registered_stays_registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "user_reg_mod.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import user_reg_mod  # type: ignore[import-not-found]

    cloudpickle.register_pickle_by_value(user_reg_mod)
    try:
        pickle_call(len, (), {}, by_value=[user_reg_mod])
        assert "user_reg_mod" in cloudpickle.list_registry_pickle_by_value()
    finally:
        cloudpickle.unregister_pickle_by_value(user_reg_mod)


class _Callable:
    def __call__(self) -> int:
        return 1

    def method(self) -> int:
        return 2


def _plain() -> None:
    pass


@pytest.mark.parametrize(
    "fn, module",
    [
        (_plain, __name__),
        (functools.partial(functools.partial(_plain)), __name__),
        (_Callable(), __name__),
        (_Callable().method, __name__),
        (len, "builtins"),
        (pickle.dumps, "_pickle"),
    ],
)
def test_defining_module(fn: Any, module: str) -> None:
    assert defining_module(fn) == module


def test_small_calls_are_inline_large_ones_go_to_the_bundle() -> None:
    small = b"s" * INLINE_CALL_LIMIT
    assert split_call(small) == (small, {})
    big = small + b"!"
    assert split_call(big) == (None, {CALL_PATH: big})
