"""Stream a job's stdout/stderr to the orchestrator over gRPC.

Docker's log pipeline delivers a few MB/s; ``Runtime.StreamLogs`` carries the
same lines an order of magnitude faster. :class:`LogStreamer` points file
descriptors 1 and 2 at pipes (so the user's command, its children and C
extensions are all captured), reads whole lines, numbers them per attempt and
sends them in batches. The orchestrator stores each line once and acks; lines
are kept until acked, so after a reconnect the streamer resends from the last
ack. When the orchestrator cannot take them (stale attempt, bad token, or no
answer within ``give_up_after``) the remaining lines go to the original
stdout/stderr, where Docker's log still picks them up: nothing is lost.

Reading stops (the pipe fills, the writer blocks) when ``max_pending`` lines
are waiting for an ack, so a job printing faster than the network can carry
slows down instead of filling memory.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable, List, Optional, Tuple

import grpc

from cumulus._proto import cumulus_pb2 as pb2

__all__ = ["LogStreamer", "STREAM_METHOD"]

#: Full method name of the streaming RPC.
STREAM_METHOD = "/cumulus.v1.Runtime/StreamLogs"

_READ_BYTES = 256 * 1024
_MAX_LINE = 64 * 1024
_BATCH_BYTES = 512 * 1024
_BATCH_LINES = 4096
_FLUSH_SECONDS = 0.02

Line = Tuple[int, str, int]  # (stream enum value, text, time_ms)


class LogStreamer:
    """Captures fds 1 and 2 and streams their lines; see the module doc."""

    def __init__(
        self,
        channel: grpc.Channel,
        job_id: str,
        attempt: int,
        token: str,
        *,
        max_pending: int = 200_000,
        give_up_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._call_factory = channel.stream_stream(
            STREAM_METHOD,
            request_serializer=pb2.LogBatch.SerializeToString,
            response_deserializer=pb2.LogAck.FromString,
        )
        self._job_id = job_id
        self._attempt = attempt
        self._metadata = (("x-cumulus-job-token", token),)
        self._max_pending = max_pending
        self._give_up_after = give_up_after
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: List[Line] = []  # lines from index self._base on
        self._base = 0  # index of _pending[0]
        self._sent = 0  # next index to send on the current call
        self._readers_done = 0
        self._closing = False
        self._fallback = False
        self._saved: List[int] = []
        self._threads: List[threading.Thread] = []
        self.error: Optional[str] = None

    # -- capture ---------------------------------------------------------------
    def start(self) -> "LogStreamer":
        """Redirects fds 1 and 2 into pipes and starts the reader and sender threads."""
        for fd, stream in ((1, pb2.STDOUT), (2, pb2.STDERR)):
            r, w = os.pipe()
            self._saved.append(os.dup(fd))
            os.dup2(w, fd)
            os.close(w)
            t = threading.Thread(target=self._read, args=(r, stream), daemon=True)
            t.start()
            self._threads.append(t)
        sender = threading.Thread(target=self._send_loop, daemon=True)
        sender.start()
        self._sender = sender
        return self

    def _read(self, fd: int, stream: int) -> None:
        carry = b""
        try:
            while True:
                chunk = os.read(fd, _READ_BYTES)
                if not chunk:
                    break
                data = carry + chunk
                parts = data.split(b"\n")
                carry = parts.pop()
                while len(carry) > _MAX_LINE:
                    parts.append(carry[:_MAX_LINE])
                    carry = carry[_MAX_LINE:]
                if parts:
                    self._add(stream, parts)
            if carry:
                self._add(stream, [carry])
        finally:
            os.close(fd)
            with self._cond:
                self._readers_done += 1
                self._cond.notify_all()

    def _add(self, stream: int, raw: List[bytes]) -> None:
        now = int(time.time() * 1000)
        lines = [(stream, b.decode("utf-8", "replace"), now) for b in raw]
        with self._cond:
            while (
                len(self._pending) >= self._max_pending
                and not self._fallback
                and not self._closing
            ):
                self._cond.wait(0.5)
            if self._fallback:
                self._write_original(lines)
                return
            self._pending.extend(lines)
            self._cond.notify_all()

    # -- sending ---------------------------------------------------------------
    def _batches(self):  # type: ignore[no-untyped-def]
        """Request iterator of one call: batches from self._sent on."""
        while True:
            with self._cond:
                while True:
                    end = self._base + len(self._pending)
                    if self._fallback:
                        return
                    if self._sent < end:
                        break
                    if self._readers_done == 2:
                        return
                    self._cond.wait(_FLUSH_SECONDS)
                start = self._sent - self._base
                batch: List[Line] = []
                size = 0
                for line in self._pending[start:start + _BATCH_LINES]:
                    batch.append(line)
                    size += len(line[1]) + 16
                    if size >= _BATCH_BYTES:
                        break
                first = self._sent
                self._sent += len(batch)
            yield pb2.LogBatch(
                job_id=self._job_id,
                attempt=self._attempt,
                first_index=first,
                texts=[t for _, t, _ in batch],
                streams=bytes(s for s, _, _ in batch),
                time_ms=batch[-1][2],
            )

    def _ack(self, accepted: int) -> None:
        with self._cond:
            drop = accepted - self._base
            if drop > 0:
                del self._pending[:drop]
                self._base = accepted
                self._cond.notify_all()

    def _send_loop(self) -> None:
        failing_since: Optional[float] = None
        backoff = 0.1
        while True:
            with self._cond:
                self._sent = self._base  # resend whatever was not acked
                if self._fallback:
                    return
                if self._readers_done == 2 and not self._pending:
                    return
            try:
                for ack in self._call_factory(self._batches(), metadata=self._metadata):
                    self._ack(int(ack.accepted))
                    failing_since = None
                    backoff = 0.1
                with self._cond:
                    if self._readers_done == 2 and not self._pending:
                        return
            except grpc.RpcError as err:
                code = err.code() if hasattr(err, "code") else None
                if code in (
                    grpc.StatusCode.UNAUTHENTICATED,
                    grpc.StatusCode.FAILED_PRECONDITION,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.UNIMPLEMENTED,
                ):
                    self._give_up(f"log stream refused: {err.details()}")
                    return
                now = self._clock()
                failing_since = failing_since or now
                if now - failing_since > self._give_up_after:
                    self._give_up(f"orchestrator unreachable for {self._give_up_after:.0f} s")
                    return
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    def _give_up(self, why: str) -> None:
        with self._cond:
            self.error = why
            self._fallback = True
            lines, self._pending = self._pending, []
            self._base += len(lines)
            self._write_original(
                [(pb2.STDERR, f"cumulus.runtime: {why}; writing output to the container log", 0)]
                + lines
            )
            self._cond.notify_all()

    def _write_original(self, lines: List[Line]) -> None:
        for stream, text, _ in lines:
            fd = self._saved[0] if stream == pb2.STDOUT else self._saved[1]
            data = (text + "\n").encode("utf-8", "replace")
            while data:
                n = os.write(fd, data)
                data = data[n:]

    # -- shutdown --------------------------------------------------------------
    def close(self, timeout: float = 30.0) -> bool:
        """Restores fds 1 and 2, sends every remaining line and waits for its ack.

        Returns True when everything was stored by the orchestrator (False when
        it fell back to the container log or ran out of time).
        """
        for fd in (1, 2):
            try:
                os.fsync(fd)
            except OSError:
                pass
        os.dup2(self._saved[0], 1)  # closes our write ends of the pipes
        os.dup2(self._saved[1], 2)
        for t in self._threads:
            t.join(timeout)
        self._sender.join(timeout)
        with self._cond:
            self._closing = True
            done = not self._pending and not self._fallback
            if self._pending and not self._fallback:
                self._fallback = True
                lines, self._pending = self._pending, []
                self._write_original(lines)
            self._cond.notify_all()
        return done


def _ignore_signal(signum: int, frame: object) -> None:
    """SIGTERM reaches the whole process group (tini -g): the command gets it
    and ends; the runtime stays to send its last lines. (A handler, not
    SIG_IGN, so the command does not inherit the ignored disposition.)"""


def run_streamed(argv: List[str], channel: grpc.Channel, job_id: str, attempt: int, token: str) -> int:
    """Runs ``argv`` with its output streamed; returns its exit status as a
    shell would (128 + N when killed by signal N). Raises FileNotFoundError or
    PermissionError when ``argv[0]`` cannot be started."""
    import signal
    import subprocess

    streamer = LogStreamer(channel, job_id, attempt, token).start()
    previous = signal.signal(signal.SIGTERM, _ignore_signal)
    try:
        try:
            proc = subprocess.Popen(argv)
        except (FileNotFoundError, PermissionError):
            streamer.close(timeout=10)
            raise
        code = proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    streamer.close(timeout=30)
    return code if code >= 0 else 128 - code
