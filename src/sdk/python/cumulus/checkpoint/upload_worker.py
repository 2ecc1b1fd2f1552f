"""The L2 upload worker: a child process that talks to S3 for the training process.

Why a process: boto3 runs a lot of Python (signing, parsing, its transfer
threads) for every request. In a thread of the training process that code
holds the GIL and slows the training loop while an upload runs; in a child
process it costs the training nothing but a spare core.

Started by :class:`~cumulus.checkpoint.worker_backend.WorkerBackend` as
``python -m cumulus.checkpoint.upload_worker``. Protocol, JSON lines: the
first line on stdin holds the settings, then each line is a command
(``begin``, ``file``, ``manifest``, ``prune``: the methods of
:class:`~cumulus.checkpoint.l2.S3Store`) answered by one line on stdout,
``{"ok": true}`` or ``{"ok": false, "error": ..., "missing": bool}``. The
worker exits when its stdin closes or its parent dies. Credentials not in
the settings come from the inherited environment, as boto3 reads them; none
is ever printed. Nothing imports this module but ``python -m``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict

from cumulus.checkpoint.config import S3Settings
from cumulus.checkpoint.manifest import FileRecord, Manifest

__all__ = ["main"]

_NICENESS = 10


def _watch_parent(parent: int) -> None:
    # The parent may be SIGKILLed without closing our stdin in time (a
    # multipart upload in progress): don't outlive it by more than a second.
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def _describe(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def main() -> None:
    """Serve commands from stdin until it closes (see the module docstring)."""
    from cumulus.checkpoint.l2 import S3Store, make_s3_client

    # The container's init (tini -g) and a terminal's Ctrl-C signal the whole
    # process group: the training process handles those (final checkpoint,
    # flush) and still needs this worker meanwhile. It ends the worker by
    # closing its stdin, or by dying.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    # Uploads are background work: at a lower priority the scheduler gives
    # the CPU to training first, and does not push other work onto the
    # training's cores to make room for us.
    try:
        os.nice(_NICENESS)
    except OSError:
        pass
    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    hello = json.loads(stdin.readline() or b"{}")
    settings = S3Settings(
        bucket=hello["bucket"],
        region=hello["region"],
        endpoint=hello.get("endpoint"),
        prefix=hello["prefix"],
        access_key_id=hello.get("access_key_id"),
        secret_access_key=hello.get("secret_access_key"),
        presign=bool(hello.get("presign")),
    )
    store = S3Store(make_s3_client(settings, keep_channel=True), settings.bucket, settings.prefix, hello["job_id"])
    for line in stdin:
        command = json.loads(line)
        reply: Dict[str, Any] = {"ok": True}
        try:
            op = command["op"]
            if op == "begin":
                store.begin_step(command["step"])
            elif op == "file":
                record = FileRecord(command["name"], command["size"], command["sha256"])
                store.upload_file(command["step"], Path(command["path"]), record)
            elif op == "manifest":
                store.put_manifest(Manifest.from_json(command["json"].encode("utf-8")))
            elif op == "prune":
                store.prune(command["keep_last"], current=command["current"])
            else:
                raise ValueError(f"unknown op {op!r}")
        except FileNotFoundError as err:
            reply = {"ok": False, "missing": True, "error": _describe(err)}
        except Exception as err:
            reply = {"ok": False, "error": _describe(err)}
        stdout.write(json.dumps(reply).encode() + b"\n")
        stdout.flush()


if __name__ == "__main__":
    main()
