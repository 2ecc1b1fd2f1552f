"""The committed generated protobuf code matches proto/cumulus.proto."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from bundle_helpers import REPO_ROOT
from cumulus._proto import cumulus_pb2 as pb2
from cumulus.runtime import FETCH_BUNDLE_METHOD


@pytest.mark.skipif(shutil.which("protoc") is None, reason="protoc (Debian protobuf-compiler) not installed")
def test_generated_code_is_up_to_date() -> None:
    proc = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts/gen-python-proto.sh"), "--check"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_runtime_service_has_fetch_bundle_with_the_runtime_method_path() -> None:
    service = pb2.DESCRIPTOR.services_by_name["Runtime"]
    method = service.methods_by_name["FetchBundle"]
    assert f"/{service.full_name}/{method.name}" == FETCH_BUNDLE_METHOD
    assert method.server_streaming and not method.client_streaming
    assert method.output_type.full_name == "cumulus.v1.BundleChunk"


def test_importing_the_package_has_no_side_effects() -> None:
    proc = subprocess.run(
        ["python3", "-c", "import sys, cumulus; print(sorted(m for m in sys.modules if m.startswith(('grpc', 'cumulus'))))"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
        cwd=str(REPO_ROOT / "src/sdk/python"), env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['cumulus']"


def test_runtime_service_has_fetch_function_and_report_result() -> None:
    from cumulus.runtime import FETCH_FUNCTION_METHOD, REPORT_RESULT_METHOD

    service = pb2.DESCRIPTOR.services_by_name["Runtime"]
    fetch = service.methods_by_name["FetchFunction"]
    assert f"/{service.full_name}/{fetch.name}" == FETCH_FUNCTION_METHOD
    assert fetch.server_streaming and fetch.output_type.full_name == "cumulus.v1.BundleChunk"
    report = service.methods_by_name["ReportResult"]
    assert f"/{service.full_name}/{report.name}" == REPORT_RESULT_METHOD
    assert report.client_streaming and not report.server_streaming
