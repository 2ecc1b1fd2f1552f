"""End to end: the Python SDK through a real orchestrator process and the local
Swarm, functions running in the cumulus-job image (see conftest's
``orchestrator`` fixture: Deno and Docker are required, never skipped)."""

from __future__ import annotations

import functools
import hashlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

import local_helpers
import torch_training
from bundle_helpers import PACKAGE_DIR
from conftest import E2E_MAX_RESULT_BYTES
from cumulus import (
    CumulusClient,
    InvalidSpecError,
    JobCancelled,
    JobFailed,
    NotPicklableError,
    OrchestratorUnavailable,
    RemoteError,
)
from cumulus.runtime import EXIT_RESULT_REFUSED
from orchestrator_proc import TEST_ADMIN_TOKEN, free_port


def test_acceptance_command_prints_5(orchestrator: Any) -> None:
    """The issue's acceptance line, run as written from the package directory."""
    code = (
        "from cumulus import CumulusClient; "
        f"print(CumulusClient('localhost:{orchestrator.port}').run(lambda a, b: a + b, 2, 3, gpu_memory=0.5, duration=60))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=str(PACKAGE_DIR), capture_output=True, text=True,
        timeout=120, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "5\n"


def test_returns_a_numpy_array(client: CumulusClient) -> None:
    import numpy as np

    def make(n: int) -> Any:
        import numpy

        return numpy.arange(n, dtype=numpy.float32).reshape(2, -1) * 2

    out = client.run(make, 10, gpu_memory=0.5, duration=60)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.arange(10, dtype=np.float32).reshape(2, -1) * 2)


def test_trained_sklearn_model_is_used_locally(client: CumulusClient) -> None:
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(n_samples=400, n_features=6, random_state=3)

    def fit(x: Any, y: Any) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(max_iter=500).fit(x[:300], y[:300])

    model = client.run(fit, x, y)
    assert isinstance(model, LogisticRegression)
    local = LogisticRegression(max_iter=500).fit(x[:300], y[:300])
    assert (model.predict(x[300:]) == local.predict(x[300:])).all()
    assert model.score(x[300:], y[300:]) > 0.8


def test_value_error_arrives_as_value_error_with_the_remote_traceback(
    client: CumulusClient, capsys: pytest.CaptureFixture[str]
) -> None:
    def check_input(v: int) -> None:
        print("checking", v)
        if v > 3:
            raise ValueError(f"value {v} is too large")

    with pytest.raises(ValueError) as info:
        client.run(check_input, 7)
    message = str(info.value)
    assert message.startswith("value 7 is too large\n\nRemote traceback (job j-")
    assert "in check_input" in message
    assert message.rstrip().endswith("ValueError: value 7 is too large")
    assert "checking 7" in capsys.readouterr().out


def test_exception_of_a_type_unknown_here_is_a_remote_error(client: CumulusClient, tmp_path: Path) -> None:
    mod = tmp_path / "remote_only_mod.py"
    mod.write_text("class Oops(Exception):\n    pass\n")

    def fail() -> None:
        import remote_only_mod  # shipped by files=, never imported here

        raise remote_only_mod.Oops("only the container knows this type")

    with pytest.raises(RemoteError) as info:
        client.run(fail, files={"remote_only_mod.py": str(mod)})
    assert info.value.type_name == "remote_only_mod.Oops"
    assert info.value.remote_message == "only the container knows this type"
    assert "in fail" in info.value.remote_traceback
    assert "remote_only_mod" not in sys.modules


def test_50_mb_result(client: CumulusClient) -> None:
    def blob() -> bytes:
        import random

        return random.Random(50).randbytes(50_000_000)

    started = time.monotonic()
    out = client.run(blob)
    elapsed = time.monotonic() - started
    assert len(out) == 50_000_000
    assert hashlib.sha256(out).digest() == hashlib.sha256(random.Random(50).randbytes(50_000_000)).digest()
    print(f"50 MB result round trip: {elapsed:.2f} s")


def test_10000_printed_lines_all_arrive_in_order(client: CumulusClient, capsys: pytest.CaptureFixture[str]) -> None:
    def chatty() -> int:
        import sys

        for i in range(10_000):
            print(f"line {i}")
        print("to stderr", file=sys.stderr)
        return 10_000

    assert client.run(chatty) == 10_000
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"line {i}" for i in range(10_000)]
    assert "to stderr" in captured.err.splitlines()


