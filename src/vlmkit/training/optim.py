"""AdamW with the usual weight-decay exclusions, per-module learning rates, and warm-up + cosine.

Weight decay pulls weights towards zero. That regularises matrices, but it is harmful for
parameters whose scale *is* their meaning: biases and norm gains (shift and scale), embeddings
(a token seen rarely would be decayed to nothing between its visits) and the contrastive
temperature and bias scalars (decay would drag the temperature towards 1). Those go to a group with
``weight_decay = 0``.

Both the optimiser and the schedule are plain torch objects, so ``state_dict()`` /
``load_state_dict()`` resume them exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from vlmkit.errors import ConfigError

NO_DECAY_NAME_PARTS = ("embed", "token", "logit_scale", "logit_bias")
"""A parameter whose own name (the last dotted part) contains one of these is never decayed:
``class_embedding``, ``position_embedding``, ``cls_token``, ``logit_scale``, ``logit_bias``. Only the
last part counts, so the convolution weight of a ``patch_embedding`` module (a projection) is decayed."""


def _decays(module: nn.Module, name: str, param: nn.Parameter) -> bool:
    if param.ndim < 2 or isinstance(module, nn.Embedding):
        return False
    own_name = name.rsplit(".", 1)[-1]
    return not any(part in own_name for part in NO_DECAY_NAME_PARTS)


def _module_lr(name: str, lr: float, per_module_lr: Mapping[str, float]) -> tuple[str, float]:
    """The longest prefix of ``per_module_lr`` owning ``name`` (at a dot boundary), or the default."""
    best = ""
    for prefix in per_module_lr:
        if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    return (best, per_module_lr[best]) if best else ("", lr)


def param_groups(
    model: nn.Module,
    weight_decay: float,
    lr: float,
    per_module_lr: Mapping[str, float] | None = None,
) -> list[dict]:
    """Trainable parameters of ``model`` split into optimiser groups by (learning rate, decay).

    ``per_module_lr`` maps a module prefix (``"vision"``, ``"decoder.layers.0"``) to its learning
    rate; the longest matching prefix wins and everything else gets ``lr``. A prefix that owns no
    trainable parameter is a ``ConfigError`` (it is almost always a typo). Frozen parameters
    (``requires_grad=False``) are left out. Each group carries a ``"name"`` such as
    ``"vision/no_decay"`` for logging; torch keeps extra keys in ``optimizer.param_groups``.
    """
    per_module_lr = dict(per_module_lr or {})
    owners = {
        f"{module_name}.{param_name}" if module_name else param_name: module
        for module_name, module in model.named_modules()
        for param_name, _ in module.named_parameters(recurse=False)
    }
    groups: dict[tuple[str, bool], dict] = {}
    used_prefixes: set[str] = set()
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        prefix, group_lr = _module_lr(name, lr, per_module_lr)
        used_prefixes.add(prefix)
        decay = _decays(owners[name], name, param)
        key = (prefix, decay)
        if key not in groups:
            label = f"{prefix or 'default'}/{'decay' if decay else 'no_decay'}"
            groups[key] = {
                "name": label,
                "params": [],
                "lr": group_lr,
                "weight_decay": weight_decay if decay else 0.0,
            }
        groups[key]["params"].append(param)
    unused = sorted(set(per_module_lr) - used_prefixes)
    if unused:
        raise ConfigError(f"per_module_lr: prefixes {unused} match no trainable parameter of the model")
    if not groups:
        raise ConfigError("optimizer: the model has no trainable parameters (all requires_grad=False)")
    return list(groups.values())


def build_optimizer(
    model: nn.Module,
    lr: float,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    per_module_lr: Mapping[str, float] | None = None,
    objective: nn.Module | None = None,
) -> torch.optim.AdamW:
    """AdamW over ``param_groups(model, ...)``, plus the trainable parameters of a training ``objective``
    (heads that train with the model but are not part of it) at the default learning rate.

    Uses the fused CUDA kernel when every trainable parameter is on a GPU (one kernel launch per
    step instead of several per tensor); elsewhere torch's default multi-tensor (foreach) path.
    CLIP-style recipes pass ``betas=(0.9, 0.98), eps=1e-6``.
    """
    groups = param_groups(model, weight_decay, lr, per_module_lr)
    if objective is not None and any(p.requires_grad for p in objective.parameters()):
        groups += [{**g, "name": f"objective:{g['name']}"} for g in param_groups(objective, weight_decay, lr)]
    on_cuda = all(p.is_cuda for group in groups for p in group["params"])
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, fused=True if on_cuda else None)


@dataclass(frozen=True)
class WarmupCosine:
    """Learning-rate multiplier at a step: linear from 0 over ``warmup_steps``, then a half cosine
    from 1 down to ``min_lr_ratio`` at ``total_steps``, and flat at ``min_lr_ratio`` after that.

    A callable object rather than a closure so that ``LambdaLR.state_dict()`` records its settings.
    """

    warmup_steps: int
    total_steps: int
    min_lr_ratio: float = 0.0

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return step / self.warmup_steps
        decay_steps = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / decay_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine


def warmup_cosine_schedule(
    optimizer: torch.optim.Optimizer,
    warmup_steps: int,
    total_steps: int,
    min_lr_ratio: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Scale every group's learning rate by ``WarmupCosine``; call ``scheduler.step()`` after each
    optimiser step. Per-group learning rates keep their ratios since the multiplier is shared.

    The multiplier is 0 before the first step, so the first update only fills AdamW's moments.
    """
    if total_steps < 1:
        raise ConfigError(f"total_steps: expected >= 1, got {total_steps}")
    if not 0 <= warmup_steps <= total_steps:
        raise ConfigError(f"warmup_steps: expected 0..total_steps ({total_steps}), got {warmup_steps}")
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ConfigError(f"min_lr_ratio: expected a value in [0, 1], got {min_lr_ratio}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(warmup_steps, total_steps, min_lr_ratio))
