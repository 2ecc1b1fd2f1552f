"""Orchestrator address parsing: the same rules as the TypeScript SDK."""

from __future__ import annotations

import pytest

from cumulus._url import default_orchestrator_url, is_loopback, parse_orchestrator_url
from cumulus.errors import InvalidUrlError


@pytest.mark.parametrize(
    "given, target",
    [
        ("localhost:50051", "localhost:50051"),
        ("127.0.0.1:7000", "127.0.0.1:7000"),
        ("grpc://10.0.0.5:7000", "10.0.0.5:7000"),
        ("GRPC://gpu-box:1/", "gpu-box:1"),
        ("gpu-box", "gpu-box:50051"),
        ("  gpu-box:42  ", "gpu-box:42"),
        ("[::1]:9000", "[::1]:9000"),
        ("[::1]", "[::1]:50051"),
    ],
)
def test_valid_addresses(given: str, target: str) -> None:
    assert parse_orchestrator_url(given) == target


@pytest.mark.parametrize(
    "given, why",
    [
        ("", "empty"),
        ("http://host:1", "unsupported scheme http://"),
        ("host:1/path", "expected host:port"),
        ("user@host:1", "expected host:port"),
        ("host:0", "invalid port '0'"),
        ("host:65536", "invalid port '65536'"),
        ("host:abc", "invalid port 'abc'"),
        ("::1", "put IPv6 addresses in brackets"),
        ("[::1", "unterminated IPv6 address"),
        (":50051", "missing host"),
        ("bad host:1", "invalid host 'bad host'"),
    ],
)
def test_invalid_addresses_name_the_problem(given: str, why: str) -> None:
    with pytest.raises(InvalidUrlError, match=why) as info:
        parse_orchestrator_url(given)
    assert isinstance(info.value, ValueError)


def test_default_comes_from_the_environment() -> None:
    assert default_orchestrator_url({}) == "127.0.0.1:50051"
    assert default_orchestrator_url({"CUMULUS_ORCHESTRATOR_URL": " "}) == "127.0.0.1:50051"
    assert default_orchestrator_url({"CUMULUS_ORCHESTRATOR_URL": "box:1"}) == "box:1"


@pytest.mark.parametrize("target, expected", [("localhost:1", True), ("127.0.0.9:1", True), ("[::1]:1", True), ("gpu:1", False)])
def test_loopback_detection(target: str, expected: bool) -> None:
    assert is_loopback(target) is expected