def test_closure_and_local_module_helper(client: CumulusClient) -> None:
    factor = 2.5
    offset = local_helpers.Point(3.0, 4.0)

    def work(values: List[float]) -> Any:
        scaled = local_helpers.scale(values, factor)
        return scaled, offset.norm2(), local_helpers.Point(scaled[0], scaled[1])

    scaled, norm2, point = client.run(work, [1.0, 2.0])
    assert scaled == [2.5, 5.0] and norm2 == 25.0
    # The class came back as the local module's own class, not a copy.
    assert type(point) is local_helpers.Point and point.norm2() == 31.25


def test_local_module_exception_is_reraised_with_its_type(client: CumulusClient) -> None:
    def fail() -> None:
        raise local_helpers.HelperError("from the helper module")

    with pytest.raises(local_helpers.HelperError, match="from the helper module"):
        client.run(fail)


def test_large_arguments_travel_in_the_bundle(client: CumulusClient) -> None:
    import numpy as np

    data = np.arange(200_000, dtype=np.float64)  # 1.6 MB: over the inline limit

    def total(a: Any, scale: float = 1.0) -> float:
        return float(a.sum() * scale)

    assert client.run(total, data, scale=2.0) == float(data.sum() * 2.0)


def test_files_are_in_the_working_directory(
    client: CumulusClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data/train.csv").write_text("a,b\n1,2\n")
    (tmp_path / "config.txt").write_text("lr=0.1\n")

    def read() -> Dict[str, str]:
        import os

        return {"csv": open("data/train.csv").read(), "cfg": open("config.txt").read(), "cwd": os.getcwd()}

    out = client.run(read, files=["data", "config.txt"])
    assert out == {"csv": "a,b\n1,2\n", "cfg": "lr=0.1\n", "cwd": "/workspace"}


def test_job_knows_its_partition_from_the_environment(client: CumulusClient) -> None:
    def where() -> Dict[str, Any]:
        import os

        from cumulus import current_job

        ctx = current_job()
        if ctx is None:  # no assert here: pytest rewrites asserts into calls the image cannot import
            raise RuntimeError("no job context")
        return {
            "gpu_memory": ctx.gpu_memory,
            "duration": ctx.duration,
            "deadline": ctx.deadline,
            "left": ctx.seconds_left(),
            "mine": os.environ["MY_SETTING"],
            "raw": os.environ["CUMULUS_GPU_MEMORY"],
            "partition_id": ctx.partition_id,
            "partition_ids": ctx.partition_ids,
            "device": ctx.device,
            "devices": ctx.devices,
            "gpu_count": ctx.gpu_count,
        }

    before = time.time()
    job = client.submit(where, gpu_memory=0.5, duration=120, env={"MY_SETTING": "on"})
    out = job.result(timeout=120)
    assert out["gpu_memory"] == 0.5 and out["raw"] == "0.5" and out["duration"] == 120
    assert before + 110 < out["deadline"] < time.time() + 125
    assert 100 < out["left"] <= 120
    assert out["mine"] == "on"
    # The partition and device the job sees are the ones the orchestrator placed it on.
    info = job.info()
    assert out["gpu_count"] == 1 and info.gpu_count == 1
    assert out["partition_ids"] == info.partition_ids
    assert out["devices"] == info.gpu_devices
    assert out["partition_id"] == (info.partition_id or None)
    assert out["device"] == (info.gpu_devices[0] if info.gpu_devices else None)


def test_submit_handle_logs_wait_result_status(client: CumulusClient) -> None:
    def steps(n: int) -> str:
        for i in range(n):
            print(f"step {i}")
        return "done"

    job = client.submit(steps, 3)
    assert job.status in ("QUEUED", "SCHEDULED", "RUNNING", "SUCCEEDED")
    lines = [line.text for line in job.logs()]
    assert lines == ["step 0", "step 1", "step 2"]
    info = job.wait(timeout=60)
    assert info.state == "SUCCEEDED" and info.exit_code == 0 and info.has_result
    assert job.result() == "done" and job.result() == "done"
    assert job.status == "SUCCEEDED"
    assert client.job(job.id).result() == "done"


def test_exit_without_result_raises_job_failed_with_code_and_last_lines(client: CumulusClient) -> None:
    def quit_early() -> None:
        import sys

        for i in range(25):
            print(f"work {i}")
        sys.exit(3)

    with pytest.raises(JobFailed) as info:
        client.run(quit_early)
    err = info.value
    assert err.state == "FAILED" and err.exit_code == 3
    assert list(err.last_lines) == [f"work {i}" for i in range(5, 25)]
    assert "exited with code 3" in str(err) and "work 24" in str(err)


def test_crashed_process_raises_job_failed(client: CumulusClient) -> None:
    """A native crash (SIGSEGV). SIGKILL/SIGTERM from outside count as infrastructure
    failures, which the orchestrator resumes (a separate, orchestrator-side policy)."""

    def die() -> None:
        import os
        import signal

        print("going down")
        os.kill(os.getpid(), signal.SIGSEGV)

    with pytest.raises(JobFailed) as info:
        client.submit(die).result(timeout=60)
    assert info.value.exit_code == 128 + 11
    assert info.value.last_lines == ("going down",)


def test_cancel_from_python(client: CumulusClient) -> None:
    def sleepy() -> None:
        import time

        print("started", flush=True)
        time.sleep(120)

    job = client.submit(sleepy, duration=300)
    try:
        for line in job.logs():
            if line.text == "started":
                break
        started = time.monotonic()
        assert job.cancel().state == "CANCELLED"
        with pytest.raises(JobCancelled) as info:
            job.result(timeout=30)
        assert time.monotonic() - started < 15
        assert info.value.state == "CANCELLED" and "cancelled" in info.value.reason
        assert job.status == "CANCELLED"
    finally:
        if job.status not in ("CANCELLED", "SUCCEEDED", "FAILED"):
            job.cancel()


def test_wrong_url_fails_fast_when_nothing_listens() -> None:
    client = CumulusClient(f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(OrchestratorUnavailable, match="cannot connect to the orchestrator") as info:
        client.run(lambda: 1)
    assert isinstance(info.value, ConnectionError)
    assert time.monotonic() - started < 5


def test_wrong_url_fails_within_5_s_when_the_peer_never_answers() -> None:
    """A TCP listener that never speaks HTTP/2: the connection hangs, the client must not."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        client = CumulusClient(f"127.0.0.1:{silent.getsockname()[1]}")
        started = time.monotonic()
        with pytest.raises(OrchestratorUnavailable, match="did not answer within"):
            client.run(lambda: 1)
        assert time.monotonic() - started < 5


def test_not_picklable_fails_before_anything_is_sent() -> None:
    # Nothing listens at this address: reaching it would raise OrchestratorUnavailable instead.
    client = CumulusClient(f"127.0.0.1:{free_port()}")
    lock = threading.Lock()
    with pytest.raises(NotPicklableError, match=r"argument 0 \(_thread.lock\) cannot be pickled") as info:
        client.run(lambda held: held.locked(), lock)
    assert isinstance(info.value, TypeError)
    with pytest.raises(NotPicklableError, match="keyword argument 'guard'"):
        client.run(lambda guard=None: 1, guard=lock)
    with pytest.raises(NotPicklableError, match="the function"):
        client.run(lambda: lock.locked())


@pytest.mark.parametrize(
    "options, field",
    [
        ({"duration": 0}, "spec.duration"),
        ({"duration": -5}, "spec.duration"),
        ({"duration": 10 ** 9}, "spec.duration"),
    ],
    ids=["duration-0", "duration-negative", "duration-over-max"],
)
def test_out_of_range_spec_is_a_value_error(client: CumulusClient, options: Dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}: ") as info:
        client.run(lambda: 1, **options)
    assert isinstance(info.value, InvalidSpecError)


def test_image_that_does_not_exist(client: CumulusClient) -> None:
    with pytest.raises(InvalidSpecError, match=r'spec.image: image "cumulus-no-such-image:1" not found'):
        client.run(lambda: 1, image="cumulus-no-such-image:1")


def test_result_over_the_limit_fails_the_job_with_the_reason(client: CumulusClient) -> None:
    def too_big() -> bytes:
        return b"x" * (70 * 1024 * 1024)

    job = client.submit(too_big)
    with pytest.raises(JobFailed) as info:
        job.result(timeout=120)
    err = info.value
    assert err.state == "FAILED" and err.exit_code == EXIT_RESULT_REFUSED
    assert err.reason.startswith("result refused: result of ")
    assert f"exceeds the limit of {E2E_MAX_RESULT_BYTES} bytes (max_result_bytes)" in err.reason
    assert job.info().reason == err.reason
    assert err.reason_code == "RESULT_REFUSED" and job.info().reason_code == "RESULT_REFUSED"


def test_pytorch_training_matches_a_local_run(client: CumulusClient, capsys: pytest.CaptureFixture[str]) -> None:
    remote_state = client.run(torch_training.train, 0, steps=300, gpu_memory=0.5, duration=300)
    assert "step 200 loss" in capsys.readouterr().out
    local_state = torch_training.train(0, steps=300)
    assert set(remote_state) == set(local_state)
    remote_loss = torch_training.held_out_loss(remote_state)
    local_loss = torch_training.held_out_loss(local_state)
    print(f"held-out loss: remote {remote_loss!r}, local {local_loss!r}")
    assert remote_loss < 0.1  # it learned something
    assert abs(remote_loss - local_loss) <= 1e-6 * max(1.0, abs(local_loss))


def test_runs_from_a_script_with_main_module_functions(orchestrator: Any, tmp_path: Path) -> None:
    """A user's script: the function lives in __main__ and imports a helper next to it."""
    (tmp_path / "helper_here.py").write_text("def twice(x):\n    return 2 * x\n")
    (tmp_path / "train.py").write_text(
        "import helper_here\n"
        "from cumulus import CumulusClient\n"
        "def job(x):\n"
        "    print('remote says hi')\n"
        "    return helper_here.twice(x)\n"
        "if __name__ == '__main__':\n"
        f"    print(CumulusClient('{orchestrator.url}').run(job, 21))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_DIR))
    proc = subprocess.run(
        [sys.executable, "train.py"], cwd=str(tmp_path), env=env, capture_output=True, text=True,
        timeout=120, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "remote says hi\n42\n"


def test_ctrl_c_in_run_cancels_the_job(orchestrator: Any, tmp_path: Path) -> None:
    script = tmp_path / "interrupted.py"
    script.write_text(
        "import sys, time\n"
        "from cumulus import CumulusClient\n"
        "def sleepy():\n"
        "    print('started', flush=True)\n"
        "    time.sleep(120)\n"
        f"CumulusClient('{orchestrator.url}').run(sleepy, duration=300)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_DIR), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, str(script)], cwd=str(tmp_path), env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "started\n"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    # An uncaught KeyboardInterrupt ends Python by SIGINT, as a shell expects.
    assert proc.returncode == -signal.SIGINT and "KeyboardInterrupt" in err
    match = re.search(r"cumulus: cancelled job (j-[0-9a-f]{12})", err)
    assert match, err
    client = CumulusClient(orchestrator.url)
    assert client.job(match.group(1)).status == "CANCELLED"


def test_gpu_memory_as_an_absolute_size(client: CumulusClient) -> None:
    job = client.submit(lambda: 7, gpu_memory="1GiB", duration=60)
    assert job.result(timeout=120) == 7
    info = job.info()
    assert info.gpu_memory_size == f"{1 << 30}B"
    assert info.gpu_memory == 0


def test_listings_carry_the_function_size_not_its_bytes(client: CumulusClient, orchestrator: Any) -> None:
    """A 2 MB pickled call: ListJobs, GetJob and WatchJob send its size, never the bytes."""
    import json

    import cloudpickle
    import grpc

    from bundle_helpers import REPO_ROOT, pb2
    from orchestrator_proc import find_deno

    big = os.urandom(2 * 1024 * 1024)
    # A bare (fn, args, kwargs) pickle inline in spec.function (the SDK would move it to the bundle).
    payload = cloudpickle.dumps((len, (big,), {}))
    assert len(payload) > 2_000_000
    channel = grpc.insecure_channel(orchestrator.url)
    try:
        def method(name: str, req: Any, res: Any, kind: str = "unary_unary") -> Any:
            call = getattr(channel, kind)(
                f"/cumulus.v1.Cumulus/{name}", request_serializer=req.SerializeToString,
                response_deserializer=res.FromString,
            )
            # The session's admin token (orchestrator_proc), as the SDK sends it.
            return functools.partial(call, metadata=(("authorization", f"Bearer {TEST_ADMIN_TOKEN}"),))

        submit = method("SubmitJob", pb2.SubmitJobRequest, pb2.SubmitJobResponse, "stream_unary")
        spec = pb2.JobSpec(function=payload, gpu_memory=0.5, duration=120, name="big-call")
        response = submit(iter([pb2.SubmitJobRequest(spec=spec)]), timeout=60)
        job_id = response.job_id
        assert response.job.function_bytes == len(payload) and response.job.spec.function == b""
        # The runtime still gets the call (Runtime.FetchFunction).
        assert client.job(job_id).result(timeout=120) == len(big)

        page = method("ListJobs", pb2.ListJobsRequest, pb2.ListJobsResponse)(
            pb2.ListJobsRequest(page_size=1000), timeout=30
        )
        [listed] = [j for j in page.jobs if j.id == job_id]
        assert listed.function_bytes == len(payload) and listed.spec.function == b""
        assert listed.ByteSize() < 2048, listed.ByteSize()
        assert page.ByteSize() < 256 * 1024, f"{len(page.jobs)} jobs in {page.ByteSize()} bytes"
        got = method("GetJob", pb2.GetJobRequest, pb2.Job)(pb2.GetJobRequest(job_id=job_id), timeout=30)
        assert got.ByteSize() < 2048 and got.function_bytes == len(payload)
        watch = method("WatchJob", pb2.WatchJobRequest, pb2.WatchJobEvent, "unary_stream")
        events = list(watch(pb2.WatchJobRequest(job_id=job_id, no_logs=True, no_follow=True), timeout=30))
        assert events and all(e.ByteSize() < 2048 for e in events)
    finally:
        channel.close()

    # Clients still tell a function job: the Python SDK, and the CLI (JSON and table).
    assert client.job(job_id).info().is_function is True
    cli = [find_deno(), "run", "-A", "main.ts", "jobs", "--url", orchestrator.url]
    env = dict(os.environ, NO_COLOR="1")
    out = subprocess.run(
        cli + ["--json"], cwd=str(REPO_ROOT), env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr
    [record] = [j for j in json.loads(out.stdout) if j["id"] == job_id]
    assert record["functionBytes"] == len(payload) and record["spec"]["function"] == ""
    table = subprocess.run(
        cli, cwd=str(REPO_ROOT), env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert table.returncode == 0, table.stderr
    [row] = [line for line in table.stdout.splitlines() if line.startswith(job_id)]
    assert row.endswith("(python function)"), row


def test_result_retention_may_be_shortened_not_exceeded(client: CumulusClient) -> None:
    job = client.submit(lambda: 1, duration=60, result_retention=120)
    assert job.info().result_retention == 120
    assert job.result(timeout=120) == 1
    # Without one, the orchestrator's (7 days by default) is recorded.
    second = client.submit(lambda: 2, duration=60)
    assert second.info().result_retention == 7 * 86400
    assert second.result(timeout=120) == 2
    with pytest.raises(InvalidSpecError, match=r"^spec\.result_retention: must be at most 604800"):
        client.submit(lambda: 3, duration=60, result_retention=8 * 86400)


def test_retry_options_reach_the_job_and_are_checked(client: CumulusClient) -> None:
    job = client.submit(lambda: 1, duration=60, max_attempts=5, resume_on_expiry=True)
    info = job.info()
    assert (info.max_attempts, info.resume_on_expiry) == (5, True)
    assert job.result(timeout=120) == 1
    plain = client.submit(lambda: 2, duration=60)
    assert (plain.info().max_attempts, plain.info().resume_on_expiry) == (3, False)
    assert plain.result(timeout=120) == 2
    with pytest.raises(InvalidSpecError, match=r"^spec\.retry\.resume_on_expiry"):
        client.submit(lambda: 3, duration=60, max_attempts=1, resume_on_expiry=True)
    with pytest.raises(TypeError, match="max_attempts must be an int"):
        client.submit(lambda: 4, duration=60, max_attempts=2.5)  # type: ignore[arg-type]


def test_a_call_without_a_valid_token_is_unauthenticated_with_a_hint(orchestrator: Any, monkeypatch: Any) -> None:
    from cumulus import UnauthenticatedError

    monkeypatch.delenv("CUMULUS_TOKEN", raising=False)
    monkeypatch.setenv("CUMULUS_CREDENTIALS", "/nonexistent/credentials")
    for token in (None, "cu_000000000000_" + "A" * 43):
        with CumulusClient(orchestrator.url, token=token) as anon:
            with pytest.raises(UnauthenticatedError, match=r"cumulus login.*CUMULUS_TOKEN"):
                anon.job("j-000000000000").status()


def _memory_limit() -> str:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            continue
    return "?"


def test_cpu_and_memory_limits_reach_the_container(client: CumulusClient) -> None:
    job = client.submit(_memory_limit, duration=60, cpu=0.5, memory="256MiB")
    assert job.result(timeout=120) == str(256 << 20)
    info = job.info()
    assert info.cpu == 0.5
    assert info.memory == f"{256 << 20}B"
