"""``CumulusClient``: run a Python function on a remote GPU as if it were local.

>>> from cumulus import CumulusClient                                # doctest: +SKIP
>>> client = CumulusClient("127.0.0.1:50051")                        # doctest: +SKIP
>>> client.run(lambda a, b: a + b, 2, 3, gpu_memory=0.5, duration=60)  # doctest: +SKIP
5
"""

from __future__ import annotations

import math
import numbers
import os
import sys
from dataclasses import dataclass
from typing import IO, Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from cumulus._bytes import parse_bytes
from cumulus._bundle import FilesArg, build_bundle, iter_chunks, resolve_files
from cumulus._call import CallEnvelope, defining_module, pickle_call, python_version, split_call
from cumulus._modules import local_modules
from cumulus._retry import DEFAULT_RETRY_TIMEOUT
from cumulus._proto import cumulus_pb2 as pb2
from cumulus._credentials import resolve_token
from cumulus._rpc import Rpc
from cumulus._url import default_ca_pem, default_orchestrator_url, parse_orchestrator_endpoint
from cumulus.errors import CumulusError
from cumulus.job import Job

__all__ = [
    "CumulusClient",
    "DEFAULT_GPU_MEMORY",
    "MAX_GPU_COUNT",
    "GpuRequest",
    "gpu_request",
    "DEFAULT_DURATION",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_RETRY_TIMEOUT",
    "RESERVED_KEYWORDS",
]

#: GPU memory fraction used when neither ``gpu_memory`` nor ``gpu_count`` is given
#: (as in the TypeScript SDK).
DEFAULT_GPU_MEMORY = 0.25
#: Most whole GPUs one job may ask for.
MAX_GPU_COUNT = 8
#: Partition lifetime in seconds used when ``duration`` is not given.
DEFAULT_DURATION = 3600.0
#: Seconds the first call waits for the connection before OrchestratorUnavailable.
DEFAULT_CONNECT_TIMEOUT = 4.0
#: Keyword arguments ``run``/``submit`` keep for themselves (pass such names to
#: your function with ``functools.partial``).
RESERVED_KEYWORDS = (
    "gpu_memory", "duration", "image", "env", "files", "gpu_count", "constraints", "job_name", "result_retention",
    "max_attempts", "resume_on_expiry", "cpu", "memory", "image_user",
)

_CHUNK = 64 * 1024


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: must be a number, got {type(value).__name__}")
    return float(value)


