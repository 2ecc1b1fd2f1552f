"""The job runtime's messages of ``cumulus.v1.Runtime``, encoded by hand.

The runtime's start-up is on the critical path of every function job, and
importing the generated protobuf module (``cumulus._proto``) costs it ~13 ms
in the job image, more than encoding its five small messages itself. Only
what the runtime sends and reads is here: FetchBundle/FetchFunction
requests, BundleChunk, ReportResult's stream, LogBatch and LogAck. Each is
checked byte for byte against the generated code by tests/test_runtime_wire.py;
a field added to one of them in proto/cumulus.proto goes here too.

Proto3 rules followed: fields in number order, a field at its default value
(0, empty, false) left out, unknown fields of a reply skipped.
"""

from __future__ import annotations

from typing import Iterator, Tuple

__all__ = [
    "STDOUT",
    "STDERR",
    "encode_job_request",
    "encode_result_header",
    "encode_result_chunk",
    "encode_log_batch",
    "decode_bundle_chunk",
    "decode_log_ack",
    "WireError",
]

#: ``LogStream`` values.
STDOUT = 0
STDERR = 1

_VARINT = 0
_FIXED64 = 1
_LEN = 2
_FIXED32 = 5


class WireError(ValueError):
    """A reply that is not a well-formed message."""


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # negative int32/int64: ten bytes, two's complement
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3 | _VARINT) + _varint(value) if value else b""


def _len_field(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | _LEN) + _varint(len(value)) + value if value else b""


def encode_job_request(job_id: str) -> bytes:
    """``FetchBundleRequest`` or ``FetchFunctionRequest`` (the same one field)."""
    return _len_field(1, job_id.encode())


def encode_result_header(job_id: str, kind: str, total_bytes: int) -> bytes:
    """``ReportResultRequest`` carrying its ``header`` (sent first)."""
    header = _len_field(1, job_id.encode()) + _len_field(2, kind.encode()) + _int_field(3, total_bytes)
    # A set oneof member is sent even when empty.
    return _varint(1 << 3 | _LEN) + _varint(len(header)) + header


def encode_result_chunk(chunk: bytes) -> bytes:
    """``ReportResultRequest`` carrying a ``chunk`` of the result."""
    return _varint(2 << 3 | _LEN) + _varint(len(chunk)) + chunk


def encode_log_batch(
    job_id: str,
    attempt: int,
    first_index: int,
    *,
    data: bytes = b"",
    streams: bytes = b"",
    time_ms: int = 0,
    last: bool = False,
    exit_code: int = 0,
) -> bytes:
    """``LogBatch`` (never ``texts``: this runtime sends ``data``)."""
    return b"".join((
        _len_field(1, job_id.encode()),
        _int_field(2, attempt),
        _int_field(3, first_index),
        _len_field(5, streams),
        _int_field(6, time_ms),
        _len_field(7, data),
        _int_field(8, 1 if last else 0),
        _int_field(9, exit_code),
    ))


def _read_varint(buf: bytes, pos: int) -> Tuple[int, int]:
    n = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise WireError("truncated or overlong varint")
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[Tuple[int, object]]:
    """(field number, int or bytes) of each field; fixed-size ones skipped."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, kind = key >> 3, key & 7
        if kind == _VARINT:
            value, pos = _read_varint(buf, pos)
            yield number, value
        elif kind == _LEN:
            size, pos = _read_varint(buf, pos)
            if pos + size > len(buf):
                raise WireError("truncated field")
            yield number, buf[pos:pos + size]
            pos += size
        elif kind in (_FIXED64, _FIXED32):
            pos += 8 if kind == _FIXED64 else 4
        else:
            raise WireError(f"unsupported wire type {kind}")
    if pos != len(buf):
        raise WireError("truncated field")


def decode_bundle_chunk(buf: bytes) -> Tuple[bytes, int]:
    """``BundleChunk``: (data, total_bytes)."""
    data, total = b"", 0
    for number, value in _fields(buf):
        if number == 1 and isinstance(value, bytes):
            data = value
        elif number == 2 and isinstance(value, int):
            total = value
    return data, total


def decode_log_ack(buf: bytes) -> int:
    """``LogAck``: accepted."""
    accepted = 0
    for number, value in _fields(buf):
        if number == 1 and isinstance(value, int):
            accepted = value
    return accepted
