"""The checkpoint manifest: which files make a step, their sizes and sha256.

A step directory (L1 ``<dir>/<step:012d>/``, L2 ``<prefix>/<job>/<step:012d>/``)
counts only when its ``manifest.json`` parses and every file it lists is
present with exactly the recorded size and sha256. The manifest is written
last in both tiers, so a torn write or a partial upload never counts.

Each manifest is signed: ``signature`` is HMAC-SHA256, under the job's
checkpoint key (handed out by the orchestrator, :mod:`.keys`), of the
canonical JSON of every other field (step, job, entries with their
frameworks and metadata, each file's name, size and sha256). A reader with
the key refuses a manifest whose signature does not verify, and one made
before signing existed (format 1), so no entry is ever loaded -- unpickled,
for some -- unless the job's key vouched for it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import operator
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from cumulus.checkpoint.errors import (
    BadSignatureError,
    CheckpointConfigError,
    CorruptCheckpointError,
    UnsignedCheckpointError,
)

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "MAX_STEP",
    "FileRecord",
    "Entry",
    "Manifest",
    "step_name",
    "parse_step_name",
    "check_step",
]

#: Version of the manifest layout; a reader refuses newer ones (2: signed).
FORMAT_VERSION = 2
#: The unsigned layout of checkpoints made before signing (parsed, never trusted).
_UNSIGNED_FORMAT = 1
#: File name of the manifest inside a step directory.
MANIFEST_NAME = "manifest.json"
#: Largest step that fits the 12-digit directory name.
MAX_STEP = 10**12 - 1

_STEP_NAME = re.compile(r"^[0-9]{12}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check_step(step: Any) -> int:
    """``step`` as an int in ``[0, MAX_STEP]``; raises :class:`CheckpointConfigError`."""
    if isinstance(step, bool):
        raise CheckpointConfigError("step: must be an integer, got bool")
    if not isinstance(step, int):
        try:
            step = operator.index(step)  # numpy integers, 0-dim int tensors
        except TypeError:
            raise CheckpointConfigError(f"step: must be an integer, got {type(step).__name__}") from None
    if not 0 <= step <= MAX_STEP:
        raise CheckpointConfigError(f"step: must be in [0, {MAX_STEP}], got {step}")
    return int(step)


def step_name(step: int) -> str:
    """The directory (and S3 key segment) of ``step``: 12 digits, zero-padded."""
    return f"{check_step(step):012d}"


def parse_step_name(name: str) -> Optional[int]:
    """The step of a directory name made by :func:`step_name`, else ``None``."""
    return int(name) if _STEP_NAME.match(name) else None


@dataclass(frozen=True)
class FileRecord:
    """One file of a step: its name inside the step directory, size and sha256 (hex)."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Entry:
    """One key of the saved ``state``: the adapter (``framework``) and its files."""

    key: str
    framework: str
    files: Tuple[str, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """The contents of ``manifest.json``."""

    step: int
    entries: Tuple[Entry, ...]
    files: Tuple[FileRecord, ...]
    job_id: str = ""
    attempt: int = 1
    created_unix: float = field(default_factory=time.time)
    #: HMAC-SHA256 (hex) of the other fields under the job's key; "" = unsigned.
    signature: str = ""
    format: int = FORMAT_VERSION

    @property
    def created(self) -> str:
        """Creation time, ISO 8601 UTC."""
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created_unix))

    @property
    def total_bytes(self) -> int:
        """Sum of the file sizes."""
        return sum(f.size for f in self.files)

    def file(self, name: str) -> FileRecord:
        """The record of file ``name``; raises :class:`KeyError`."""
        for record in self.files:
            if record.name == name:
                return record
        raise KeyError(name)

    def _doc(self) -> Dict[str, Any]:
        return {
            "format": self.format,
            "step": self.step,
            "created": self.created,
            "created_unix": self.created_unix,
            "job_id": self.job_id,
            "attempt": self.attempt,
            "entries": [
                {"key": e.key, "framework": e.framework, "files": list(e.files), "meta": dict(e.meta)}
                for e in self.entries
            ],
            "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in self.files],
        }

    def signed(self, key: bytes) -> "Manifest":
        """This manifest (in the current format) with its signature under ``key``."""
        unsigned = replace(self, format=FORMAT_VERSION, signature="")
        return replace(unsigned, signature=_sign(key, unsigned._doc()))

    def to_json(self) -> bytes:
        """Canonical JSON bytes (sorted keys, UTF-8), the signature included when set."""
        doc = self._doc()
        if self.signature:
            doc["signature"] = self.signature
        return json.dumps(doc, sort_keys=True, indent=1).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, key: Optional[bytes] = None) -> "Manifest":
        """Parse and validate; with ``key``, also verify the signature.

        Raises :class:`CorruptCheckpointError` on any defect; its subclasses
        :class:`UnsignedCheckpointError` (no signature: made before signing)
        and :class:`BadSignatureError` (not signed with ``key``: forged,
        altered, or another job's).
        """
        try:
            doc = json.loads(data.decode("utf-8"))
            if not isinstance(doc, dict):
                raise CorruptCheckpointError("bad manifest: not a JSON object")
            if key is not None:
                _verify(key, doc)
            return cls._from_doc(doc)
        except CorruptCheckpointError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise CorruptCheckpointError(f"bad manifest: {err}") from None

    @classmethod
    def _from_doc(cls, doc: Dict[str, Any]) -> "Manifest":
        if doc.get("format") not in (FORMAT_VERSION, _UNSIGNED_FORMAT):
            raise CorruptCheckpointError(f"bad manifest: unknown format {doc.get('format')!r}")
        files = tuple(_file_record(f) for f in doc["files"])
        names = [f.name for f in files]
        if len(set(names)) != len(names):
            raise CorruptCheckpointError("bad manifest: a file is listed twice")
        entries = tuple(_entry(e, set(names)) for e in doc["entries"])
        return cls(
            step=check_step(doc["step"]),
            entries=entries,
            files=files,
            job_id=str(doc.get("job_id", "")),
            attempt=int(doc.get("attempt", 1)),
            created_unix=float(doc["created_unix"]),
            signature=str(doc.get("signature", "")),
            format=int(doc["format"]),
        )


