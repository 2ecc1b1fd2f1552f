"""The PyTorch acceptance function: a small model trained on synthetic data.

Run remotely through ``client.run`` and locally with the same seed; the two
state dicts must give the same loss on a held-out batch. One thread, so the
floating-point reduction order is the same on both sides.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple


def synthetic(seed: int, n: int) -> Tuple[Any, Any]:
    """``n`` samples of a noisy nonlinear regression, from ``seed``."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    w = torch.linspace(-1.0, 1.0, 8)
    y = torch.sin(x @ w).unsqueeze(1) + 0.05 * torch.randn(n, 1, generator=g)
    return x, y


def train(seed: int = 0, steps: int = 300) -> Dict[str, Any]:
    """Train a 8-32-1 MLP with Adam for ``steps`` steps; return its state dict."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = synthetic(seed, 512)
    for step in range(steps):
        idx = torch.arange(step * 64, step * 64 + 64) % 512
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        if step % 100 == 0:
            print(f"step {step} loss {loss.item():.5f}")
    return model.state_dict()


def held_out_loss(state: Dict[str, Any]) -> float:
    """MSE of the model with ``state`` on a batch it never saw."""
    import torch

    torch.set_num_threads(1)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    model.load_state_dict(state)
    x, y = synthetic(12345, 256)
    with torch.no_grad():
        return float(torch.nn.functional.mse_loss(model(x), y))
