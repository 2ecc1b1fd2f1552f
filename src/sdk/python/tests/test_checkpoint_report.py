"""Checkpoint reports (Runtime.ReportCheckpoint) against a real gRPC server:
what is sent for L1 and L2, and that a slow, absent or refusing orchestrator
never gets in the way of saving."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import grpc
import numpy as np
import pytest

from bundle_helpers import pb2
from cumulus.checkpoint.report import TOKEN_METADATA_KEY, CheckpointReporter
from runtime_server import checkpoint_key_handler, serve_runtime
from s3_fixture import S3Server, make_manager, s3server  # noqa: F401  (fixture)

JOB = "job-1"
TOKEN = "report-token"


@dataclass
class ReportServer:
    """A Runtime server taking ReportCheckpoint; tests set how it answers."""

    url: str = ""
    #: (job_id, step, tier, location, token) of each accepted report.
    reports: List[Tuple[str, int, str, str, str]] = field(default_factory=list)
    #: Seconds each call sleeps before answering.
    delay: float = 0.0
    #: Answer every call with this status instead of OK.
    refuse: Optional[grpc.StatusCode] = None
    #: Answer this many calls with UNAVAILABLE first (an orchestrator restarting).
    unavailable_first: int = 0
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def report(self, request: pb2.ReportCheckpointRequest, context: grpc.ServicerContext) -> pb2.ReportCheckpointResponse:
        with self.lock:
            self.calls += 1
            restarting = self.calls <= self.unavailable_first
        if restarting:
            context.abort(grpc.StatusCode.UNAVAILABLE, "orchestrator restarting")
        if self.delay:
            time.sleep(self.delay)
        if self.refuse is not None:
            context.abort(self.refuse, "checkpoint reporting is not enabled on this orchestrator")
        token = dict(context.invocation_metadata()).get(TOKEN_METADATA_KEY, "")
        with self.lock:
            self.reports.append((request.job_id, request.step, request.tier, request.location, token))
        return pb2.ReportCheckpointResponse()

    def steps(self, tier: str) -> List[int]:
        with self.lock:
            return [r[1] for r in self.reports if r[2] == tier]


@pytest.fixture
def report_server() -> Iterator[ReportServer]:
    state = ReportServer()
    report = grpc.unary_unary_rpc_method_handler(
        state.report,
        request_deserializer=pb2.ReportCheckpointRequest.FromString,
        response_serializer=pb2.ReportCheckpointResponse.SerializeToString,
    )
    server, state.url = serve_runtime({"ReportCheckpoint": report, "CheckpointKey": checkpoint_key_handler()})
    try:
        yield state
    finally:
        server.stop(grace=None)


def job_env(url: str) -> dict:
    return {"CUMULUS_ORCHESTRATOR_URL": url, "CUMULUS_JOB_ID": JOB, "CUMULUS_JOB_TOKEN": TOKEN}


def state(i: int) -> dict:
    return {"weights": np.full((8, 8), float(i))}


def test_reporter_only_inside_its_job() -> None:
    assert CheckpointReporter.from_env({}) is None
    assert CheckpointReporter.from_env({"CUMULUS_JOB_ID": JOB, "CUMULUS_JOB_TOKEN": TOKEN}) is None
    assert CheckpointReporter.from_env(job_env("127.0.0.1:1"), job_id="other-job") is None
    reporter = CheckpointReporter.from_env({**job_env("grpc://127.0.0.1:7/")}, job_id=JOB)
    assert reporter is not None and reporter.target == "127.0.0.1:7" and reporter.job_id == JOB


def test_outside_a_job_a_manager_reports_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("CUMULUS_ORCHESTRATOR_URL", "CUMULUS_JOB_ID", "CUMULUS_JOB_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    assert make_manager(tmp_path / "l1").reporter is None


def test_each_l1_save_is_reported_with_the_job_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, report_server: ReportServer
) -> None:
    for key, value in job_env(report_server.url).items():
        monkeypatch.setenv(key, value)
    manager = make_manager(tmp_path / "l1", job_id=JOB)
    assert manager.reporter is not None
    for step in (0, 10, 20):
        manager.save(state(step), step)
    assert manager.flush(timeout=10)
    assert report_server.steps("l1") == [0, 10, 20]
    job_id, step, tier, location, token = report_server.reports[-1]
    assert (job_id, step, tier, token) == (JOB, 20, "l1", TOKEN)
    assert location == str(manager.l1.step_dir(20))


def test_l2_uploads_are_reported_once_complete(
    tmp_path: Path, report_server: ReportServer, s3server: S3Server  # noqa: F811
) -> None:
    reporter = CheckpointReporter(report_server.url, JOB, TOKEN)
    manager = make_manager(tmp_path / "l1", s3server, job_id=JOB, reporter=reporter)
    manager.save(state(1), 1)
    manager.save(state(2), 2)
    assert manager.flush(timeout=30)
    assert report_server.steps("l1") == [1, 2]
    assert 2 in report_server.steps("l2")
    l2 = [r for r in report_server.reports if r[2] == "l2" and r[1] == 2][0]
    assert l2[3].startswith("s3://") and l2[3].endswith("/000000000002/"), l2[3]
    # Each L2 report follows its step's manifest: the step is complete in S3.
    assert any(k.endswith("/manifest.json") for k in s3server.keys(f"cumulus/{JOB}/"))


def test_an_absent_orchestrator_costs_saves_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Nothing listens on port 1; each report is retried for 1 s before it counts as failed.
    reporter = CheckpointReporter("127.0.0.1:1", JOB, TOKEN, retry_timeout=1.0)
    manager = make_manager(tmp_path / "l1", job_id=JOB, reporter=reporter)
    with caplog.at_level(logging.WARNING, logger="cumulus.checkpoint"):
        started = time.monotonic()
        for step in range(5):
            manager.save(state(step), step)
        saved = time.monotonic() - started
        manager.flush(timeout=5)
    assert saved < 2.0, f"5 saves took {saved:.2f}s"
    assert manager.restore() is not None and manager.restore().step == 4  # type: ignore[union-attr]
    assert reporter.failed >= 1 and not reporter.sent
    warnings = [r for r in caplog.records if "could not report checkpoint" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]


def test_a_hanging_orchestrator_never_blocks_a_save(tmp_path: Path, report_server: ReportServer) -> None:
    report_server.delay = 5.0
    reporter = CheckpointReporter(report_server.url, JOB, TOKEN, timeout=0.5)
    manager = make_manager(tmp_path / "l1", job_id=JOB, reporter=reporter)
    started = time.monotonic()
    manager.save(state(1), 1)
    manager.save(state(2), 2)
    assert time.monotonic() - started < 1.0
    started = time.monotonic()
    manager.flush(timeout=0.3)
    assert time.monotonic() - started < 1.0, "flush waited past its timeout for a report"
    # Each report gives up after its own timeout.
    assert reporter.flush(timeout=5)
    assert reporter.failed == 2 and not reporter.sent


def test_an_orchestrator_that_refuses_reports_turns_them_off(tmp_path: Path, report_server: ReportServer) -> None:
    report_server.refuse = grpc.StatusCode.FAILED_PRECONDITION
    reporter = CheckpointReporter(report_server.url, JOB, TOKEN)
    manager = make_manager(tmp_path / "l1", job_id=JOB, reporter=reporter)
    manager.save(state(1), 1)
    assert reporter.flush(timeout=5)
    assert not reporter.enabled
    manager.save(state(2), 2)
    assert reporter.flush(timeout=5)
    assert report_server.calls == 1
    assert manager.restore() is not None


def test_a_report_cut_by_a_restart_is_sent_again(tmp_path: Path, report_server: ReportServer) -> None:
    report_server.unavailable_first = 3
    reporter = CheckpointReporter(report_server.url, JOB, TOKEN)
    manager = make_manager(tmp_path / "l1", job_id=JOB, reporter=reporter)
    manager.save(state(1), 1)
    assert reporter.flush(timeout=10)
    assert report_server.steps("l1") == [1]
    assert report_server.calls == 4 and reporter.failed == 0
