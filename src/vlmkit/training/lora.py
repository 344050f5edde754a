"""Low-rank adapters (LoRA, Hu et al. 2021) for the linear layers of any model.

A frozen weight ``W`` (out x in) is fine-tuned as ``W + (alpha / r) B A`` with ``A`` (r x in) and
``B`` (out x r), ``r`` much smaller than either side, so only ``r (in + out)`` numbers per layer
train and the optimiser state shrinks accordingly. ``B`` starts at zero, so the adapted model is
exactly the pretrained one at step 0; ``alpha / r`` keeps the update's scale roughly independent of
the rank chosen.

``LoRALinear`` keeps the wrapped layer's ``weight`` and ``bias`` as its own parameters, so the
state-dict keys of the pretrained weights do not change (``q_proj.weight`` stays ``q_proj.weight``,
next to the new ``q_proj.lora_A.weight`` and ``q_proj.lora_B.weight``), and ``merge_lora`` returns a
model whose keys are exactly the original ones: it saves and loads like the model never had adapters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vlmkit.errors import ConfigError

LORA_PARAM_PARTS = ("lora_A", "lora_B")


class LoRALinear(nn.Module):
    """``y = W x + b + (alpha / r) * B(A(dropout(x)))`` around a frozen ``nn.Linear``."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        if not isinstance(rank, int) or rank < 1:
            raise ConfigError(f"lora rank: expected a positive integer, got {rank!r}")
        if alpha <= 0:
            raise ConfigError(f"lora alpha: expected a positive number, got {alpha!r}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"lora dropout: expected a value in [0, 1), got {dropout!r}")
        self.in_features = base.in_features
        self.out_features = base.out_features
        self.rank = rank
        self.scaling = alpha / rank
        self.weight = base.weight
        self.bias = base.bias
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Linear(self.in_features, rank, bias=False, **factory)
        self.lora_B = nn.Linear(rank, self.out_features, bias=False, **factory)
        # A as nn.Linear's own default (Kaiming-uniform, a=sqrt(5)); B zero so the delta starts at 0.
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias) + self.scaling * self.lora_B(self.lora_A(self.dropout(x)))

    def delta_weight(self) -> torch.Tensor:
        """``(alpha / r) B A``, the adapter folded into the shape of ``W``."""
        return self.scaling * (self.lora_B.weight @ self.lora_A.weight)

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` computing the same function (up to rounding), with a fresh weight."""
        factory = {"device": self.weight.device, "dtype": self.weight.dtype}
        linear = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None, **factory)
        with torch.no_grad():
            linear.weight.copy_(self.weight + self.delta_weight())
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return linear

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}"


def _matches(name: str, suffixes: Sequence[str]) -> bool:
    return any(name == suffix or name.endswith("." + suffix) for suffix in suffixes)


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def apply_lora(
    model: nn.Module,
    target_modules: Sequence[str],
    rank: int,
    alpha: float,
    dropout: float = 0.0,
) -> list[str]:
    """Wrap every ``nn.Linear`` whose name ends with one of ``target_modules`` in a ``LoRALinear``.

    A target matches whole name parts: ``"q_proj"`` matches ``layers.0.attn.q_proj`` but not
    ``layers.0.attn.xq_proj``. Only plain ``nn.Linear`` layers qualify: subclasses such as
    ``nn.MultiheadAttention.out_proj`` are read by their owner directly, so wrapping them would
    silently do nothing (and a wrapped layer is never wrapped twice). The model is changed in
    place; returns the wrapped names. Only the wrapped layers' base weights are frozen; call
    ``mark_only_lora_trainable`` to freeze the rest of the model too.
    """
    if isinstance(target_modules, str):
        raise ConfigError(f"lora target_modules: expected a list of names, got the string {target_modules!r}")
    names = [
        name
        for name, module in model.named_modules()
        if type(module) is nn.Linear and name and _matches(name, target_modules)
    ]
    if not names:
        raise ConfigError(
            f"lora target_modules: no unwrapped nn.Linear layer of the model is named {list(target_modules)}"
        )
    for name in names:
        _replace(model, name, LoRALinear(model.get_submodule(name), rank, alpha, dropout))
    return names


def merge_lora(model: nn.Module) -> list[str]:
    """Fold every adapter into a plain ``nn.Linear`` (in place, for export); returns the merged names."""
    names = [name for name, module in model.named_modules() if isinstance(module, LoRALinear)]
    for name in names:
        _replace(model, name, model.get_submodule(name).merged())
    return names


def _is_lora_name(name: str) -> bool:
    return any(part in LORA_PARAM_PARTS for part in name.split("."))


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter weights alone, under the model's own keys (load with ``strict=False``)."""
    return {name: tensor for name, tensor in model.state_dict().items() if _is_lora_name(name)}


def mark_only_lora_trainable(model: nn.Module) -> int:
    """Freeze every parameter except the adapters'; returns the number of trainable elements."""
    trainable = 0
    for name, param in model.named_parameters():
        keep = _is_lora_name(name)
        param.requires_grad_(keep)
        trainable += param.numel() if keep else 0
    if trainable == 0:
        raise ConfigError("mark_only_lora_trainable: the model has no LoRA adapters; call apply_lora first")
    return trainable
