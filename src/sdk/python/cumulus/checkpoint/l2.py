"""L2: checkpoints in an S3 bucket (AWS or any S3-compatible server).

Layout: ``s3://<bucket>/<prefix>/<job>/<step:012d>/<file>``, the same files
as the L1 step directory. ``manifest.json`` is uploaded after every other
file was uploaded and its size checked, so a step without a manifest is an
unfinished upload and never counts; a step whose files do not match the
manifest's sizes and sha256 when downloaded does not count either.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from cumulus.checkpoint.config import S3Settings
from cumulus.checkpoint.errors import CorruptCheckpointError
from cumulus.checkpoint.fileio import datasync, verify_file
from cumulus.checkpoint.manifest import MANIFEST_NAME, FileRecord, Manifest, parse_step_name, step_name

__all__ = ["S3Store", "make_s3_client", "default_transfer_config", "MULTIPART_CHUNK"]

_log = logging.getLogger("cumulus.checkpoint")

#: Part size of multipart uploads and downloads; files above it go multipart.
MULTIPART_CHUNK = 16 * 1024 * 1024


def make_s3_client(settings: S3Settings, *, keep_channel: bool = False) -> Any:
    """A boto3 S3 client for ``settings`` (path-style addressing for custom endpoints).

    botocore's own retries are kept short: the uploader retries with its
    own backoff, and must notice an outage quickly to report it. With
    ``settings.presign`` (inside a Cumulus job) the client signs nothing:
    each request goes to a URL the orchestrator presigned for it
    (:func:`presign_requests`); ``keep_channel`` keeps one gRPC channel
    open for that (the upload worker process).
    """
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    if settings.presign:
        from cumulus.checkpoint.errors import CheckpointConfigError
        from cumulus.checkpoint.runtime_api import RuntimeApi

        api = RuntimeApi.from_env(keep_channel=keep_channel)
        if api is None:
            raise CheckpointConfigError(
                "CUMULUS_S3_PRESIGN: set, but CUMULUS_ORCHESTRATOR_URL, CUMULUS_JOB_ID or CUMULUS_JOB_TOKEN is not"
            )
        endpoint = settings.endpoint or f"https://s3.{settings.region}.amazonaws.com"
        config = Config(
            region_name=settings.region,
            signature_version=UNSIGNED,
            s3={"addressing_style": "path"},
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=16,
        )
        client = boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)
        client.meta.events.register("before-send.s3", presign_requests(api, settings.bucket))
        return client
    config = Config(
        region_name=settings.region,
        signature_version="s3v4",
        s3={"addressing_style": "path"} if settings.endpoint else {},
        retries={"max_attempts": 2, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=16,
    )
    session = boto3.session.Session(
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        region_name=settings.region,
    )
    return session.client("s3", endpoint_url=settings.endpoint, config=config)


def presign_requests(api: Any, bucket: str) -> Any:
    """A botocore ``before-send`` handler that points each (unsigned, path-style)
    request at a URL ``api`` presigned for it.

    Only ``x-amz-meta-*`` headers are kept, and signed with the URL: a
    presigned request may carry no other unsigned ``x-amz-*`` header.
    """
    from urllib.parse import parse_qsl, unquote, urlsplit

    def handler(request: Any, **_: Any) -> None:
        url = urlsplit(request.url)
        path = unquote(url.path)
        head = f"/{bucket}"
        if path != head and not path.startswith(head + "/"):
            raise ValueError(f"request outside bucket {bucket}: {url.path}")
        key = path[len(head) + 1 :]
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        headers = {}
        for name in list(request.headers.keys()):
            low = name.lower()
            if low.startswith("x-amz-meta-"):
                headers[low] = request.headers[name]
            elif low.startswith("x-amz-") or low == "authorization":
                del request.headers[name]
        (request.url,) = api.presign([(request.method, key, query, headers)])

    return handler


def default_transfer_config() -> Any:
    """Multipart settings for checkpoint files (boto3 ``TransferConfig``)."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=MULTIPART_CHUNK,
        multipart_chunksize=MULTIPART_CHUNK,
        max_concurrency=8,
        use_threads=True,
    )


@dataclass(frozen=True)
class RemoteStep:
    """A step found in the bucket: its objects' names and sizes."""

    step: int
    sizes: Dict[str, int]

    @property
    def has_manifest(self) -> bool:
        """True once the upload finished (the manifest is written last)."""
        return MANIFEST_NAME in self.sizes