def _sign(key: bytes, doc: Mapping[str, Any]) -> str:
    body = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def _verify(key: bytes, doc: Mapping[str, Any]) -> None:
    signature = doc.get("signature")
    if doc.get("format") == _UNSIGNED_FORMAT or not signature:
        raise UnsignedCheckpointError(
            "unsigned manifest (made before checkpoints were signed, or stripped): not loaded; "
            "this job starts from an older signed checkpoint or from scratch"
        )
    rest = {k: v for k, v in doc.items() if k != "signature"}
    if not isinstance(signature, str) or not hmac.compare_digest(signature, _sign(key, rest)):
        raise BadSignatureError("manifest signature does not verify with this job's key (forged or altered): not loaded")


def is_safe_file_name(name: str) -> bool:
    """True for a plain file name that can't escape the step directory."""
    return bool(_FILE_NAME.match(name)) and name != MANIFEST_NAME and ".." not in name


def _file_record(doc: Mapping[str, Any]) -> FileRecord:
    name, size, sha = doc["name"], doc["size"], doc["sha256"]
    # The names come from storage that may have been tampered with: they
    # become paths on restore, so only plain names are accepted.
    if not isinstance(name, str) or not is_safe_file_name(name):
        raise CorruptCheckpointError(f"bad manifest: unsafe file name {name!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise CorruptCheckpointError(f"bad manifest: bad size for {name}")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise CorruptCheckpointError(f"bad manifest: bad sha256 for {name}")
    return FileRecord(name, size, sha)


def _entry(doc: Mapping[str, Any], names: Iterable[str]) -> Entry:
    key, framework, files = doc["key"], doc["framework"], tuple(doc["files"])
    if not isinstance(key, str) or not isinstance(framework, str):
        raise CorruptCheckpointError("bad manifest: entry key and framework must be strings")
    known = set(names)
    for name in files:
        if name not in known:
            raise CorruptCheckpointError(f"bad manifest: entry {key!r} names unlisted file {name!r}")
    meta = doc.get("meta", {})
    if not isinstance(meta, dict):
        raise CorruptCheckpointError(f"bad manifest: meta of {key!r} is not an object")
    return Entry(key=key, framework=framework, files=files, meta=meta)
