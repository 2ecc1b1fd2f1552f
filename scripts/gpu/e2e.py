#!/usr/bin/env python3
"""Issue 13 end to end: GPU jobs through Cumulus, checked with the Python SDK.

Runs against a running stack (scripts/gpu/run.sh starts one on the GPU machine) and prints one
table row per check, ``case | what | result | figures | PASS/FAIL``, then a summary line:

  a  ``client.run`` with ``gpu_memory=0.25`` returns the GPU's name, CUDA_VISIBLE_DEVICES, the
     GPU UUID and ``mem_get_info()``, and allocates 80 % of its partition
  b  the same function allocating 150 % of its partition fails with CUDA's out-of-memory error,
     and the job's reason names the partition
  c  two jobs of 0.5 run at the same time on the one GPU (overlapping start/end), both succeed
  d  a whole-GPU job (``gpu_count=1``) submitted while a 0.5 job runs stays QUEUED until that
     job ends, then starts
  e  deterministic training with ``cumulus.checkpoint``, once uninterrupted and once with its
     container removed midway (``docker rm -f``): it resumes from its checkpoint and the final
     weights' sha256 are equal
  f  overhead: chronos/bench/gpu_overhead.py's matmul workload timed bare on the host and inside
     a job with ``gpu_memory=0.5``, alternating rounds; ratio of medians <= 1.01 (goal 1.005)

``--cpu`` is a dry run of the plumbing on a machine without a GPU (PoCL's CPU device): the
CUDA-only assertions are skipped (marked so in the row), sizes are small, and (b) raises a
stand-in MemoryError. Usage::

    PYTHONPATH=src/sdk/python python3 scripts/gpu/e2e.py --url 127.0.0.1:50051 [--cpu] \\
        [--out DIR] [--only a,b] [--rounds 4]

Writes DIR/e2e.txt (the table, row by row as checks end) and DIR/e2e.json (every figure).
Exit status 0 when no check failed. Needs ``docker`` on PATH (DOCKER_HOST set) for (e).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GIB = 1 << 30

#: Environment variables a job reports back (its partition, its GPUs, the MPS wiring).
JOB_ENV_KEYS = (
    "CUMULUS_JOB_ID", "CUMULUS_ATTEMPT", "CUMULUS_PARTITION_ID", "CUMULUS_PARTITION_IDS",
    "CUMULUS_GPU_DEVICE", "CUMULUS_GPU_DEVICES", "CUMULUS_GPU_MEMORY", "CUMULUS_GPU_COUNT",
    "CUMULUS_GPU_MEMORY_BYTES", "CUMULUS_GPU_UUIDS", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES",
    "CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT",
)


# ---------------------------------------------------------------------------------------------
# Functions that run inside jobs. They are defined in __main__, so cloudpickle sends them by
# value; each imports what it needs itself.
# ---------------------------------------------------------------------------------------------


def job_facts() -> Dict[str, Any]:
    """What a job knows about itself: its env and its cumulus.current_job() context."""
    import os as _os

    from cumulus import current_job

    ctx = current_job()
    facts: Dict[str, Any] = {"env": {k: _os.environ.get(k) for k in JOB_ENV_KEYS}, "pid": _os.getpid()}
    if ctx is not None:
        facts["ctx"] = {
            "job_id": ctx.job_id, "attempt": ctx.attempt, "gpu_memory": ctx.gpu_memory,
            "gpu_count": ctx.gpu_count, "partition_id": ctx.partition_id, "device": ctx.device,
            "partition_ids": list(getattr(ctx, "partition_ids", ()) or ()),
            "devices": list(getattr(ctx, "devices", ()) or ()),
            "gpu_uuids": list(getattr(ctx, "gpu_uuids", ()) or ()),
            "gpu_memory_bytes": getattr(ctx, "gpu_memory_bytes", None),
        }
    return facts


def partition_bytes(facts: Dict[str, Any]) -> Optional[int]:
    """The partition's size from the job's context, else from CUMULUS_GPU_MEMORY_BYTES."""
    size = (facts.get("ctx") or {}).get("gpu_memory_bytes")
    if not size:
        raw = (facts.get("env") or {}).get("CUMULUS_GPU_MEMORY_BYTES") or ""
        size = int(raw) if raw.isdigit() else None
    return size


def alloc_job(share_of_partition: float, hold_s: float, cpu: bool) -> Dict[str, Any]:
    """Allocates ``share_of_partition`` of the job's GPU partition, holds it ``hold_s`` seconds.

    Returns the job's facts, the GPU's name, UUID, ``mem_get_info()`` before and after, and the
    wall-clock start and end (host clock: containers share it).
    """
    import time as _time

    facts = job_facts()
    facts["t_start"] = _time.time()
    if cpu:
        if share_of_partition > 1:
            raise MemoryError(f"dry run: a GPU job would allocate {share_of_partition:.0%} of its partition here")
        _time.sleep(hold_s)
        facts["t_end"] = _time.time()
        return facts
    import torch

    size = partition_bytes(facts)
    if not size:
        raise RuntimeError("no partition size: CUMULUS_GPU_MEMORY_BYTES is unset in the job")
    props = torch.cuda.get_device_properties(0)
    facts["device_name"] = torch.cuda.get_device_name()
    facts["torch_uuid"] = str(getattr(props, "uuid", ""))
    facts["mem_before"] = list(torch.cuda.mem_get_info())
    facts["partition_bytes"] = size
    n = int(size * share_of_partition)
    facts["asked_bytes"] = n
    block = torch.empty(n, dtype=torch.uint8, device="cuda")
    block.fill_(7)
    torch.cuda.synchronize()
    facts["mem_after"] = list(torch.cuda.mem_get_info())
    facts["allocated_bytes"] = block.numel()
    _time.sleep(hold_s)
    del block
    facts["t_end"] = _time.time()
    return facts


def whole_gpu_job(share_of_gpu: float, hold_s: float, cpu: bool) -> Dict[str, Any]:
    """A whole-GPU job: allocates ``share_of_gpu`` of the GPU's total memory (more than any
    fraction's partition would allow), holds it ``hold_s`` s, reports its start and end."""
    import time as _time

    facts = job_facts()
    facts["t_start"] = _time.time()
    if not cpu:
        import torch

        free, total = torch.cuda.mem_get_info()
        facts["mem_before"] = [free, total]
        facts["device_name"] = torch.cuda.get_device_name()
        block = torch.empty(int(total * share_of_gpu), dtype=torch.uint8, device="cuda")
        block.fill_(1)
        torch.cuda.synchronize()
        facts["allocated_bytes"] = block.numel()
        del block
    _time.sleep(hold_s)
    facts["t_end"] = _time.time()
    return facts