class S3Store:
    """The L2 checkpoints of one job. ``client`` is a boto3 S3 client (thread-safe)."""

    def __init__(self, client: Any, bucket: str, prefix: str, job_id: str, transfer: Any = None) -> None:
        self.client = client
        #: The job's checkpoint key: manifests fetched for restore must verify with it.
        self.key_for_restore: Optional[bytes] = None
        self.bucket = bucket
        self.base = f"{prefix.strip('/')}/{job_id}/" if prefix.strip("/") else f"{job_id}/"
        self.transfer = transfer if transfer is not None else default_transfer_config()

    def use_threads(self, enabled: bool) -> None:
        """Switch multipart transfers to (or off) boto3's thread pool."""
        from boto3.s3.transfer import TransferConfig

        self.transfer = TransferConfig(
            multipart_threshold=self.transfer.multipart_threshold,
            multipart_chunksize=self.transfer.multipart_chunksize,
            max_concurrency=self.transfer.max_concurrency,
            use_threads=enabled,
        )

    def key(self, step: int, name: str) -> str:
        """The object key of file ``name`` of ``step``."""
        return f"{self.base}{step_name(step)}/{name}"

    def url(self, step: int) -> str:
        """``s3://`` URL of a step's folder, for messages."""
        return f"s3://{self.bucket}/{self.base}{step_name(step)}/"

    # -- upload ---------------------------------------------------------
    def begin_step(self, step: int) -> None:
        """Remove a manifest left for ``step`` by an earlier attempt, so that its old
        manifest never vouches for a mix of old and new files mid-upload."""
        self.client.delete_object(Bucket=self.bucket, Key=self.key(step, MANIFEST_NAME))

    def upload_file(self, step: int, path: Path, record: FileRecord) -> None:
        """Upload one file (multipart when large; then the stored size is checked)."""
        key = self.key(step, record.name)
        self.client.upload_file(
            str(path),
            self.bucket,
            key,
            ExtraArgs={"Metadata": {"sha256": record.sha256}},
            Config=self.transfer,
        )
        if record.size < self.transfer.multipart_threshold:
            # One PUT of a file read by size: what is stored is what was
            # read. Multipart uploads are assembled by the server: check it.
            return
        head = self.client.head_object(Bucket=self.bucket, Key=key)
        if int(head["ContentLength"]) != record.size:
            raise CorruptCheckpointError(
                f"{key}: stored {head['ContentLength']} bytes, expected {record.size}"
            )

    def put_manifest(self, manifest: Manifest) -> None:
        """Upload the manifest: from now on the step counts."""
        body = manifest.to_json()
        self.client.put_object(
            Bucket=self.bucket,
            Key=self.key(manifest.step, MANIFEST_NAME),
            Body=body,
            ContentType="application/json",
        )

    # -- listing and download -------------------------------------------
    def list_steps(self) -> List[RemoteStep]:
        """Every step folder in the bucket, newest first."""
        found: Dict[int, Dict[str, int]] = {}
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.base):
            for obj in page.get("Contents", []):
                rest = obj["Key"][len(self.base) :]
                folder, _, name = rest.partition("/")
                step = parse_step_name(folder)
                if step is None or not name or "/" in name:
                    continue
                found.setdefault(step, {})[name] = int(obj["Size"])
        return [RemoteStep(s, found[s]) for s in sorted(found, reverse=True)]

    def fetch_manifest(self, step: int) -> Manifest:
        """The manifest of ``step`` (parsed and checked against the step number)."""
        body = self.client.get_object(Bucket=self.bucket, Key=self.key(step, MANIFEST_NAME))["Body"]
        try:
            data = body.read()
        finally:
            body.close()
        manifest = Manifest.from_json(data, self.key_for_restore)
        if manifest.step != step:
            raise CorruptCheckpointError(f"{self.url(step)}: manifest says step {manifest.step}")
        return manifest

    def complete_steps(self, above: int = -1) -> Iterator[Tuple[int, Manifest]]:
        """Steps newer than ``above`` whose manifest lists only objects present with the
        right sizes, newest first. (sha256 is checked by :meth:`download`.)"""
        for remote in self.list_steps():
            if remote.step <= above:
                return
            if not remote.has_manifest:
                continue
            try:
                manifest = self.fetch_manifest(remote.step)
            except CorruptCheckpointError as err:
                _log.warning("cumulus.checkpoint: L2 %s: %s; skipping it", self.url(remote.step), err)
                continue
            missing = [f.name for f in manifest.files if remote.sizes.get(f.name) != f.size]
            if missing:
                _log.warning(
                    "cumulus.checkpoint: L2 %s: %d file(s) missing or of the wrong size (%s); skipping it",
                    self.url(remote.step),
                    len(missing),
                    ", ".join(missing[:3]),
                )
                continue
            yield remote.step, manifest

    def download(self, manifest: Manifest, directory: Path) -> None:
        """Download every file of ``manifest`` into ``directory`` and verify it."""
        for record in manifest.files:
            path = directory / record.name
            self.client.download_file(self.bucket, self.key(manifest.step, record.name), str(path), Config=self.transfer)
            with open(path, "rb+") as f:
                datasync(f.fileno())
            verify_file(path, record)

    # -- pruning --------------------------------------------------------
    def delete_step(self, remote: RemoteStep) -> None:
        """Delete a step: its manifest first, so a half-deleted step never counts."""
        if remote.has_manifest:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(remote.step, MANIFEST_NAME))
        # One DELETE per object: a bulk delete names its keys in the body, which
        # a presigned URL does not bind, so the orchestrator signs none.
        for name in remote.sizes:
            if name != MANIFEST_NAME:
                self.client.delete_object(Bucket=self.bucket, Key=self.key(remote.step, name))

    def prune(self, keep_last: int, current: Optional[int] = None) -> List[int]:
        """Keep the newest ``keep_last`` finished steps; delete older finished steps and
        unfinished ones older than the newest finished one (they can't be in flight:
        the uploader works in step order). ``current`` is never deleted."""
        deleted: List[int] = []
        finished = 0
        newest_finished: Optional[int] = None
        for remote in self.list_steps():
            if remote.has_manifest:
                finished += 1
                if newest_finished is None:
                    newest_finished = remote.step
                if finished <= keep_last or remote.step == current:
                    continue
            elif newest_finished is None or remote.step == current:
                continue
            self.delete_step(remote)
            deleted.append(remote.step)
        return deleted
