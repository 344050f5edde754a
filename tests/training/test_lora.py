"""LoRA on a small transformer-like toy: starts as the base model, trains only adapters, merges exactly."""

import pytest
import torch
from torch import nn

from vlmkit.errors import ConfigError
from vlmkit.training.lora import LoRALinear, apply_lora, lora_state_dict, mark_only_lora_trainable, merge_lora


class Attention(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(dim, dim) for _ in range(3))
        self.o_proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        weights = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)
        return self.o_proj(weights @ v)


class Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = Attention(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm(x))
        return x + self.mlp(x)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(Block(8), Block(8))


def _x() -> torch.Tensor:
    return torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(1))


def _train_adapters(model: nn.Module, steps: int = 5) -> None:
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    target = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(2))
    for _ in range(steps):
        optimizer.zero_grad()
        ((model(_x()) - target) ** 2).mean().backward()
        optimizer.step()


def test_adapted_model_starts_equal_to_the_base_and_keeps_its_keys() -> None:
    model = _model()
    before = model(_x())
    original_keys = set(model.state_dict())
    names = apply_lora(model, ["q_proj", "v_proj"], rank=2, alpha=4.0)
    assert names == ["0.attn.q_proj", "0.attn.v_proj", "1.attn.q_proj", "1.attn.v_proj"]
    assert all(isinstance(model.get_submodule(n), LoRALinear) for n in names)
    torch.testing.assert_close(model(_x()), before, atol=0, rtol=0)
    keys = set(model.state_dict())
    assert original_keys <= keys
    assert keys - original_keys == {f"{n}.lora_{ab}.weight" for n in names for ab in "AB"}


def test_only_adapters_train_and_the_base_stays_put() -> None:
    model = _model()
    names = apply_lora(model, ["q_proj", "v_proj"], rank=2, alpha=4.0, dropout=0.1)
    trainable = mark_only_lora_trainable(model)
    assert trainable == len(names) * 2 * (8 * 2)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        f"{n}.lora_{ab}.weight" for n in names for ab in "AB"
    }
    frozen_before = {n: p.clone() for n, p in model.named_parameters() if not p.requires_grad}
    base_output = model.eval()(_x())
    _train_adapters(model.train())
    for name, param in model.named_parameters():
        if name in frozen_before:
            assert torch.equal(param, frozen_before[name]), name
    assert not torch.allclose(model.eval()(_x()), base_output, atol=1e-4)


def test_merge_gives_plain_linears_with_the_same_outputs_and_keys() -> None:
    reference = _model()
    model = _model()
    names = apply_lora(model, ["q_proj", "v_proj"], rank=2, alpha=4.0)
    mark_only_lora_trainable(model)
    _train_adapters(model)
    adapted_output = model(_x())
    assert merge_lora(model) == names
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert all(type(model.get_submodule(n)) is nn.Linear for n in names)
    torch.testing.assert_close(model(_x()), adapted_output, atol=1e-5, rtol=0)
    assert set(model.state_dict()) == set(reference.state_dict())
    reference.load_state_dict(model.state_dict())
    torch.testing.assert_close(reference(_x()), adapted_output, atol=1e-5, rtol=0)


def test_lora_state_dict_holds_the_adapters_and_restores_them() -> None:
    model = _model()
    names = apply_lora(model, ["q_proj", "v_proj"], rank=2, alpha=4.0)
    mark_only_lora_trainable(model)
    _train_adapters(model)
    adapters = lora_state_dict(model)
    assert set(adapters) == {f"{n}.lora_{ab}.weight" for n in names for ab in "AB"}

    restored = _model()
    apply_lora(restored, ["q_proj", "v_proj"], rank=2, alpha=4.0)
    result = restored.load_state_dict(adapters, strict=False)
    assert not result.unexpected_keys
    torch.testing.assert_close(restored(_x()), model(_x()), atol=0, rtol=0)


def test_unmatched_or_malformed_targets_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"\['query', 'value'\]"):
        apply_lora(_model(), ["query", "value"], rank=2, alpha=4.0)
    with pytest.raises(ConfigError, match="string"):
        apply_lora(_model(), "q_proj", rank=2, alpha=4.0)
    with pytest.raises(ConfigError, match="rank"):
        apply_lora(_model(), ["q_proj"], rank=0, alpha=4.0)
    with pytest.raises(ConfigError, match="no LoRA adapters"):
        mark_only_lora_trainable(_model())


def test_targets_match_whole_name_parts_and_wrapped_layers_are_not_rewrapped() -> None:
    model = _model()
    with pytest.raises(ConfigError, match="proj"):
        apply_lora(model, ["proj"], rank=1, alpha=1.0)
    assert apply_lora(model, ["mlp.0", "1.attn.o_proj"], rank=1, alpha=1.0) == ["0.mlp.0", "1.attn.o_proj", "1.mlp.0"]
    with pytest.raises(ConfigError, match=r"mlp\.0"):
        apply_lora(model, ["mlp.0"], rank=1, alpha=1.0)