def train_job(steps: int, every: int, delay: float, cpu: bool) -> Dict[str, Any]:
    """Deterministic training that checkpoints with cumulus.checkpoint and resumes from it.

    Each step's batch comes from a generator seeded with the step number, so the data does not
    depend on where a run resumed; with deterministic algorithms an interrupted run ends with the
    same weights, bit for bit. Prints ``step N/STEPS`` after each checkpoint.
    """
    import hashlib
    import time as _time

    import torch

    from cumulus import checkpoint as ck

    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.set_num_threads(1)
    torch.manual_seed(0)
    dev = torch.device("cpu" if cpu else "cuda")
    model = torch.nn.Sequential(
        torch.nn.Linear(128, 512), torch.nn.GELU(), torch.nn.Linear(512, 512), torch.nn.GELU(),
        torch.nn.Linear(512, 10),
    ).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    start = 0
    restored = ck.restore(into={"model": model, "opt": opt})
    source = ""
    if restored is not None:
        start, source = restored.step, restored.source
        print(f"restored step {start} from {source}", flush=True)
    else:
        print("starting fresh", flush=True)
    loss = torch.zeros(())
    for step in range(start, steps):
        gen = torch.Generator().manual_seed(step)
        x = torch.randn(256, 128, generator=gen).to(dev)
        y = torch.randn(256, 10, generator=gen).to(dev)
        # MSE: elementwise ops and reductions, each deterministic on CUDA (no atomics).
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % every == 0:
            ck.save({"model": model, "opt": opt}, step + 1)
            print(f"step {step + 1}/{steps} loss {loss.item():.6f}", flush=True)
        _time.sleep(delay)
    digest = hashlib.sha256(b"".join(p.detach().cpu().numpy().tobytes() for p in model.parameters()))
    facts = job_facts()
    facts.update(sha256=digest.hexdigest(), start_step=start, restored_from=source, loss=float(loss.item()))
    return facts


