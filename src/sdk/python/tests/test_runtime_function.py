"""``python3 -m cumulus.runtime --function`` as a real process against a real
in-process Runtime server: payload in, result or error out, exit codes.

Every test runs twice: in one process (``CUMULUS_LOG_STREAM`` unset) and as
the orchestrator runs it (``CUMULUS_LOG_STREAM=1``: a parent doing the gRPC, a
child running the function, its output over StreamLogs). The streamed run's
``stdout``/``stderr`` are what reached the log stream plus what the process
itself printed, so both modes answer to the same assertions."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from bundle_helpers import runtime_env, tar_gz
from cumulus import runtime
from cumulus._call import CALL_PATH, MODULES_DIR, CallEnvelope, pickle_call, python_version
from cumulus._outcome import KIND_ERROR, KIND_VALUE, decode_error, decode_value
from runtime_server import LogServer, RuntimeServer

THIS_MODULE = sys.modules[__name__]


def payload(fn: Any, *args: Any, **kwargs: Any) -> bytes:
    """The envelope the client sends for an inline call (this module pickled by value)."""
    call = pickle_call(fn, args, kwargs, by_value=[THIS_MODULE])
    return CallEnvelope(call=call, bundle=False, python=python_version()).to_bytes()


@pytest.fixture(params=["unstreamed", "streamed"])
def server(request: pytest.FixtureRequest, server: RuntimeServer) -> RuntimeServer:
    """conftest's server; in the streamed run it also serves StreamLogs."""
    if request.param == "streamed":
        server.logs = LogServer()
    return server


def streamed_text(logs: LogServer, stream: int) -> str:
    return "".join(line.decode() + "\n" for s, line in logs.lines if s == stream)


