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
from typing import Callable, List, Optional

import grpc

from cumulus._pipes import OutputPipes, keep_running, stop_asked
from cumulus._runtime_wire import STDERR, STDOUT, decode_log_ack, encode_log_batch

__all__ = ["LogStreamer", "STREAM_METHOD"]

#: Full method name of the streaming RPC.
STREAM_METHOD = "/cumulus.v1.Runtime/StreamLogs"

_READ_BYTES = 256 * 1024
_MAX_LINE = 64 * 1024
_BATCH_BYTES = 512 * 1024
_FLUSH_SECONDS = 0.02


class _Chunk:
    """Whole lines read at once from one stream: ``data`` ends with a newline."""

    __slots__ = ("first", "stream", "data", "count", "time_ms")

    def __init__(self, first: int, stream: int, data: bytes, count: int, time_ms: int) -> None:
        self.first = first  # index of its first line in the attempt
        self.stream = stream
        self.data = data
        self.count = count
        self.time_ms = time_ms


class LogStreamer:
    """Captures fds 1 and 2 and streams their lines; see the module doc.

    Lines travel as the bytes the command wrote (``LogBatch.data``), kept in
    chunks as read, never one Python object per line: the orchestrator
    checks the UTF-8 and numbers the lines.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        job_id: str,
        attempt: int,
        token: str,
        *,
        max_pending: int = 200_000,
        give_up_after: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Batches are encoded by cumulus._runtime_wire (no protobuf import).
        self._call_factory = channel.stream_stream(STREAM_METHOD, response_deserializer=decode_log_ack)
        self._job_id = job_id
        self._attempt = attempt
        self._metadata = (("x-cumulus-job-token", token),)
        self._max_pending = max_pending
        self._give_up_after = give_up_after
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: List[_Chunk] = []  # lines from index self._base on
        self._base = 0  # index of the first pending line
        self._end = 0  # index after the last pending line
        self._sent = 0  # next index to send on the current call
        self._readers_done = 0
        self._closing = False
        self._fallback = False
        self._exit_code: Optional[int] = None  # announced in the stream's last batch
        self._saved: List[int] = []
        self._threads: List[threading.Thread] = []
        self.error: Optional[str] = None

    # -- capture ---------------------------------------------------------------
    def start(self, pipes: Optional[OutputPipes] = None) -> "LogStreamer":
        """Starts the reader and sender threads on ``pipes`` (fds 1 and 2
        redirected already; new ones when None). The streamer owns the pipes from here on."""
        pipes = pipes or OutputPipes()
        self._saved = pipes.saved
        for r, stream in zip(pipes.read_fds, (STDOUT, STDERR)):
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
                data = carry + chunk if carry else chunk
                cut = data.rfind(b"\n") + 1
                whole, carry = data[:cut], data[cut:]
                if len(carry) > _MAX_LINE:
                    # A line with no end in sight goes out in pieces.
                    pieces = [carry[i:i + _MAX_LINE] for i in range(0, len(carry), _MAX_LINE)]
                    carry = pieces.pop()
                    whole += b"\n".join(pieces) + b"\n"
                if whole:
                    self._add(stream, whole)
            if carry:
                self._add(stream, carry + b"\n")
        finally:
            os.close(fd)
            with self._cond:
                self._readers_done += 1
                self._cond.notify_all()

    def _add(self, stream: int, data: bytes) -> None:
        count = data.count(b"\n")
        now = int(time.time() * 1000)
        with self._cond:
            while (
                self._end - self._base >= self._max_pending
                and not self._fallback
                and not self._closing
            ):
                self._cond.wait(0.5)
            chunk = _Chunk(self._end, stream, data, count, now)
            if self._fallback:
                self._write_original([chunk])
                return
            self._pending.append(chunk)
            self._end += count
            self._cond.notify_all()

    # -- sending ---------------------------------------------------------------
    def _batches(self):  # type: ignore[no-untyped-def]
        """Request iterator of one call: batches from self._sent on."""
        while True:
            last: Optional[bytes] = None
            with self._cond:
                while True:
                    if self._fallback:
                        return
                    if self._sent < self._end:
                        break
                    if self._readers_done == 2:
                        if self._exit_code is not None:
                            # Every line is sent: the end (sent again on a new call
                            # after a reconnect; the orchestrator takes it twice).
                            last = encode_log_batch(
                                self._job_id,
                                self._attempt,
                                self._end,
                                time_ms=int(time.time() * 1000),
                                last=True,
                                exit_code=self._exit_code,
                            )
                        break
                    self._cond.wait(_FLUSH_SECONDS)
                batch: List[_Chunk] = []
                if self._sent < self._end:
                    i = 0
                    while self._pending[i].first + self._pending[i].count <= self._sent:
                        i += 1
                    size = 0
                    for chunk in self._pending[i:]:
                        batch.append(chunk)
                        size += len(chunk.data)
                        if size >= _BATCH_BYTES:
                            break
                    self._sent = batch[-1].first + batch[-1].count
            if not batch:  # every line is sent (yielded outside the lock: the ack thread takes it)
                if last is not None:
                    yield last
                return
            # A resend may start inside the first chunk: the orchestrator
            # skips the lines it already has, so send the chunk whole.
            yield encode_log_batch(
                self._job_id,
                self._attempt,
                batch[0].first,
                data=b"".join(c.data for c in batch),
                streams=b"".join(bytes((c.stream,)) * c.count for c in batch),
                time_ms=batch[-1].time_ms,
            )

    def _ack(self, accepted: int) -> None:
        with self._cond:
            if accepted <= self._base:
                return
            while self._pending and self._pending[0].first + self._pending[0].count <= accepted:
                self._pending.pop(0)
            if self._pending and self._pending[0].first < accepted:
                # Acked up to a line inside the chunk: keep only its rest.
                c = self._pending[0]
                drop = accepted - c.first
                cut = 0
                for _ in range(drop):
                    cut = c.data.index(b"\n", cut) + 1
                c.data, c.first, c.count = c.data[cut:], accepted, c.count - drop
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
                    self._ack(ack)
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
            chunks, self._pending = self._pending, []
            self._base = self._end
            note = f"cumulus.runtime: {why}; writing output to the container log\n"
            self._write_original([_Chunk(0, STDERR, note.encode(), 1, 0)] + chunks)
            self._cond.notify_all()

    def _write_original(self, chunks: List[_Chunk]) -> None:
        for chunk in chunks:
            fd = self._saved[0] if chunk.stream == STDOUT else self._saved[1]
            data = memoryview(chunk.data)
            while data:
                n = os.write(fd, data)
                data = data[n:]

    # -- shutdown --------------------------------------------------------------
    def close(self, timeout: float = 30.0, exit_code: Optional[int] = None) -> bool:
        """Restores fds 1 and 2, sends every remaining line and waits for its ack.

        ``exit_code``: the job's process exited with it (128 + N for signal
        N) and this process exits with it next; the stream's last batch
        announces it, so the orchestrator ends the attempt without waiting
        for the container's exit. Not announced after a SIGTERM
        (:func:`~cumulus._pipes.stop_asked`): a job stopped by Swarm or the
        agent may still exit 0, and did not end by itself.

        Returns True when everything was stored by the orchestrator (False when
        it fell back to the container log or ran out of time).
        """
        if exit_code is not None and not stop_asked():
            with self._cond:
                self._exit_code = exit_code
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
                chunks, self._pending = self._pending, []
                self._base = self._end
                self._write_original(chunks)
            self._cond.notify_all()
        return done


def run_streamed(argv: List[str], channel: grpc.Channel, job_id: str, attempt: int, token: str) -> int:
    """Runs ``argv`` with its output streamed; returns its exit status as a
    shell would (128 + N when killed by signal N). Raises FileNotFoundError or
    PermissionError when ``argv[0]`` cannot be started."""
    import signal
    import subprocess

    streamer = LogStreamer(channel, job_id, attempt, token).start()
    previous = signal.signal(signal.SIGTERM, keep_running)
    try:
        try:
            proc = subprocess.Popen(argv)
        except (FileNotFoundError, PermissionError):
            streamer.close(timeout=10)
            raise
        code = proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    code = code if code >= 0 else 128 - code
    streamer.close(timeout=30, exit_code=code)
    return code
