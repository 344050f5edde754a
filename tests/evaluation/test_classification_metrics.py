"""Top-K zero-shot accuracy: hand-computed cases, the tie rule, and agreement with torch.topk."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlmkit.errors import InputError
from vlmkit.evaluation import topk_accuracy


def test_ground_truth_logits_score_one() -> None:
    targets = np.array([2, 0, 1, 4])
    logits = np.eye(5)[targets]
    assert topk_accuracy(logits, targets) == {1: 1.0, 5: 1.0}


def test_hand_computed_case() -> None:
    logits = np.array(
        [
            [0.1, 0.9, 0.3, 0.2],  # target 1: rank 0
            [0.8, 0.1, 0.6, 0.2],  # target 2: rank 1
            [0.5, 0.4, 0.3, 0.2],  # target 3: rank 3
        ]
    )
    result = topk_accuracy(logits, np.array([1, 2, 3]), ks=(1, 2, 3, 4))
    assert result == pytest.approx({1: 1 / 3, 2: 2 / 3, 3: 2 / 3, 4: 1.0})


def test_ties_count_against_the_target() -> None:
    constant = torch.zeros(3, 10)
    assert topk_accuracy(constant, torch.tensor([0, 5, 9]), ks=(1, 9, 10)) == {1: 0.0, 9: 0.0, 10: 1.0}


def test_matches_torch_topk_on_random_logits() -> None:
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(200, 30, generator=generator)
    targets = torch.randint(0, 30, (200,), generator=generator)
    top5 = logits.topk(5, dim=1).indices
    expected1 = (top5[:, 0] == targets).float().mean().item()
    expected5 = (top5 == targets[:, None]).any(dim=1).float().mean().item()
    assert topk_accuracy(logits, targets) == pytest.approx({1: expected1, 5: expected5})


def test_half_precision_and_numpy_inputs_agree() -> None:
    logits = torch.tensor([[0.0, 1.0, 2.0], [3.0, 1.0, 0.0]])
    targets = torch.tensor([2, 1])
    expected = {1: 0.5, 5: 1.0}
    assert topk_accuracy(logits.bfloat16(), targets) == expected
    assert topk_accuracy(logits.numpy(), targets.numpy()) == expected


@pytest.mark.parametrize(
    ("logits", "targets"),
    [
        (np.zeros((2, 3)), np.array([0])),
        (np.zeros((2, 3)), np.array([0, 3])),
        (np.zeros((2, 3)), np.array([0.0, 1.0])),
        (np.array([[0.0, np.nan], [0.0, 1.0]]), np.array([0, 1])),
        (np.zeros(3), np.array([0])),
    ],
)
def test_bad_inputs_raise_input_error(logits: np.ndarray, targets: np.ndarray) -> None:
    with pytest.raises(InputError):
        topk_accuracy(logits, targets)
