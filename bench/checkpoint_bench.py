"""Measurements behind bench/checkpoint_bench.ts (run with Debian's /usr/bin/python3).

Each mode prints one JSON object on its last stdout line. Every figure has a
baseline taken in the same process, alternating with the measured path so
that machine noise hits both alike.

  l1     checkpoint.save of a PyTorch model + Adam state to an L1 directory on
         disk, vs writing the same number of bytes with os.write + fsync.
  l2     the L2 uploader storing a one-file checkpoint in S3 (save returns,
         then flush), vs boto3's upload_file (multipart, default TransferConfig)
         of the same file to the same server. The uploader goes the way a job's
         does: no keys, every request to a URL presigned over a gRPC
         Runtime.PresignCheckpoint call (a local server playing the
         orchestrator, src/sdk/python/tests/runtime_server.py's Presigner);
         BENCH_L2_PRESIGN=0 signs with the keys in-process instead;
         BENCH_L2_GATE=<origin> presigns for an S3 gate at that origin (the
         orchestrator's, as under `cumulus up`), which relays to the server;
         the baseline still goes to the server directly.
  train  training-step time with a Checkpointer every N steps (L1 + L2) vs none,
         in alternating blocks of N steps (see bench_train).

S3 settings come from CUMULUS_S3_* / AWS_* (the TypeScript side starts s3rver).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List


def wait_background_prunes() -> None:
    # L1 pruning deletes old steps on a thread; let it finish before the
    # next timed operation so that the two never overlap.
    for t in threading.enumerate():
        if t.name.startswith("cumulus-ckpt-prune"):
            t.join()


def quiesce() -> None:
    wait_background_prunes()
    os.sync()
    time.sleep(0.2)


def raw_write(path: Path, buf: memoryview) -> float:
    t0 = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    view = buf
    while len(view):
        view = view[os.write(fd, view) :]
    os.fsync(fd)
    os.close(fd)
    return time.perf_counter() - t0


def bench_l1(reps: int, params_m: int) -> Dict[str, Any]:
    import torch

    from cumulus.checkpoint import CheckpointConfig, CheckpointManager

    torch.manual_seed(0)
    width = 2048
    layers = max(1, params_m * 1_000_000 // (width * width))
    # BENCH_L1_DEVICE=cuda: the state lives on the GPU and is copied out while saving.
    device = os.environ.get("BENCH_L1_DEVICE", "cpu")
    model = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(layers)]).to(device)
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(2, width, device=device)).sum().backward()
    opt.step()
    work = Path(tempfile.mkdtemp(prefix="cumulus-bench-l1-", dir=os.environ.get("BENCH_DIR")))
    try:
        manager = CheckpointManager(CheckpointConfig(directory=work / "l1"))
        nbytes = manager.save({"model": model, "opt": opt}, 0, keep_last=1).total_bytes
        buf = memoryview(bytearray(os.urandom(1 << 20)) * (nbytes // (1 << 20) + 1))[:nbytes]
        ours: List[float] = []
        raw: List[float] = []
        for i in range(1, reps + 1):
            for first in ((0, 1) if i % 2 else (1, 0)):
                quiesce()
                if first == 0:
                    t0 = time.perf_counter()
                    manager.save({"model": model, "opt": opt}, i, keep_last=1)
                    ours.append(time.perf_counter() - t0)
                else:
                    raw.append(raw_write(work / "raw.bin", buf))
                    os.unlink(work / "raw.bin")
        wait_background_prunes()
        return {
            "bytes": nbytes,
            "device": device,
            "layers": layers,
            "reps": reps,
            "ours_s": statistics.median(ours),
            "raw_s": statistics.median(raw),
            "pair_ratios": [r / o for r, o in zip(raw, ours)],
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench_l2(reps: int, megabytes: int) -> Dict[str, Any]:
    import numpy as np

    from cumulus.checkpoint import CheckpointConfig, CheckpointManager
    from cumulus.checkpoint.l2 import make_s3_client

    config = CheckpointConfig.from_env()
    assert config.s3 is not None, "CUMULUS_S3_BUCKET must be set"
    work = Path(tempfile.mkdtemp(prefix="cumulus-bench-l2-", dir=os.environ.get("BENCH_DIR")))
    presigner = None
    try:
        client = make_s3_client(config.s3)  # the baseline's own client, with the keys
        settings = config.s3
        if os.environ.get("BENCH_L2_PRESIGN", "1") == "1":
            gate = os.environ.get("BENCH_L2_GATE", "")
            presigner = _start_presigner(config.s3, gate or config.s3.endpoint)
            settings = dataclasses.replace(
                config.s3, access_key_id=None, secret_access_key=None, presign=True, endpoint=gate or config.s3.endpoint
            )
        config = CheckpointConfig(directory=work / "l1", job_id="bench-l2", s3=settings)
        manager = CheckpointManager(config, report=False)
        arr = np.random.RandomState(0).randint(0, 255, megabytes << 20, dtype=np.uint8)
        # The baseline uploads a copy of the very file a checkpoint of ``arr`` is.
        manager.save({"weights": arr}, 0, keep_last=1)
        assert manager.flush(timeout=600)
        source = work / "weights.npy"
        shutil.copyfile(manager.l1.step_dir(0) / "weights.npy", source)
        nbytes = source.stat().st_size
        ours: List[float] = []
        raw: List[float] = []
        for i in range(1, reps + 1):
            for first in ((0, 1) if i % 2 else (1, 0)):
                quiesce()
                if first == 0:
                    manager.save({"weights": arr}, i, keep_last=1)
                    t0 = time.perf_counter()  # the upload starts when save returns
                    assert manager.flush(timeout=600), "upload did not finish"
                    ours.append(time.perf_counter() - t0)
                else:
                    key = f"bench-raw/{i}/weights.npy"  # the baseline signs with the keys itself
                    t0 = time.perf_counter()
                    client.upload_file(str(source), config.s3.bucket, key)
                    raw.append(time.perf_counter() - t0)
                    client.delete_object(Bucket=config.s3.bucket, Key=key)
        return {
            "bytes": nbytes,
            "reps": reps,
            "ours_s": statistics.median(ours),
            "raw_s": statistics.median(raw),
            "pair_ratios": [r / o for r, o in zip(raw, ours)],
            "presigned": presigner is not None,
        }
    finally:
        if presigner is not None:
            presigner.stop(grace=None)
        shutil.rmtree(work, ignore_errors=True)


def _start_presigner(s3: Any, endpoint: str) -> Any:
    """A local Runtime server presigning for job ``bench-l2`` (URLs for ``endpoint``);
    sets the job env that the upload worker inherits (and drops the keys from it)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src" / "sdk" / "python" / "tests"))
    from runtime_server import Presigner, start_presign_server

    keys = (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
    state = Presigner(endpoint, s3.bucket, f"{s3.prefix}/bench-l2/", keys)
    server = start_presign_server(state)
    os.environ.update(CUMULUS_ORCHESTRATOR_URL=state.url, CUMULUS_JOB_ID="bench-l2", CUMULUS_JOB_TOKEN="bench")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.pop(name, None)
    return server


def bench_train(every: int, rounds: int, chunk: int = 25) -> Dict[str, Any]:
    """``rounds`` x ``every`` training steps with a Checkpointer, as many without.

    The machine is shared, and its load changes faster than runs of a few
    seconds, so the two are interleaved finely, in chunks of ``chunk`` steps.
    A round starts with the chunk holding its save; while the save's upload
    to S3 runs, only "with" chunks run (so every chunk the upload overlaps is
    counted against checkpointing), then as many "without" chunks, then the
    rest alternately. An upload outlasting the round's "with" chunks is
    waited for and the wait counted (more than it costs in a steady run).
    """
    import torch

    from cumulus.checkpoint import CheckpointConfig, CheckpointManager, Checkpointer, rng_state

    # The training thread computes on one core; background work (the
    # uploader and boto3's threads, and s3rver, which the caller pins to the
    # same core) goes to the other: a stand-in for a GPU host, whose CPU
    # cores are spare while the GPU trains and whose S3 is remote.
    torch.set_num_threads(1)
    cpus = sorted(os.sched_getaffinity(0))
    pin = len(cpus) >= 2 and os.environ.get("BENCH_PIN", "1") == "1"
    if pin:
        os.sched_setaffinity(0, {cpus[-1]})  # threads started from now on inherit this
    env_cfg = CheckpointConfig.from_env()
    work = Path(tempfile.mkdtemp(prefix="cumulus-bench-train-", dir=os.environ.get("BENCH_DIR")))
    try:
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(784, 512), torch.nn.ReLU(),
            torch.nn.Linear(512, 512), torch.nn.ReLU(),
            torch.nn.Linear(512, 10),
        )  # fmt: skip
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x, y = torch.randn(64, 784), torch.randint(0, 10, (64,))
        config = CheckpointConfig(directory=work / "l1", job_id=f"bench-train-{every}", s3=env_cfg.s3)
        manager = CheckpointManager(config)
        ckpt = Checkpointer(every_n_steps=every, manager=manager, save_on_preempt=False)
        blocking = [0.0]
        saves = [0]

        def run(first: int, count: int, checkpoints: bool) -> float:
            t0 = time.perf_counter()
            for step in range(first, first + count):
                loss = torch.nn.functional.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if checkpoints:
                    s0 = time.perf_counter()
                    state = lambda: {"model": model, "opt": opt, "rng": rng_state()}  # noqa: E731
                    saves[0] += ckpt.maybe_save(state, step)
                    blocking[0] += time.perf_counter() - s0
            return time.perf_counter() - t0

        ckpt.save(lambda: {"model": model, "opt": opt, "rng": rng_state()}, 0)  # starts the uploader
        manager.flush(timeout=600)
        if pin:
            os.sched_setaffinity(0, {cpus[0]})  # this (training) thread only
        run(1, 2 * chunk, False)  # warm-up: allocator, caches
        with_ckpt: List[float] = []
        without: List[float] = []
        uploader = manager.uploader
        quiesce()
        for r in range(1, rounds + 1):
            starts = list(range(r * every, (r + 1) * every, chunk))
            todo = {True: list(starts), False: list(starts)}

            def one(checkpoints: bool) -> None:
                first = todo[checkpoints].pop(0)
                n = min(chunk, (r + 1) * every - first)
                (with_ckpt if checkpoints else without).append(run(first, n, checkpoints))

            # The save and the chunks its upload overlaps, then as many
            # chunks without, right after them (the same machine load) ...
            one(True)
            busy = 1
            while uploader is not None and uploader.pending() > 0:
                if not todo[True]:
                    t0 = time.perf_counter()
                    manager.flush(timeout=600)
                    with_ckpt.append(time.perf_counter() - t0)
                    break
                one(True)
                busy += 1
            for _ in range(min(busy, len(todo[False]))):
                one(False)
            # ... then the rest alternately, so neither side sits at one end.
            turn = r % 2 == 0
            while todo[True] or todo[False]:
                side = turn if todo[turn] else not turn
                one(side)
                turn = not side
        ckpt_bytes = manager.l1.read_manifest(manager.l1.steps()[0]).total_bytes
        manager.close(timeout=60)
        return {
            "every": every,
            "rounds": rounds,
            "chunk": chunk,
            "steps": rounds * every,
            "saves": saves[0],
            "ckpt_bytes": ckpt_bytes,
            "with_s": sum(with_ckpt),
            "without_s": sum(without),
            "step_ms": statistics.median(without) / min(chunk, every) * 1000,
            "blocking_s": blocking[0],
            "l2": env_cfg.s3 is not None,
            "pinned": pin,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    mode = sys.argv[1]
    if mode == "l1":
        out = bench_l1(int(os.environ.get("BENCH_L1_REPS", "7")), int(os.environ.get("BENCH_L1_PARAMS_M", "32")))
    elif mode == "l2":
        out = bench_l2(int(os.environ.get("BENCH_L2_REPS", "3")), int(os.environ.get("BENCH_L2_MB", "128")))
    elif mode == "train":
        every = int(sys.argv[2])
        out = bench_train(every, int(sys.argv[3]))
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
