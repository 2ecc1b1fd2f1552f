#!/usr/bin/env python3
"""GPU overhead of running a PyTorch workload inside a Chronos partition.

The same fixed workload runs "bare" and "inside a partition", in alternating rounds (the order
flips every round so clock and thermal drift hit both alike). Inside a partition means what a
Cumulus job goes through: Chronos creates the partition through its C ABI (libchronos.so, here
via ctypes), PyTorch's allocator is capped at the partition's fraction of the device
(torch.cuda.set_per_process_memory_fraction), the workload runs, and the partition is released.
The timed region of a partition round includes create and release.

Reports per-round times, the medians and the overhead ratio median(partition) / median(bare).

    python3 chronos/bench/gpu_overhead.py --lib chronos/build-gpu/libchronos.so --json out.json
"""
import argparse
import ctypes
import json
import statistics
import sys
import tempfile
import time

import torch


class Chronos:
    """The few C ABI calls this benchmark needs (see chronos/include/chronos.h)."""

    def __init__(self, lib_path: str, state_dir: str) -> None:
        self.lib = ctypes.CDLL(lib_path)
        self.lib.chronos_init.restype = ctypes.c_void_p
        self.lib.chronos_init.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        self.lib.chronos_shutdown.argtypes = [ctypes.c_void_p]
        self.lib.chronos_last_error.restype = ctypes.c_char_p
        self.lib.chronos_create.argtypes = [
            ctypes.c_void_p, ctypes.c_uint32, ctypes.c_double, ctypes.c_double,
            ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_size_t),
        ]
        self.lib.chronos_release.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_size_t),
        ]
        self.lib.chronos_device_info.argtypes = [
            ctypes.c_void_p, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_size_t),
        ]
        self.handle = self.lib.chronos_init(state_dir.encode(), None)
        if not self.handle:
            raise RuntimeError(f"chronos_init: {self.lib.chronos_last_error().decode()}")
        self.buf = ctypes.create_string_buffer(4096)

    def _check(self, rc: int, what: str) -> dict:
        if rc != 0:
            raise RuntimeError(f"{what} failed ({rc}): {self.buf.value.decode()}")
        return json.loads(self.buf.value.decode())

    def device_info(self, index: int) -> dict:
        rc = self.lib.chronos_device_info(self.handle, index, self.buf, len(self.buf), None)
        return self._check(rc, "chronos_device_info")

    def create(self, device: int, memory: float, duration_s: float, owner: str) -> dict:
        rc = self.lib.chronos_create(self.handle, device, memory, duration_s, owner.encode(),
                                     None, self.buf, len(self.buf), None)
        return self._check(rc, "chronos_create")

    def release(self, partition_id: str) -> None:
        rc = self.lib.chronos_release(self.handle, partition_id.encode(), self.buf,
                                      len(self.buf), None)
        self._check(rc, "chronos_release")

    def close(self) -> None:
        self.lib.chronos_shutdown(self.handle)


def matmul_workload(steps: int, size: int) -> None:
    """A fixed number of large bf16 matrix products (tensors allocated inside the round, so the
    partition's memory cap applies to them)."""
    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    c = torch.empty(size, size, device="cuda", dtype=torch.bfloat16)
    for _ in range(steps):
        torch.matmul(a, b, out=c)
    torch.cuda.synchronize()


def train_workload(steps: int, width: int) -> None:
    """A fixed number of training steps of a 4-layer MLP (AdamW, bf16 autocast)."""
    torch.manual_seed(0)
    # Built on the GPU directly: initialising 200 M parameters on the CPU would dominate (and
    # add CPU noise to) a round.
    dev = torch.device("cuda")
    model = torch.nn.Sequential(
        torch.nn.Linear(width, width, device=dev), torch.nn.GELU(),
        torch.nn.Linear(width, width, device=dev), torch.nn.GELU(),
        torch.nn.Linear(width, width, device=dev), torch.nn.GELU(),
        torch.nn.Linear(width, 16, device=dev),
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(width, width, device="cuda")
    y = torch.randint(0, 16, (width,), device="cuda")
    for _ in range(steps):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    torch.cuda.synchronize()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lib", required=True, help="path of libchronos.so")
    ap.add_argument("--workload", choices=["matmul", "train"], default="matmul")
    ap.add_argument("--rounds", type=int, default=10, help="timed rounds of each kind")
    ap.add_argument("--steps", type=int, default=400, help="matmuls or training steps per round")
    ap.add_argument("--size", type=int, default=8192, help="matrix size / MLP width")
    ap.add_argument("--fraction", type=float, default=0.5, help="partition memory fraction")
    ap.add_argument("--device", type=int, default=0, help="Chronos device index (= CUDA device)")
    ap.add_argument("--json", help="write the results here as JSON")
    args = ap.parse_args()

    torch.cuda.set_device(args.device)
    work = matmul_workload if args.workload == "matmul" else train_workload
    state_dir = tempfile.mkdtemp(prefix="chronos-gpu-")
    chronos = Chronos(args.lib, state_dir)
    device = chronos.device_info(args.device)
    print(f"Chronos device {args.device}: {device['name']} ({device['platform']}, "
          f"{device['total_memory_bytes'] / 2**30:.1f} GiB); CUDA device: "
          f"{torch.cuda.get_device_name(args.device)}; torch {torch.__version__}", flush=True)

    def bare() -> float:
        t0 = time.perf_counter()
        work(args.steps, args.size)
        return time.perf_counter() - t0

    def in_partition() -> float:
        t0 = time.perf_counter()
        p = chronos.create(args.device, args.fraction, 3600, "gpu-bench")
        torch.cuda.set_per_process_memory_fraction(p["memory"], args.device)
        try:
            work(args.steps, args.size)
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0, args.device)
            chronos.release(p["id"])
        return time.perf_counter() - t0

    for _ in range(2):  # warm-up: kernels selected, allocator pools filled, clocks up
        bare()
        in_partition()
    times = {"bare": [], "partition": []}
    for r in range(args.rounds):
        order = [("bare", bare), ("partition", in_partition)]
        if r % 2:
            order.reverse()
        for name, fn in order:
            times[name].append(fn())
            print(f"round {r:2d} {name:9s} {times[name][-1] * 1000:9.2f} ms", flush=True)
    chronos.close()

    med_bare = statistics.median(times["bare"])
    med_part = statistics.median(times["partition"])
    pair_ratios = [p / b for p, b in zip(times["partition"], times["bare"])]
    result = {
        "workload": args.workload,
        "steps": args.steps,
        "size": args.size,
        "fraction": args.fraction,
        "rounds": args.rounds,
        "opencl_device": device["name"],
        "cuda_device": torch.cuda.get_device_name(args.device),
        "torch": torch.__version__,
        "bare_s": times["bare"],
        "partition_s": times["partition"],
        "median_bare_s": med_bare,
        "median_partition_s": med_part,
        "overhead_ratio": med_part / med_bare,
        "median_pair_ratio": statistics.median(pair_ratios),
        "bare_stdev_pct": 100 * statistics.stdev(times["bare"]) / statistics.mean(times["bare"]),
    }
    print(f"{args.workload}: median bare {med_bare * 1000:.2f} ms, in partition "
          f"{med_part * 1000:.2f} ms, overhead ratio {result['overhead_ratio']:.4f} "
          f"({(result['overhead_ratio'] - 1) * 100:+.2f} %), median pair ratio "
          f"{result['median_pair_ratio']:.4f}, bare run-to-run stdev "
          f"{result['bare_stdev_pct']:.2f} %", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