def time_workload(steps: int, size: int, reps: int, warmup: int, cpu: bool) -> Dict[str, Any]:
    """Times ``reps`` runs of chronos/bench/gpu_overhead.py's matmul workload after ``warmup``
    untimed ones (a small CPU matmul loop with ``cpu``). Runs in a job and in the bare worker."""
    import time as _time

    if cpu:
        import torch

        def work(n: int, s: int) -> None:
            a, b = torch.randn(s, s), torch.randn(s, s)
            for _ in range(n):
                torch.matmul(a, b)
    else:
        import gpu_overhead
        import torch

        work = gpu_overhead.matmul_workload
    for _ in range(warmup):
        work(steps, size)
    times = []
    for _ in range(reps):
        t0 = _time.perf_counter()
        work(steps, size)
        times.append(_time.perf_counter() - t0)
    out: Dict[str, Any] = {"times_s": times, "torch": torch.__version__}
    if not cpu:
        out["device_name"] = torch.cuda.get_device_name()
    return out


# ---------------------------------------------------------------------------------------------
# The checks (run in this process, the client).
# ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the result table."""

    case: str
    what: str
    result: str = ""
    figures: str = ""
    status: str = "FAIL"  # PASS, FAIL or SKIP
    details: Dict[str, Any] = field(default_factory=dict)


def gib(n: Optional[float]) -> str:
    return "?" if n is None else f"{n / GIB:.1f} GiB"