def _memory(value: Union[str, int]) -> str:
    """The container memory limit as the wire takes it: a size text, checked here."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"memory: must be a size like '8GiB' or a number of bytes, got {type(value).__name__}")
    text = value.strip() if isinstance(value, str) else f"{value}B"
    size = parse_bytes(text)
    if size is None or size <= 0:
        raise ValueError(f"memory: must be a size like '8GiB' or '512MiB', got {value!r}")
    return text


def _gpu_memory_size(value: str) -> str:
    text = value.strip()
    size = parse_bytes(text, require_unit=True)
    if size is None or size <= 0:
        raise ValueError(
            "gpu_memory: must be a fraction in (0, 1), a whole number of GPUs "
            f"1..{MAX_GPU_COUNT} or a size like '20GiB' or '512MiB', got {value!r}"
        )
    return text


@dataclass(frozen=True)
class GpuRequest:
    """What a job asks of GPUs, as the wire carries it.

    Attributes:
        gpu_memory: ``JobSpec.gpu_memory``: the fraction, in (0, 1), for a
            share of one GPU; for whole GPUs the count again (an integer N >= 1
            means N whole GPUs, and agreeing with ``gpu_count`` every
            orchestrator takes it); 0 when ``gpu_memory_size`` is given instead.
        gpu_memory_size: An absolute size for a share of one GPU (``"20GiB"``), or "".
        gpu_count: GPUs (``JobSpec.gpu_count``): 1 for a share of one GPU.
    """

    gpu_memory: float
    gpu_memory_size: str
    gpu_count: int

    @property
    def whole_gpus(self) -> bool:
        """True for whole GPUs, False for a share of one GPU."""
        return not self.gpu_memory_size and self.gpu_memory >= 1


_FRACTION_FOR_ONE = "a fraction of a GPU is for one GPU; ask whole GPUs with gpu_count"


def _whole_gpus(name: str, value: float) -> int:
    if value != int(value) or not 1 <= value <= MAX_GPU_COUNT:
        raise ValueError(
            f"{name}: must be a fraction in (0, 1) or a whole number of GPUs 1..{MAX_GPU_COUNT}, got {value:g}"
        )
    return int(value)


def gpu_request(gpu_memory: Union[float, str, None], gpu_count: Optional[int]) -> GpuRequest:
    """Resolve ``gpu_memory`` and ``gpu_count`` into what the job asks.

    A job asks either a fraction of one GPU (``gpu_memory`` in (0, 1), or a
    size string) or N whole GPUs (``gpu_count=N``, or ``gpu_memory=N`` with N
    a whole number >= 1; both may be given when they agree). Neither given
    means :data:`DEFAULT_GPU_MEMORY` of one GPU.

    Args:
        gpu_memory: A fraction, a whole number of GPUs, a size string, or ``None``.
        gpu_count: Whole GPUs (1..:data:`MAX_GPU_COUNT`), or ``None``.

    Returns:
        The request as the wire carries it.

    Raises:
        TypeError: A value of the wrong type.
        ValueError: A value out of range, a malformed size, or a fraction
            together with ``gpu_count`` > 1 (the message names the option).
    """
    count: Optional[int] = None
    if gpu_count is not None:
        if isinstance(gpu_count, bool) or not isinstance(gpu_count, numbers.Integral):
            raise TypeError(f"gpu_count: must be an int, got {type(gpu_count).__name__}")
        count = int(gpu_count)
        if not 1 <= count <= MAX_GPU_COUNT:
            raise ValueError(f"gpu_count: must be 1..{MAX_GPU_COUNT}, got {count}")
    if gpu_memory is None:
        if count is None:
            return GpuRequest(DEFAULT_GPU_MEMORY, "", 1)
        return GpuRequest(float(count), "", count)
    if isinstance(gpu_memory, str):
        size = _gpu_memory_size(gpu_memory)
        if count is not None and count > 1:
            raise ValueError(f"gpu_memory: {_FRACTION_FOR_ONE}, got {gpu_memory!r} with gpu_count={count}")
        return GpuRequest(0.0, size, 1)
    value = _number("gpu_memory", gpu_memory)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"gpu_memory: must be a fraction in (0, 1) or a whole number of GPUs 1..{MAX_GPU_COUNT}, got {value:g}"
        )
    if value < 1:
        if count is not None and count > 1:
            raise ValueError(f"gpu_memory: {_FRACTION_FOR_ONE}, got gpu_memory={value:g} with gpu_count={count}")
        return GpuRequest(value, "", 1)
    whole = _whole_gpus("gpu_memory", value)
    if count is not None and whole not in (1, count):
        raise ValueError(f"gpu_memory: {whole} whole GPUs disagrees with gpu_count={count}, got gpu_memory={value:g}")
    # gpu_memory=1 with gpu_count=N: the whole of each of N GPUs.
    n = count if count is not None else whole
    return GpuRequest(float(n), "", n)


def _env(env: Optional[Mapping[str, str]]) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for key, value in (env or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"env must map str to str, got {key!r}: {type(value).__name__}")
        out[key] = value
    return out


def _job_name(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(type(fn), "__qualname__", "function")
    return str(name)[:128]


class CumulusClient:
    """A connection to one Cumulus orchestrator.

    ``url`` is ``host:port`` (or ``grpc://host:port``), plaintext, or
    ``grpcs://host:port`` / ``https://host[:port]`` (port 443), TLS verified
    against ``ca_file`` (default ``CUMULUS_CA_FILE``, else the system store);
    ``None`` means ``CUMULUS_ORCHESTRATOR_URL``, else ``127.0.0.1:50051``. Nothing is
    contacted until the first call, which fails within ``connect_timeout``
    seconds with :class:`~cumulus.errors.OrchestratorUnavailable` when no
    orchestrator answers. ``token`` is the user token sent with every call
    (default ``CUMULUS_TOKEN``, else the credentials file ``cumulus login``
    writes); a job belongs to the token's user, and an orchestrator with
    tokens ignores ``user`` (default ``CUMULUS_USER``, else ``USER``), which
    older orchestrators took as the owner. A missing or refused token raises
    :class:`~cumulus.errors.UnauthenticatedError`.

    Once the orchestrator has answered, reads (job state, results, listings)
    and log/event streams ride out an orchestrator restart: UNAVAILABLE is
    retried with capped exponential backoff (0.1 s doubling to 2 s) for up to
    ``retry_timeout`` seconds (default :data:`DEFAULT_RETRY_TIMEOUT`, 60; 0
    turns it off), and streams resume after the last log line delivered.
    ``submit`` and ``cancel`` are never repeated: during a restart they raise
    :class:`~cumulus.errors.OrchestratorUnavailable`, and the job may or may
    not exist (or be cancelled); look before trying again.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        user: Optional[str] = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        retry_timeout: float = DEFAULT_RETRY_TIMEOUT,
        ca_file: Optional[str] = None,
        token: Optional[str] = None,
    ) -> None:
        endpoint = parse_orchestrator_endpoint(url if url is not None else default_orchestrator_url(os.environ))
        self.url = endpoint.target
        ca_pem: Optional[bytes] = None
        if endpoint.tls:
            if ca_file is not None:
                with open(ca_file, "rb") as f:
                    ca_pem = f.read()
            else:
                ca_pem = default_ca_pem(os.environ)
        self.user = user if user is not None else (os.environ.get("CUMULUS_USER") or os.environ.get("USER") or "")
        retry = _number("retry_timeout", retry_timeout)
        if not retry >= 0:
            raise ValueError(f"retry_timeout: must be a number >= 0, got {retry_timeout!r}")
        # The user token: `token`, else CUMULUS_TOKEN, else the credentials file (cumulus._credentials).
        self._rpc = Rpc(
            self.url,
            _number("connect_timeout", connect_timeout),
            retry,
            resolve_token(token, os.environ),
            tls=endpoint.tls,
            ca_pem=ca_pem,
        )

    def __repr__(self) -> str:
        return f"CumulusClient({self.url!r})"

    def __enter__(self) -> "CumulusClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; handles made by this client stop working."""
        self._rpc.close()

    def job(self, job_id: str) -> Job:
        """A handle for an existing job (e.g. one submitted earlier or by the CLI)."""
        return Job(self._rpc, job_id)

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        gpu_memory: Union[float, str, None] = None,
        duration: float = DEFAULT_DURATION,
        image: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        files: FilesArg = None,
        gpu_count: Optional[int] = None,
        constraints: Sequence[str] = (),
        job_name: Optional[str] = None,
        result_retention: Optional[float] = None,
        max_attempts: Optional[int] = None,
        resume_on_expiry: bool = False,
        cpu: Optional[float] = None,
        memory: Union[str, int, None] = None,
        image_user: bool = False,
        **kwargs: Any,
    ) -> Job:
        """Start ``fn(*args, **kwargs)`` as a job and return its :class:`~cumulus.job.Job` at once.

        The job asks either a share of one GPU or whole GPUs:
        ``gpu_memory`` is the fraction of one GPU's memory (0 < f < 1,
        default :data:`DEFAULT_GPU_MEMORY`) or an absolute size as a string
        (``"20GiB"``, ``"512MiB"``) that the orchestrator turns into that
        GPU's share; ``gpu_count=N`` (or ``gpu_memory=N``, N a whole number)
        asks N whole GPUs, 1..:data:`MAX_GPU_COUNT`. These are checked here
        (``ValueError``/``TypeError`` naming the option, e.g. a fraction with
        ``gpu_count`` > 1); ``duration`` is the partition's lifetime in
        seconds, checked by the orchestrator (a bad value raises
        :class:`~cumulus.errors.InvalidSpecError`, a ``ValueError``). ``image`` picks the container image (default: the
        orchestrator's), ``env`` adds environment variables, ``files`` ships
        local files or directories into the job's working directory (see
        :func:`cumulus._bundle.resolve_files`). ``result_retention`` keeps the
        result that many seconds after the job ends (default and most: the
        orchestrator's ``result_retention``). ``max_attempts`` bounds the
        attempts of a job whose container or worker is lost (default: the
        orchestrator's, 3; 1 turns resuming off); ``resume_on_expiry`` also
        resumes it from its last reported checkpoint when its duration runs
        out, while attempts remain. ``cpu`` (cores, e.g. ``0.5`` or ``8``)
        and ``memory`` (a size such as ``"8GiB"``, or bytes) limit the job's
        container (default and most: the orchestrator's ``job_cpu_default``/
        ``job_cpu_max`` and ``job_memory_default``/``job_memory_max``); past
        its memory the job fails with reason code ``MEMORY_EXCEEDED``.
        ``image_user=True`` runs it as the image's own user instead of the
        orchestrator's job uid, where the orchestrator allows it
        (``allow_image_user``). The function, its arguments
        and the caller's local modules are pickled here: a part that cannot be
        pickled raises :class:`~cumulus.errors.NotPicklableError` before
        anything is sent.
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        gpus = gpu_request(gpu_memory, gpu_count)
        spec = pb2.JobSpec(
            image=image or "",
            env=_env(env),
            duration=_number("duration", duration),
            gpu_count=gpus.gpu_count,
            constraints=list(constraints),
            user=self.user,
            name=job_name if job_name is not None else _job_name(fn),
        )
        if result_retention is not None:
            spec.result_retention = _number("result_retention", result_retention)
        if cpu is not None:
            spec.cpu = _number("cpu", cpu)
        if memory is not None:
            spec.memory = _memory(memory)
        spec.image_user = bool(image_user)
        if max_attempts is not None or resume_on_expiry:
            if max_attempts is not None and (isinstance(max_attempts, bool) or not isinstance(max_attempts, int)):
                raise TypeError(f"max_attempts must be an int, got {type(max_attempts).__name__}")
            spec.retry.CopyFrom(pb2.RetryPolicy(
                resume=True, max_attempts=max_attempts or 0, resume_on_expiry=bool(resume_on_expiry),
            ))
        if gpus.gpu_memory_size:
            spec.gpu_memory_size = gpus.gpu_memory_size
        else:
            spec.gpu_memory = gpus.gpu_memory
        bundle_files = resolve_files(files)
        modules = local_modules()
        own = defining_module(fn)
        by_value = [m.module for m in modules if m.name == own]
        call = pickle_call(fn, args, kwargs, by_value)
        inline, extra = split_call(call)
        bundle = build_bundle(bundle_files, modules, extra)
        spec.function = CallEnvelope(call=inline, bundle=bundle is not None, python=python_version()).to_bytes()
        try:
            response = self._rpc.client_stream("SubmitJob", self._requests(spec, bundle))
        finally:
            if bundle is not None:
                bundle.close()
        return Job(self._rpc, response.job_id)

    @staticmethod
    def _requests(spec: pb2.JobSpec, bundle: Optional[IO[bytes]]) -> List[pb2.SubmitJobRequest]:
        # Materialised before the call: a generator would run on grpc's thread,
        # where an error reading the bundle could not reach the caller.
        requests = [pb2.SubmitJobRequest(spec=spec)]
        if bundle is not None:
            requests.extend(pb2.SubmitJobRequest(chunk=c) for c in iter_chunks(bundle, _CHUNK))
        return requests

    def run(
        self,
        fn: Callable[..., Any],
        *args: Any,
        gpu_memory: Union[float, str, None] = None,
        duration: float = DEFAULT_DURATION,
        image: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        files: FilesArg = None,
        gpu_count: Optional[int] = None,
        constraints: Sequence[str] = (),
        job_name: Optional[str] = None,
        result_retention: Optional[float] = None,
        max_attempts: Optional[int] = None,
        resume_on_expiry: bool = False,
        cpu: Optional[float] = None,
        memory: Union[str, int, None] = None,
        image_user: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Run ``fn(*args, **kwargs)`` remotely and return its value, like a local call.

        Blocks until the job ends, writing its stdout and stderr to this
        process's ``sys.stdout``/``sys.stderr`` as they happen. The function's
        exception is raised here with its own type and the remote traceback in
        the message; a job that ends without a result raises
        :class:`~cumulus.errors.JobFailed`. Ctrl-C cancels the job. Options as
        in :meth:`submit`.
        """
        job = self.submit(
            fn, *args, gpu_memory=gpu_memory, duration=duration, image=image, env=env, files=files,
            gpu_count=gpu_count, constraints=constraints, job_name=job_name,
            result_retention=result_retention, max_attempts=max_attempts,
            resume_on_expiry=resume_on_expiry, cpu=cpu, memory=memory, image_user=image_user, **kwargs,
        )
        try:
            return job._run_streaming()
        except KeyboardInterrupt:
            try:
                job.cancel()
                print(f"cumulus: cancelled job {job.id}", file=sys.stderr)
            except CumulusError:
                pass  # it ended meanwhile
            raise
