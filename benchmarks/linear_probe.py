"""A linear classifier as a measuring stick, shared by the probe benchmarks: how much of a label can a
single matrix read from some features in a few hundred Adam steps?"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def linear_probe_accuracy(
    x: torch.Tensor, y: list[str], x_val: torch.Tensor, y_val: list[str], steps: int, batch_size: int
) -> float:
    """Held-out accuracy (%) of a linear classifier trained on random batches of ``(x, y)``."""
    names = sorted(set(y))
    target = torch.tensor([names.index(label) for label in y])
    torch.manual_seed(0)
    linear = nn.Linear(x.shape[1], len(names))
    optimizer = torch.optim.Adam(linear.parameters(), 1e-3)
    for _ in range(steps):
        batch = torch.randint(0, len(x), (batch_size,))
        loss = F.cross_entropy(linear(x[batch]), target[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predicted = [names[i] for i in linear(x_val).argmax(1).tolist()]
    return 100 * sum(p == t for p, t in zip(predicted, y_val, strict=True)) / len(y_val)