def short(text: Any, limit: int = 160) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class E2E:
    """The checks, sharing one client and the run's settings."""

    def __init__(self, args: argparse.Namespace) -> None:
        from cumulus import CumulusClient

        self.args = args
        self.cpu = bool(args.cpu)
        self.client = CumulusClient(args.url, connect_timeout=10)
        self.rows: List[Row] = []
        self.out_dir = args.out
        os.makedirs(self.out_dir, exist_ok=True)
        self.table_path = os.path.join(self.out_dir, "e2e.txt")
        self.machine = machine_facts(self.cpu)
        self.host_uuid = self.machine.get("gpu_uuid", "")
        with open(self.table_path, "w", encoding="utf-8") as f:
            f.write(self.header())

    # -- output ----------------------------------------------------------------------------

    def header(self) -> str:
        m = self.machine
        mode = "CPU dry run (PoCL; CUDA-only assertions skipped)" if self.cpu else "GPU"
        return (
            f"# issue 13 end to end, {time.strftime('%Y-%m-%d %H:%M:%S')}, {mode}\n"
            f"# machine: {m.get('host')}, {m.get('cpus')} CPUs; GPU: {m.get('gpu', '-')}; "
            f"driver {m.get('driver', '-')}; torch {m.get('torch', '-')}; python {m.get('python')}\n"
            "case | what | result | figures | PASS/FAIL\n"
            "---- | ---- | ------ | ------- | ---------\n"
        )

    def emit(self, row: Row) -> None:
        self.rows.append(row)
        line = f"{row.case} | {row.what} | {row.result} | {row.figures} | {row.status}\n"
        print(f"\n>>> {line}", flush=True)
        with open(self.table_path, "a", encoding="utf-8") as f:
            f.write(line)

    def run_case(self, case: str, what: str, fn: Callable[[Row], None]) -> None:
        row = Row(case, what)
        print(f"\n=== {case}: {what}", flush=True)
        t0 = time.time()
        try:
            fn(row)
        except Exception as err:  # a broken check is a failed row, never an aborted run
            row.status = "FAIL"
            row.result = row.result or f"error: {type(err).__name__}: {short(err, 200)}"
            row.details["traceback"] = traceback.format_exc()
            traceback.print_exc()
        row.details["seconds"] = round(time.time() - t0, 1)
        self.emit(row)

    # -- helpers ---------------------------------------------------------------------------

    def submit(self, fn: Callable[..., Any], *args: Any, **opts: Any) -> Any:
        opts.setdefault("duration", 900)
        return self.client.submit(fn, *args, **opts)

    def watch_states(self, jobs: Dict[str, Any], stop: Callable[[], bool], timeout: float,
                     on_change: Optional[Callable[[str, str, float], None]] = None) -> List[List[Any]]:
        """Polls the jobs' states every 0.2 s until ``stop()`` or ``timeout``; returns the
        transitions as [seconds since the first poll, job name, state]."""
        t0 = time.time()
        last: Dict[str, str] = {}
        changes: List[List[Any]] = []
        while time.time() - t0 < timeout:
            for name, job in jobs.items():
                state = job.status
                if last.get(name) != state:
                    last[name] = state
                    changes.append([round(time.time() - t0, 2), name, state])
                    print(f"    t+{time.time() - t0:6.2f} s  {name}: {state}", flush=True)
                    if on_change:
                        on_change(name, state, time.time())
            if stop():
                break
            time.sleep(0.2)
        return changes

    def result_of(self, job: Any, timeout: float) -> Any:
        try:
            return job.result(timeout=timeout)
        except Exception:
            self.cancel_quietly(job)
            raise

    @staticmethod
    def cancel_quietly(job: Any) -> None:
        try:
            if not job.info().done:
                job.cancel()
        except Exception:
            pass

    # -- a -------------------------------------------------------------------------------------

    def case_a(self, row: Row) -> None:
        t0 = time.time()
        facts = self.client.run(alloc_job, 0.8, 0.0, self.cpu, gpu_memory=0.25, duration=600)
        took = time.time() - t0
        row.details["facts"] = facts
        env = facts["env"]
        uuids = (facts.get("ctx") or {}).get("gpu_uuids") or [u for u in (env.get("CUMULUS_GPU_UUIDS") or "").split(",") if u]
        part = env.get("CUMULUS_PARTITION_IDS") or env.get("CUMULUS_PARTITION_ID") or "-"
        if self.cpu:
            row.result = f"ran in {took:.1f} s on partition {part}, device {env.get('CUMULUS_GPU_DEVICE')}"
            row.figures = f"CUMULUS_GPU_MEMORY={env.get('CUMULUS_GPU_MEMORY')}, CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES')}"
            row.status = "PASS" if env.get("CUMULUS_JOB_ID") and part != "-" else "FAIL"
            row.result += " (CUDA checks skipped)"
            return
        size = facts.get("partition_bytes")
        # The GPU's size as the host sees it: inside an MPS client mem_get_info may report the limit.
        total = self.machine.get("gpu_memory_bytes") or facts["mem_before"][1]
        share = size / total if size and total else 0.0
        free0, seen_total = facts["mem_before"]
        row.result = f"{facts.get('device_name')}; allocated {gib(facts.get('allocated_bytes'))} = 80 % of its partition"
        row.figures = (
            f"partition {part} {gib(size)} ({share:.3f} of the GPU's {gib(total)}); "
            f"CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES')}; uuid {','.join(uuids) or '-'}; "
            f"mem_get_info in the job: {gib(free0)} free of {gib(seen_total)} before, {gib(facts['mem_after'][0])} "
            f"free after; MPS limit {env.get('CUDA_MPS_PINNED_DEVICE_MEM_LIMIT')}; {took:.1f} s"
        )
        ok = (
            "NVIDIA" in str(facts.get("device_name"))
            and facts.get("allocated_bytes") == facts.get("asked_bytes")
            and env.get("CUDA_VISIBLE_DEVICES") == "0"
            and bool(uuids)
            and (not self.host_uuid or uuids[0] == self.host_uuid)
            and 0.2 <= share <= 0.3
        )
        row.status = "PASS" if ok else "FAIL"

    # -- b -------------------------------------------------------------------------------------

    def case_b(self, row: Row) -> None:
        job = self.submit(alloc_job, 1.5, 0.0, self.cpu, gpu_memory=0.25)
        err: Optional[BaseException] = None
        try:
            self.result_of(job, timeout=300)
        except Exception as e:  # the function's own error comes back as its own type
            err = e
        info = job.info()
        reason_code = getattr(info, "reason_code", "")
        row.details.update(job=job.id, state=info.state, reason=info.reason, reason_code=reason_code,
                           exit_code=info.exit_code, error=repr(err)[:2000] if err else None)
        err_type = type(err).__name__ if err else "none"
        err_line = short(str(err).splitlines()[0] if err and str(err) else "", 140)
        row.result = f"job {info.state}: {err_type}: {err_line}"
        row.figures = f"reason: {short(info.reason, 140)!r}; reason_code {reason_code or '-'}; exit code {info.exit_code}"
        if self.cpu:
            row.status = "PASS" if info.state == "FAILED" and err is not None else "FAIL"
            row.result += " (dry run: stand-in MemoryError; OOM and partition reason not checked)"
            return
        oom = "OutOfMemory" in err_type or "out of memory" in str(err).lower()
        row.status = "PASS" if info.state == "FAILED" and oom and "partition" in info.reason.lower() else "FAIL"

    # -- c -------------------------------------------------------------------------------------

    def case_c(self, row: Row) -> None:
        hold = 3.0 if self.cpu else 6.0
        jobs = {name: self.submit(alloc_job, 0.8, hold, self.cpu, gpu_memory=0.5) for name in ("c1", "c2")}
        done = lambda: all(j.info().done for j in jobs.values())  # noqa: E731
        changes = self.watch_states(jobs, done, timeout=300)
        facts = {name: self.result_of(j, timeout=60) for name, j in jobs.items()}
        row.details.update(facts=facts, states=changes, jobs={n: j.id for n, j in jobs.items()})
        s1, e1 = facts["c1"]["t_start"], facts["c1"]["t_end"]
        s2, e2 = facts["c2"]["t_start"], facts["c2"]["t_end"]
        overlap = min(e1, e2) - max(s1, s2)
        parts = [facts[n]["env"].get("CUMULUS_PARTITION_ID") for n in ("c1", "c2")]
        devs = [facts[n]["env"].get("CUMULUS_GPU_DEVICE") for n in ("c1", "c2")]
        t0 = min(s1, s2)
        row.result = f"both SUCCEEDED; overlap {overlap:.1f} s of {hold:.0f} s holds"
        row.figures = (
            f"c1 {s1 - t0:.1f}-{e1 - t0:.1f} s on device {devs[0]} ({parts[0]}), "
            f"c2 {s2 - t0:.1f}-{e2 - t0:.1f} s on device {devs[1]} ({parts[1]})"
        )
        if not self.cpu:
            row.figures += "; each allocated " + ", ".join(gib(facts[n].get("allocated_bytes")) for n in ("c1", "c2"))
        row.status = "PASS" if overlap > 0 and parts[0] != parts[1] and devs[0] == devs[1] else "FAIL"

    # -- d -------------------------------------------------------------------------------------

    def case_d(self, row: Row) -> None:
        hold = 8.0 if self.cpu else 12.0
        half = self.submit(alloc_job, 0.5, hold, self.cpu, gpu_memory=0.5, job_name="d-half")
        t_sub = time.time()
        # Wait until the half job holds its partition, then ask the whole GPU.
        while half.status not in ("RUNNING",) and time.time() - t_sub < 180:
            if half.info().done:
                raise RuntimeError(f"the 0.5 job ended before the whole-GPU job was submitted: {half.info().state}")
            time.sleep(0.2)
        whole = self.submit(whole_gpu_job, 0.6, 2.0, self.cpu, gpu_count=1, job_name="d-whole")
        t_whole = time.time()
        queued_while_half_ran = []

        def seen(name: str, state: str, at: float) -> None:
            if name == "whole" and state == "QUEUED" and half.status == "RUNNING":
                queued_while_half_ran.append(at)

        jobs = {"half": half, "whole": whole}
        changes = self.watch_states(jobs, lambda: whole.info().done, timeout=300, on_change=seen)
        hf = self.result_of(half, timeout=60)
        wf = self.result_of(whole, timeout=60)
        wi = whole.info()
        row.details.update(states=changes, half=hf, whole=wf, jobs={"half": half.id, "whole": whole.id})
        waited = wf["t_start"] - t_whole
        after = wf["t_start"] - hf["t_end"]
        wenv = wf["env"]
        row.result = (
            f"whole-GPU job QUEUED while the 0.5 job ran, started {after:.1f} s after it ended "
            f"(waited {waited:.1f} s)"
        )
        row.figures = (
            "states " + ", ".join(f"{n}:{s}@{t:.1f}s" for t, n, s in changes)
            + f"; whole job: CUMULUS_GPU_MEMORY={wenv.get('CUMULUS_GPU_MEMORY')}, GPU_COUNT={wenv.get('CUMULUS_GPU_COUNT')}, "
            f"MPS limit {wenv.get('CUDA_MPS_PINNED_DEVICE_MEM_LIMIT') or 'none'}"
        )
        if not self.cpu:
            row.figures += f", allocated {gib(wf.get('allocated_bytes'))} of {gib(wf['mem_before'][1])}"
        ok = bool(queued_while_half_ran) and wf["t_start"] >= hf["t_end"] - 0.5 and wi.state == "SUCCEEDED"
        if not self.cpu:
            ok = ok and not wenv.get("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT")
        row.status = "PASS" if ok else "FAIL"

    # -- e -------------------------------------------------------------------------------------

    def case_e(self, row: Row) -> None:
        steps, every, delay = (120, 10, 0.05) if self.cpu else (200, 10, 0.05)
        opts = dict(gpu_memory=0.25, max_attempts=3, env={"CUBLAS_WORKSPACE_CONFIG": ":4096:8"})
        t0 = time.time()
        plain = self.submit(train_job, steps, every, delay, self.cpu, job_name="e-plain", **opts)
        pf = self.result_of(plain, timeout=300)
        t_plain = time.time() - t0
        t0 = time.time()
        cut = self.submit(train_job, steps, every, delay, self.cpu, job_name="e-interrupted", **opts)
        removed: Dict[str, Any] = {}
        lines: List[str] = []

        def follow() -> None:
            for line in cut.logs(follow=True):
                lines.append(line.text)
                if removed or not line.text.startswith("step "):
                    continue
                step = int(line.text.split()[1].split("/")[0])
                if step >= steps // 2:
                    removed.update(step=step, at=time.time(), containers=remove_job_containers(cut.id))
                    print(f"    removed the container(s) of {cut.id} at step {step}: {removed['containers']}", flush=True)

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        cf = self.result_of(cut, timeout=400)
        follower.join(timeout=10)
        t_cut = time.time() - t0
        ci = cut.info()
        row.details.update(plain=pf, interrupted=cf, removed=removed, attempts=ci.attempts,
                           jobs={"plain": plain.id, "interrupted": cut.id}, log_tail=lines[-30:])
        equal = pf["sha256"] == cf["sha256"]
        row.result = (
            f"container removed at step {removed.get('step', '-')}; attempt {ci.attempts} restored step "
            f"{cf.get('start_step')} from {cf.get('restored_from') or '-'}; sha256 {'EQUAL' if equal else 'DIFFERENT'}"
        )
        row.figures = (
            f"{steps} steps, checkpoint every {every}; uninterrupted {pf['sha256'][:16]}… in {t_plain:.1f} s, "
            f"interrupted {cf['sha256'][:16]}… in {t_cut:.1f} s; device {'cpu' if self.cpu else 'cuda'}"
        )
        ok = equal and bool(removed.get("containers")) and cf.get("start_step", 0) > 0 and ci.attempts >= 2
        row.status = "PASS" if ok else "FAIL"

    # -- f -------------------------------------------------------------------------------------

    def case_f(self, row: Row) -> None:
        a = self.args
        steps, size = (20, 256) if self.cpu else (a.steps, a.size)
        rounds, reps, warmup = a.rounds, a.reps, a.warmup
        bare: List[float] = []
        inside: List[float] = []
        per_round = []
        for r in range(rounds):
            order = ["bare", "job"] if r % 2 == 0 else ["job", "bare"]
            got: Dict[str, List[float]] = {}
            for kind in order:
                t0 = time.time()
                if kind == "bare":
                    got[kind] = bare_times(steps, size, reps, warmup, self.cpu)
                else:
                    res = self.client.run(time_workload, steps, size, reps, warmup, self.cpu, gpu_memory=0.5,
                                          duration=900, job_name=f"f-round{r}")
                    got[kind] = res["times_s"]
                print(f"    round {r} {kind:4s}: median {statistics.median(got[kind]) * 1000:9.2f} ms "
                      f"({len(got[kind])} reps, {time.time() - t0:.1f} s with start-up)", flush=True)
            bare += got["bare"]
            inside += got["job"]
            per_round.append(statistics.median(got["job"]) / statistics.median(got["bare"]))
        mb, mj = statistics.median(bare), statistics.median(inside)
        ratio = mj / mb
        stdev = 100 * statistics.stdev(bare) / statistics.mean(bare) if len(bare) > 1 else 0.0
        row.details.update(bare_s=bare, job_s=inside, per_round_ratio=per_round, ratio=ratio,
                           steps=steps, size=size, rounds=rounds, reps=reps, warmup=warmup, machine=self.machine)
        work = f"{steps} x bf16 matmul {size}x{size}" if not self.cpu else f"{steps} x CPU matmul {size}x{size}"
        row.result = f"ratio of medians {ratio:.4f} ({(ratio - 1) * 100:+.2f} %)"
        row.figures = (
            f"{work}; {rounds} alternating rounds x {reps} reps; median bare {mb * 1000:.2f} ms, in a 0.5 job "
            f"{mj * 1000:.2f} ms; per-round ratios {min(per_round):.4f}-{max(per_round):.4f}; bare stdev {stdev:.2f} %; "
            f"{self.machine.get('gpu', '-')}, driver {self.machine.get('driver', '-')}"
        )
        if self.cpu:
            row.status = "PASS"
            row.result += " (dry run: CPU workload, no threshold)"
        else:
            row.status = "PASS" if ratio <= 1.01 else "FAIL"
            row.result += "; goal <= 1.005 " + ("met" if ratio <= 1.005 else "not met")

    # -- all -------------------------------------------------------------------------------------

    def run(self, only: List[str]) -> int:
        cases = [
            ("a", "client.run, gpu_memory=0.25: device name, 80 % of the partition", self.case_a),
            ("b", "150 % of the partition: CUDA out of memory, reason names the partition", self.case_b),
            ("c", "two 0.5 jobs at once on the one GPU", self.case_c),
            ("d", "whole-GPU job waits for a running 0.5 job", self.case_d),
            ("e", "checkpointed training, container removed midway: same weights", self.case_e),
            ("f", "overhead: matmul bare vs in a 0.5 job, alternating", self.case_f),
        ]
        for case, what, fn in cases:
            if only and case not in only:
                continue
            self.run_case(case, what, fn)
        passed = sum(r.status == "PASS" for r in self.rows)
        failed = sum(r.status == "FAIL" for r in self.rows)
        summary = f"{passed} passed, {failed} failed"
        with open(self.table_path, "a", encoding="utf-8") as f:
            f.write(f"\n{summary}\n")
        with open(os.path.join(self.out_dir, "e2e.json"), "w", encoding="utf-8") as f:
            json.dump({"machine": self.machine, "cpu": self.cpu, "rows": [asdict(r) for r in self.rows],
                       "summary": summary}, f, indent=2, default=str)
        print("\n" + open(self.table_path, encoding="utf-8").read(), flush=True)
        self.client.close()
        return 0 if failed == 0 and self.rows else 1


