"""The trainer's batch transfer: every tensor of a task's batch reaches the device, structure intact."""

from __future__ import annotations

import torch

from vlmkit.training.data import to_device


def test_to_device_moves_nested_tensors_and_keeps_the_rest():
    batch = (torch.zeros(2, 3), [torch.ones(1), None], {"mask": torch.ones(2, dtype=torch.bool), "name": "x"}, 7)
    moved = to_device(batch, torch.device("meta"))
    assert isinstance(moved, tuple) and isinstance(moved[1], list)
    assert moved[0].is_meta and moved[1][0].is_meta and moved[2]["mask"].is_meta
    assert moved[0].shape == (2, 3) and moved[2]["mask"].dtype == torch.bool
    assert moved[1][1] is None and moved[2]["name"] == "x" and moved[3] == 7