def run_function(server: RuntimeServer, workdir: Path, *extra: str, **env: str) -> subprocess.CompletedProcess:
    """Runs the runtime, streamed when ``server`` serves StreamLogs (see the module docstring)."""
    logs = server.logs
    if logs is not None:
        env.setdefault("CUMULUS_LOG_STREAM", "1")
    proc = subprocess.run(
        [sys.executable, "-m", "cumulus.runtime", "--function", *extra],
        env=runtime_env(server, workdir, **env),  # type: ignore[arg-type]
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    if logs is not None:
        assert proc.stdout == "", "printed lines went around the log stream"
        proc.stdout = streamed_text(logs, 0) + proc.stdout
        proc.stderr = streamed_text(logs, 1) + proc.stderr
        assert server.health_checks == 0  # the first call waits for the connection itself
    return proc


# The functions below run in the runtime process. No asserts in them: pytest
# rewrites asserts into calls to its own module.


def add_and_print(a: int, b: int, *, scale: int = 1) -> int:
    print(f"adding {a} and {b}")
    return (a + b) * scale


def raise_value_error(what: str) -> None:
    helper_that_raises(what)


def helper_that_raises(what: str) -> None:
    raise ValueError(f"bad {what}")


def exit_with(code: Any) -> None:
    print("leaving")
    sys.exit(code)


def return_a_lock() -> Any:
    return threading.Lock()


def big_result(n: int) -> bytes:
    return b"r" * n


def test_returned_value_is_reported_and_exit_is_0(server: RuntimeServer, tmp_path: Path) -> None:
    server.function = payload(add_and_print, 2, 3, scale=10)
    proc = run_function(server, tmp_path / "w")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "adding 2 and 3\n"
    assert proc.stderr == ""
    assert server.calls == ["FetchFunction", "ReportResult"]  # no bundle to fetch
    [(kind, data)] = server.results
    assert kind == KIND_VALUE and decode_value(data) == 50


def test_raised_exception_is_reported_with_its_traceback_and_exit_is_1(server: RuntimeServer, tmp_path: Path) -> None:
    server.function = payload(raise_value_error, "input")
    proc = run_function(server, tmp_path / "w")
    assert proc.returncode == runtime.EXIT_FUNCTION_RAISED
    assert proc.stderr == "cumulus-runtime: the function raised ValueError: bad input\n"
    [(kind, data)] = server.results
    assert kind == KIND_ERROR
    err = decode_error(data, "job-1")
    assert type(err) is ValueError
    message = str(err)
    assert message.startswith("bad input\n\nRemote traceback (job job-1):\nTraceback (most recent call last):\n")
    assert "in raise_value_error" in message and "in helper_that_raises" in message
    # The runtime's own frames are not the user's business.
    assert "cumulus/runtime_function.py" not in message and "cumulus/_function_child.py" not in message


@pytest.mark.parametrize("code, expected", [(3, 3), (0, 0), (None, 0), ("fatal: no data", 1)])
def test_sys_exit_ends_the_job_without_a_result(server: RuntimeServer, tmp_path: Path, code: Any, expected: int) -> None:
    server.function = payload(exit_with, code)
    proc = run_function(server, tmp_path / "w")
    assert proc.returncode == expected
    assert proc.stdout == "leaving\n"
    assert server.results == []
    if isinstance(code, str):
        assert proc.stderr == f"{code}\n"


def test_unpicklable_return_value_reports_a_type_error_and_exits_70(server: RuntimeServer, tmp_path: Path) -> None:
    server.function = payload(return_a_lock)
    proc = run_function(server, tmp_path / "w")
    assert proc.returncode == runtime.EXIT_SOFTWARE
    [(kind, data)] = server.results
    err = decode_error(data, "job-1")
    assert isinstance(err, TypeError)
    assert "the function returned a _thread.lock, which cannot be pickled" in str(err)


def test_result_refused_as_too_large_exits_74(server: RuntimeServer, tmp_path: Path) -> None:
    server.function = payload(big_result, 200_000)
    server.max_result_bytes = 100_000
    proc = run_function(server, tmp_path / "w")
    assert proc.returncode == runtime.EXIT_RESULT_REFUSED, proc.stderr
    assert proc.stderr.startswith("cumulus-runtime: error: the orchestrator refused the result: result of ")
    assert server.results == []


def test_bundle_with_local_modules_files_and_the_call(server: RuntimeServer, tmp_path: Path) -> None:
    """A large call travels in the bundle, next to shipped modules and files."""

    def uses_shipped_module() -> Any:
        import os

        import shipped_pkg.util  # only in the bundle's module dir

        return shipped_pkg.util.VALUE, open("data/input.txt").read(), os.getcwd()

    call = pickle_call(uses_shipped_module, (), {}, by_value=[THIS_MODULE])
    server.function = CallEnvelope(call=None, bundle=True, python=python_version()).to_bytes()
    server.bundle = tar_gz({
        CALL_PATH: call,
        f"{MODULES_DIR}/shipped_pkg/__init__.py": b"",
        f"{MODULES_DIR}/shipped_pkg/util.py": b"VALUE = 41 + 1\n",
        "data/input.txt": b"file content",
    })
    work = tmp_path / "w"
    proc = run_function(server, work)
    assert proc.returncode == 0, proc.stderr
    assert server.calls == ["FetchFunction", "FetchBundle", "ReportResult"]
    assert decode_value(server.results[0][1]) == (42, "file content", str(work))


def test_function_that_cannot_be_loaded_reports_the_import_error_and_exits_65(
    server: RuntimeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The function's module exists here but not where the runtime runs."""
    (tmp_path / "only_here_mod.py").write_text("def f():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import only_here_mod  # type: ignore[import-not-found]

    server.function = CallEnvelope(call=pickle_call(only_here_mod.f, (), {}), bundle=False).to_bytes()
    proc = run_function(server, tmp_path / "w")
    assert proc.returncode == runtime.EXIT_BAD_BUNDLE
    assert "cannot load the function: ModuleNotFoundError: No module named 'only_here_mod'" in proc.stderr
    err = decode_error(server.results[0][1], "job-1")
    assert isinstance(err, ModuleNotFoundError)


def test_garbage_payload_exits_65_without_a_result(server: RuntimeServer, tmp_path: Path) -> None:
    server.function = b"definitely not a pickle"
    proc = run_function(server, tmp_path / "w")
    assert proc.returncode == runtime.EXIT_BAD_BUNDLE
    assert proc.stderr.startswith("cumulus-runtime: error: spec.function is not a pickle")
    assert server.results == []


def test_bare_cloudpickled_call_tuple_is_accepted(server: RuntimeServer, tmp_path: Path) -> None:
    """What the proto comment describes: spec.function = cloudpickle((fn, args, kwargs))."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(THIS_MODULE)
    try:
        server.function = cloudpickle.dumps((add_and_print, (1, 1), {}))
    finally:
        cloudpickle.unregister_pickle_by_value(THIS_MODULE)
    proc = run_function(server, tmp_path / "w")
    assert proc.returncode == 0, proc.stderr
    assert decode_value(server.results[0][1]) == 2


def test_python_version_mismatch_warns_and_runs(server: RuntimeServer, tmp_path: Path) -> None:
    call = pickle_call(add_and_print, (1, 2), {}, by_value=[THIS_MODULE])
    server.function = CallEnvelope(call=call, bundle=False, python="3.4.0").to_bytes()
    proc = run_function(server, tmp_path / "w")
    assert proc.returncode == 0
    assert "warning: the function was pickled by Python 3.4.0" in proc.stderr


def test_function_mode_takes_no_arguments(server: RuntimeServer, tmp_path: Path) -> None:
    proc = run_function(server, tmp_path / "w", "extra")
    assert proc.returncode == runtime.EXIT_USAGE
    assert "--function takes no arguments" in proc.stderr
    assert server.calls == []


def test_bad_token_exits_77(server: RuntimeServer, tmp_path: Path) -> None:
    server.function = payload(add_and_print, 1, 2)
    proc = run_function(server, tmp_path / "w", CUMULUS_JOB_TOKEN="wrong")
    assert proc.returncode == runtime.EXIT_BAD_TOKEN
    assert server.results == []


def test_error_payload_survives_an_exception_that_does_not_pickle(server: RuntimeServer, tmp_path: Path) -> None:
    def raise_with_lock() -> None:
        err = RuntimeError("holding a lock")
        err.lock = threading.Lock()  # type: ignore[attr-defined]
        raise err

    server.function = payload(raise_with_lock)
    proc = run_function(server, tmp_path / "w")
    assert proc.returncode == 1
    info = pickle.loads(server.results[0][1])
    assert info["exception"] is None and info["type"] == "builtins.RuntimeError"
    err = decode_error(server.results[0][1], "job-1")
    assert type(err).__name__ == "RemoteError"
    assert "builtins.RuntimeError: holding a lock" in str(err) and "in raise_with_lock" in str(err)


def test_log_stream_refused_falls_back_to_the_container_log(server: RuntimeServer, tmp_path: Path) -> None:
    """CUMULUS_LOG_STREAM=1 against a server without StreamLogs: nothing printed is lost."""
    server.logs = None
    server.function = payload(add_and_print, 4, 5)
    proc = run_function(server, tmp_path / "w", CUMULUS_LOG_STREAM="1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "adding 4 and 5\n"
    assert "writing output to the container log" in proc.stderr
    assert decode_value(server.results[0][1]) == 9
