"""The decoding layout: same values, shapes and parameters, either storage, still trainable."""

from __future__ import annotations

import torch
from torch import nn

from vlmkit.nn.gemv_layout import lay_out_


def test_relaid_weights_keep_values_and_parameters_and_skip_the_rest():
    torch.manual_seed(0)
    linear, half, row = nn.Linear(8, 6), nn.Linear(8, 6).bfloat16(), nn.Linear(8, 1)
    before, parameter, x = linear.weight.detach().clone(), linear.weight, torch.randn(3, 8)
    expected = linear(x)
    with torch.inference_mode():
        assert lay_out_([linear.weight, half.weight, row.weight], transposed=True) == 1
    assert linear.weight is parameter and linear.weight.shape == (6, 8)
    assert torch.equal(linear.weight, before) and linear.weight.t().is_contiguous()
    assert half.weight.is_contiguous() and row.weight.is_contiguous()
    assert lay_out_([linear.weight], transposed=True) == 0  # idempotent
    torch.testing.assert_close(linear(x), expected)
    linear(x).sum().backward()  # not an inference tensor, although re-laid in inference mode
    assert linear.weight.grad is not None and linear.weight.grad.shape == (6, 8)


def test_row_major_storage_comes_back_and_strided_views_are_left_alone():
    weight = torch.randn(6, 8)
    lay_out_([weight], transposed=True)
    assert lay_out_([weight], transposed=False) == 1 and weight.is_contiguous()
    assert lay_out_([weight], transposed=False) == 0
    view = torch.randn(6, 16)[:, ::2]  # neither layout: a strided view
    assert lay_out_([view], transposed=True) == 0 and lay_out_([view], transposed=False) == 0
