"""cumulus._runtime_wire encodes and decodes the runtime's messages exactly as
the generated protobuf code does (the proto file is the contract)."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from cumulus import _runtime_wire as wire
from cumulus._proto import cumulus_pb2 as pb2

BATCHES = [
    {},
    {"job_id": "j-1", "attempt": 1, "first_index": 0, "data": b"a\nb\n", "streams": b"\x00\x01", "time_ms": 1733500000123},
    {"job_id": "j", "attempt": 7, "first_index": 2**40, "time_ms": 1, "last": True, "exit_code": 3},
    {"job_id": "j", "attempt": 1, "first_index": 5, "last": True, "exit_code": 0},
    {"job_id": "ü-ñ", "attempt": 2**32 - 1, "first_index": 1, "last": True, "exit_code": -1},
    {"job_id": "j", "data": b"x" * 300, "streams": b"\x01" * 300},
]


@pytest.mark.parametrize("fields", BATCHES)
def test_log_batch_matches_generated_code(fields: Dict[str, Any]) -> None:
    args = dict(fields)
    job_id, attempt, first = args.pop("job_id", ""), args.pop("attempt", 0), args.pop("first_index", 0)
    assert wire.encode_log_batch(job_id, attempt, first, **args) == pb2.LogBatch(**fields).SerializeToString()


@pytest.mark.parametrize("job_id", ["", "a", "j" * 200])
def test_job_requests_match_generated_code(job_id: str) -> None:
    encoded = wire.encode_job_request(job_id)
    assert encoded == pb2.FetchFunctionRequest(job_id=job_id).SerializeToString()
    assert encoded == pb2.FetchBundleRequest(job_id=job_id).SerializeToString()


@pytest.mark.parametrize("job_id,kind,size", [("", "", 0), ("j", "value", 1), ("job", "error", 2**33)])
def test_result_header_matches_generated_code(job_id: str, kind: str, size: int) -> None:
    header = pb2.ResultHeader(job_id=job_id, kind=kind, total_bytes=size)
    assert wire.encode_result_header(job_id, kind, size) == pb2.ReportResultRequest(header=header).SerializeToString()


@pytest.mark.parametrize("chunk", [b"", b"\x00", b"z" * 70000])
def test_result_chunk_matches_generated_code(chunk: bytes) -> None:
    assert wire.encode_result_chunk(chunk) == pb2.ReportResultRequest(chunk=chunk).SerializeToString()


@pytest.mark.parametrize("data,total", [(b"", 0), (b"abc", 3), (b"q" * 1000, 2**40)])
def test_bundle_chunk_decodes_generated_bytes(data: bytes, total: int) -> None:
    assert wire.decode_bundle_chunk(pb2.BundleChunk(data=data, total_bytes=total).SerializeToString()) == (data, total)


@pytest.mark.parametrize("accepted", [0, 1, 300, 2**50])
def test_log_ack_decodes_generated_bytes(accepted: int) -> None:
    assert wire.decode_log_ack(pb2.LogAck(accepted=accepted).SerializeToString()) == accepted


def test_unknown_fields_of_a_reply_are_skipped() -> None:
    # A newer orchestrator may add fields: varint 3, fixed64 4, bytes 5, fixed32 6.
    extra = b"\x18\x96\x01" + b"\x21" + b"\x00" * 8 + b"\x2a\x02hi" + b"\x35" + b"\x00" * 4
    assert wire.decode_log_ack(extra + pb2.LogAck(accepted=9).SerializeToString()) == 9
    assert wire.decode_bundle_chunk(pb2.BundleChunk(data=b"d").SerializeToString() + extra) == (b"d", 0)


@pytest.mark.parametrize("bad", [b"\x08", b"\x0a\x05ab", b"\x08" + b"\xff" * 11, b"\x0b"])
def test_malformed_replies_raise_wire_error(bad: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode_bundle_chunk(bad)


def test_stream_values_match_the_proto_enum() -> None:
    assert (wire.STDOUT, wire.STDERR) == (pb2.STDOUT, pb2.STDERR)
