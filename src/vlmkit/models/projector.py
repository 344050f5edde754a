"""Vision -> decoder projector: a linear map or a 2-layer MLP, after optional pixel-shuffle reduction."""

from __future__ import annotations

import torch
from torch import nn

from vlmkit.config import ProjectorConfig
from vlmkit.nn.mlp import activation


def pixel_shuffle(tokens: torch.Tensor, factor: int) -> torch.Tensor:
    """(N, g*g, D) patch tokens -> (N, (g/r)^2, r*r*D): each r x r block of neighbours becomes one token.

    Within a merged token the features are ordered block row, then block column, then channel.
    The decoder sees r*r times fewer image positions, each carrying the same information.
    """
    count, length, dim = tokens.shape
    grid = round(length**0.5)
    if grid * grid != length or grid % factor:
        raise ValueError(f"pixel_shuffle({factor}) needs a square token grid divisible by it, got {length} tokens")
    cells = grid // factor
    x = tokens.reshape(count, cells, factor, cells, factor, dim).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(count, cells * cells, factor * factor * dim)


class Projector(nn.Module):
    """Maps selected vision tokens (N, T, vision_width) to decoder embeddings (N, T / r^2, text_width)."""

    def __init__(self, config: ProjectorConfig, vision_width: int, text_width: int) -> None:
        super().__init__()
        self.config = config
        features = vision_width * config.pixel_shuffle**2
        self.fc1 = nn.Linear(features, text_width, bias=config.bias)
        self.fc2 = nn.Linear(text_width, text_width, bias=config.bias) if config.kind == "mlp" else None
        self.act = activation(config.act)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.config.pixel_shuffle > 1:
            tokens = pixel_shuffle(tokens, self.config.pixel_shuffle)
        x = self.fc1(tokens)
        return x if self.fc2 is None else self.fc2(self.act(x))