def remove_job_containers(job_id: str) -> List[str]:
    """``docker rm -f`` of the job's containers (label cumulus.job=<id>), as the demo of
    ``cumulus up`` does; returns their ids."""
    ids = subprocess.run(["docker", "ps", "-q", "--filter", f"label=cumulus.job={job_id}"],
                         capture_output=True, text=True, check=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, text=True, check=True)
    return ids


def bare_times(steps: int, size: int, reps: int, warmup: int, cpu: bool) -> List[float]:
    """Runs the workload bare on the host, in a fresh process (as a job is one), and returns its
    per-rep times."""
    cmd = [sys.executable, os.path.abspath(__file__), "--bare-worker", "--steps", str(steps), "--size", str(size),
           "--reps", str(reps), "--warmup", str(warmup)] + (["--cpu"] if cpu else [])
    env = dict(os.environ)
    # The bare run is not an MPS client: no pipe directory of the agent's daemons.
    for key in ("CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", "CUDA_VISIBLE_DEVICES"):
        env.pop(key, None)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"bare worker failed ({done.returncode}): {short(done.stderr[-600:], 600)}")
    return json.loads(done.stdout.strip().splitlines()[-1])["times_s"]


def machine_facts(cpu: bool) -> Dict[str, Any]:
    facts: Dict[str, Any] = {
        "host": socket.gethostname(), "cpus": os.cpu_count(), "python": platform.python_version(),
    }
    try:
        import torch

        facts["torch"] = torch.__version__
    except ImportError:
        pass
    if not cpu:
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,uuid,memory.total", "--format=csv,noheader,nounits",
                 "-i", "0"], capture_output=True, text=True, timeout=30).stdout.strip()
            name, driver, uuid, mib = [s.strip() for s in out.split(",")[:4]]
            facts.update(gpu=name, driver=driver, gpu_uuid=uuid, gpu_memory_bytes=int(float(mib)) << 20)
        except Exception as err:
            facts["nvidia_smi_error"] = repr(err)
    return facts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default=os.environ.get("CUMULUS_ORCHESTRATOR_URL", "127.0.0.1:50051"))
    ap.add_argument("--cpu", action="store_true", help="dry run without a GPU (PoCL, CPU workloads)")
    ap.add_argument("--out", default=os.environ.get("OUT", "/tmp/cumulus-gpu-out"), help="where e2e.txt/e2e.json go")
    ap.add_argument("--only", default="", help="comma-separated cases to run (default: a-f)")
    ap.add_argument("--rounds", type=int, default=4, help="(f) alternating rounds")
    ap.add_argument("--reps", type=int, default=5, help="(f) timed repetitions per round and side")
    ap.add_argument("--warmup", type=int, default=2, help="(f) untimed repetitions first")
    ap.add_argument("--steps", type=int, default=400, help="(f) matmuls per repetition")
    ap.add_argument("--size", type=int, default=8192, help="(f) matrix size")
    ap.add_argument("--bare-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(ROOT, "chronos", "bench"))
    if args.bare_worker:
        print(json.dumps(time_workload(args.steps, args.size, args.reps, args.warmup, args.cpu)))
        return 0
    if not args.cpu:
        # A local module: the SDK ships it in the job's bundle, so time_workload imports it there too.
        import gpu_overhead  # noqa: F401
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    return E2E(args).run(only)


if __name__ == "__main__":
    sys.exit(main())
