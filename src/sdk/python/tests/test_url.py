"""Orchestrator address parsing: the same rules as the TypeScript SDK."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cumulus._url import (
    Endpoint,
    default_ca_pem,
    default_orchestrator_url,
    is_loopback,
    is_tls_url,
    parse_orchestrator_endpoint,
    parse_orchestrator_url,
)
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


@pytest.mark.parametrize(
    "given, target, host, tls",
    [
        ("grpc://h:1", "h:1", "h", False),
        ("h:1", "h:1", "h", False),
        ("grpcs://h:7000", "h:7000", "h", True),
        ("GRPCS://h", "h:50051", "h", True),
        ("https://cumulus.example", "cumulus.example:443", "cumulus.example", True),
        ("https://cumulus.example:8443/", "cumulus.example:8443", "cumulus.example", True),
        ("grpcs://[::1]:9", "[::1]:9", "[::1]", True),
    ],
)
def test_endpoint_scheme_sets_tls(given: str, target: str, host: str, tls: bool) -> None:
    assert parse_orchestrator_endpoint(given) == Endpoint(target, host, tls)
    assert is_tls_url(given) is tls


def test_ca_pem_from_environment(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nfile\n")
    assert default_ca_pem({"CUMULUS_CONFIG_DIR": str(tmp_path)}) is None
    assert default_ca_pem({"CUMULUS_CA_FILE": str(ca)}) == ca.read_bytes()
    # The PEM the orchestrator hands its jobs wins over a file.
    assert default_ca_pem({"CUMULUS_CA_PEM": "pem", "CUMULUS_CA_FILE": str(ca)}) == b"pem"
    with pytest.raises(OSError):
        default_ca_pem({"CUMULUS_CA_FILE": str(tmp_path / "missing.pem")})


def test_cumulus_up_record_gives_the_default_url_and_ca(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"up-ca")
    env = {"CUMULUS_CONFIG_DIR": str(tmp_path)}
    assert default_orchestrator_url(env) == "127.0.0.1:50051"
    (tmp_path / "up.json").write_text(json.dumps({"url": "grpcs://127.0.0.1:5", "caFile": str(ca)}))
    assert default_orchestrator_url(env) == "grpcs://127.0.0.1:5"
    assert default_ca_pem(env) == b"up-ca"
    # The environment wins; a record whose CA file is gone counts as none.
    assert default_orchestrator_url({**env, "CUMULUS_ORCHESTRATOR_URL": "h:1"}) == "h:1"
    ca.unlink()
    assert default_orchestrator_url(env) == "127.0.0.1:50051"


def test_runtime_and_reporter_dial_tls_for_grpcs_with_the_job_ca() -> None:
    from cumulus.checkpoint.report import CheckpointReporter
    from cumulus.runtime import RuntimeConfig

    env = {
        "CUMULUS_ORCHESTRATOR_URL": "grpcs://10.0.0.5:50051",
        "CUMULUS_JOB_ID": "j-1",
        "CUMULUS_JOB_TOKEN": "t",
        "CUMULUS_CA_PEM": "the-ca",
    }
    config = RuntimeConfig.from_env(env)
    assert (config.target, config.tls, config.ca_pem) == ("10.0.0.5:50051", True, b"the-ca")
    reporter = CheckpointReporter.from_env(env)
    assert reporter is not None and reporter.target == "10.0.0.5:50051" and reporter.tls
    plain = RuntimeConfig.from_env({**env, "CUMULUS_ORCHESTRATOR_URL": "127.0.0.1:1"})
    assert (plain.tls, plain.ca_pem) == (False, None)
