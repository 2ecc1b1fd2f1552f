"""The `cumulus up` demo: a small PyTorch training job that survives losing
its container.

What it shows:
  * `cumulus.checkpoint.save(state, step)` every EVERY steps. The checkpoint
    lands on the worker's disk first (L1) and is uploaded in the background
    to S3 (L2) when the orchestrator hands the job an S3 bucket.
  * `cumulus.checkpoint.restore(into=...)` at start-up. On the first attempt
    there is nothing to restore; when the job is placed again after an
    infrastructure failure (`cumulus up` removes its container midway), it
    returns the newest checkpoint and training goes on from that step.

Run it yourself on a cluster with:
    cumulus run --env STEPS=600 -- python3 train.py

Environment: STEPS (total steps, default 300), EVERY (checkpoint interval,
default 25), STEP_DELAY (seconds slept per step so the run lasts long enough
to be interrupted, default 0.02).
"""
import os
import time

import torch

from cumulus import checkpoint


def batch(step: int) -> "tuple[torch.Tensor, torch.Tensor]":
    # Seeding by step number makes the data independent of where a run
    # resumed: an interrupted run sees the same batches as an uninterrupted one.
    gen = torch.Generator().manual_seed(step)
    x = torch.randn(64, 8, generator=gen)
    # A known linear target plus a little noise.
    y = x @ torch.arange(1.0, 9.0).unsqueeze(1) + 0.5 + 0.1 * torch.randn(64, 1, generator=gen)
    return x, y


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    steps = int(os.environ.get("STEPS", "300"))
    every = int(os.environ.get("EVERY", "25"))
    delay = float(os.environ.get("STEP_DELAY", "0.02"))

    model = torch.nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.002, momentum=0.9)

    # Resume if a previous attempt left a checkpoint (L1 first, then S3).
    first_step = 0
    restored = checkpoint.restore(into={"model": model, "optimizer": optimizer})
    if restored is None:
        print("no checkpoint: starting at step 0", flush=True)
    else:
        first_step = restored.step
        print(f"restored step {first_step} from {restored.source}", flush=True)

    loss = torch.tensor(0.0)
    for step in range(first_step, steps):
        x, y = batch(step)
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (step + 1) % every == 0:
            # Saves model and optimizer state under this step number.
            checkpoint.save({"model": model, "optimizer": optimizer}, step + 1)
            print(f"step {step + 1}/{steps} loss {loss.item():.4f}", flush=True)
        time.sleep(delay)

    # Wait (bounded) for background uploads so the last checkpoint is in S3.
    if not checkpoint.flush(timeout=60):
        print("warning: some checkpoint uploads did not finish", flush=True)
    bias = model.bias.item()
    print(f"RESULT steps={steps} loss={loss.item():.6f} bias={bias:.4f} (target 0.5)", flush=True)


if __name__ == "__main__":
    main()
