"""Weight-decay exclusions, per-module learning rates, the warm-up + cosine schedule, and resume."""

import copy
import math

import pytest
import torch
from torch import nn

from vlmkit.errors import ConfigError
from vlmkit.training.optim import build_optimizer, param_groups, warmup_cosine_schedule


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.patch_embedding = nn.Conv2d(3, 8, kernel_size=2)
        self.class_embedding = nn.Parameter(torch.randn(8))
        self.position_embedding = nn.Parameter(torch.randn(5, 8))
        self.vision = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8))
        self.text = nn.ModuleDict({"token_embedding": nn.Embedding(10, 8), "proj": nn.Linear(8, 8, bias=False)})
        self.frozen = nn.Linear(8, 8)
        self.frozen.requires_grad_(False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.logit_bias = nn.Parameter(torch.tensor(-10.0))

    def forward(self, pixels: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embedding(pixels).flatten(2).transpose(1, 2) + self.position_embedding[:4]
        image = self.vision(patches + self.class_embedding).mean(1)
        text = self.text["proj"](self.text["token_embedding"](tokens).mean(1))
        return (self.logit_scale.exp() * (self.frozen(image) * text).sum(-1) + self.logit_bias).mean()


def _names(model: nn.Module, group: dict) -> set[str]:
    ids = {id(p) for p in group["params"]}
    return {name for name, p in model.named_parameters() if id(p) in ids}


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    return torch.randn(2, 3, 3, 3, generator=generator), torch.randint(0, 10, (2, 4), generator=generator)


def test_decay_only_on_matrices_that_are_not_embeddings() -> None:
    model = Toy()
    groups = {g["name"]: g for g in param_groups(model, weight_decay=0.1, lr=1e-3)}
    assert set(groups) == {"default/decay", "default/no_decay"}
    assert _names(model, groups["default/decay"]) == {"patch_embedding.weight", "vision.0.weight", "text.proj.weight"}
    assert _names(model, groups["default/no_decay"]) == {
        "patch_embedding.bias",
        "class_embedding",
        "position_embedding",
        "vision.0.bias",
        "vision.1.weight",
        "vision.1.bias",
        "text.token_embedding.weight",
        "logit_scale",
        "logit_bias",
    }
    assert groups["default/decay"]["weight_decay"] == 0.1
    assert groups["default/no_decay"]["weight_decay"] == 0.0


def test_per_module_lr_uses_the_longest_prefix() -> None:
    model = Toy()
    groups = param_groups(model, 0.1, lr=1e-3, per_module_lr={"vision": 1e-4, "vision.1": 1e-5, "text.proj": 2e-3})
    lr_of = {name: g["lr"] for g in groups for name in _names(model, g)}
    assert lr_of["vision.0.weight"] == lr_of["vision.0.bias"] == 1e-4
    assert lr_of["vision.1.weight"] == 1e-5
    assert lr_of["text.proj.weight"] == 2e-3
    assert lr_of["text.token_embedding.weight"] == lr_of["logit_scale"] == 1e-3
    assert "frozen.weight" not in lr_of
    optimizer = build_optimizer(model, lr=1e-3, weight_decay=0.1, per_module_lr={"vision": 1e-4})
    assert isinstance(optimizer, torch.optim.AdamW)
    assert sorted(g["lr"] for g in optimizer.param_groups) == [1e-4, 1e-4, 1e-3, 1e-3]


def test_prefix_matching_no_parameter_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="visoin"):
        param_groups(Toy(), 0.1, 1e-3, per_module_lr={"visoin": 1e-4})
    with pytest.raises(ConfigError, match="frozen"):
        param_groups(Toy(), 0.1, 1e-3, per_module_lr={"frozen": 1e-4})


def test_schedule_warms_up_linearly_then_follows_a_cosine_to_the_floor() -> None:
    base_lr, floor = 0.2, 0.1
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=base_lr)
    scheduler = warmup_cosine_schedule(optimizer, warmup_steps=10, total_steps=110, min_lr_ratio=floor)
    seen = {}
    for step in range(131):
        seen[step] = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
    expected = {
        0: 0.0,
        5: 0.5,
        10: 1.0,
        35: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi / 4)),
        60: floor + (1 - floor) * 0.5,
        110: floor,
        130: floor,
    }
    for step, factor in expected.items():
        assert seen[step] == pytest.approx(base_lr * factor), step
    assert all(seen[s] >= seen[s + 1] for s in range(10, 130))


@pytest.mark.parametrize(("warmup", "total", "floor"), [(5, 0, 0.0), (11, 10, 0.0), (-1, 10, 0.0), (0, 10, 1.5)])
def test_bad_schedule_settings_are_config_errors(warmup: int, total: int, floor: float) -> None:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ConfigError):
        warmup_cosine_schedule(optimizer, warmup, total, floor)


def _train(model: Toy, optimizer: torch.optim.Optimizer, scheduler, steps: int) -> None:
    pixels, tokens = _inputs()
    for _ in range(steps):
        optimizer.zero_grad()
        model(pixels, tokens).backward()
        optimizer.step()
        scheduler.step()


def test_resume_from_state_dicts_continues_identically() -> None:
    def fresh(model: Toy):
        optimizer = build_optimizer(model, lr=1e-2, weight_decay=0.1, per_module_lr={"vision": 1e-3})
        return optimizer, warmup_cosine_schedule(optimizer, warmup_steps=2, total_steps=8, min_lr_ratio=0.1)

    straight = Toy()
    optimizer, scheduler = fresh(straight)
    _train(straight, optimizer, scheduler, 3)
    saved = (copy.deepcopy(straight.state_dict()), copy.deepcopy(optimizer.state_dict()), scheduler.state_dict())
    _train(straight, optimizer, scheduler, 3)

    resumed = Toy()
    resumed.load_state_dict(saved[0])
    optimizer2, scheduler2 = fresh(resumed)
    optimizer2.load_state_dict(saved[1])
    scheduler2.load_state_dict(saved[2])
    _train(resumed, optimizer2, scheduler2, 3)

    assert [g["lr"] for g in optimizer2.param_groups] == [g["lr"] for g in optimizer.param_groups]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
