"""Client checks that happen before anything is sent (no orchestrator needed)."""

from __future__ import annotations

import socket
from typing import Any, Dict

import pytest

import cumulus
from cumulus import CumulusClient, InvalidUrlError, OrchestratorUnavailable


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_default_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUMULUS_ORCHESTRATOR_URL", raising=False)
    assert CumulusClient().url == "127.0.0.1:50051"
    monkeypatch.setenv("CUMULUS_ORCHESTRATOR_URL", "grpc://box:7")
    assert CumulusClient().url == "box:7"


def test_bad_url_is_refused_at_construction() -> None:
    with pytest.raises(InvalidUrlError, match="unsupported scheme"):
        CumulusClient("https://box")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"gpu_memory": "half"}, ValueError, "gpu_memory must be a fraction .* or a size like '20GiB'"),
        ({"gpu_memory": "20gb"}, ValueError, "got '20gb'"),
        ({"gpu_memory": [0.5]}, TypeError, "gpu_memory must be a number, got list"),
        ({"duration": True}, TypeError, "duration must be a number, got bool"),
        ({"env": {"A": 1}}, TypeError, "env must map str to str"),
        ({"files": ["no-such-file-here.txt"]}, FileNotFoundError, "no-such-file-here.txt"),
    ],
)
def test_bad_options_fail_before_connecting(kwargs: Dict[str, Any], error: type, message: str) -> None:
    # Nothing listens there: getting as far as connecting would raise OrchestratorUnavailable.
    client = CumulusClient(f"127.0.0.1:{_closed_port()}")
    with pytest.raises(error, match=message):
        client.submit(lambda: 1, **kwargs)


def test_non_callable_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="fn must be callable"):
        CumulusClient(f"127.0.0.1:{_closed_port()}").submit(42)  # type: ignore[arg-type]


def test_lazy_exports() -> None:
    assert cumulus.CumulusClient is CumulusClient
    assert "JobFailed" in dir(cumulus) and "JobFailed" in cumulus.__all__
    with pytest.raises(AttributeError):
        cumulus.NoSuchThing  # noqa: B018


def test_connection_error_is_clear() -> None:
    client = CumulusClient(f"localhost:{_closed_port()}", connect_timeout=2)
    with pytest.raises(OrchestratorUnavailable, match=r"cannot connect to the orchestrator at localhost:\d+"):
        client.job("j-000000000000").status
