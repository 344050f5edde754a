"""A position code for image tokens made of the decoder's own location-token embeddings.

A grounding VLM writes a box as ``<locNNNN>`` tokens (``processing.locations``), and a tied head scores
each one by its embedding. When the image token of grid cell (row, column) carries the embeddings of the
location tokens of that cell's centre, one attention head that attends to an object's token and copies its
value already raises that object's location logits: the decoder gets a pointer instead of learning, from
its few steps, where a token is (a convolutional tower's tokens carry no column at all). The code has no
parameters of its own, so it trains with the location rows themselves.

Rows and columns index the same 1024 rows, so the code is symmetric: cell (r, c) and its mirror (c, r) carry
the same code, and a copied code raises the y and the x bin of a cell alike. The decoder must tell them apart
from the token's place in the sequence (which gives the row), unless ``VlmConfig.location_code_column_scale``
weighs the column's part differently.
"""

from __future__ import annotations

import torch

from vlmkit.errors import InputError
from vlmkit.processing.locations import LOC_BINS


def cell_centre_tokens(first_token: int, grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Location-token ids of each cell's centre, by row and by column, in row-major token order (grid^2,)."""
    centres = torch.tensor([first_token + round((c + 0.5) / grid * (LOC_BINS - 1)) for c in range(grid)])
    return centres.repeat_interleave(grid), centres.repeat(grid)


def add_location_code(
    features: torch.Tensor,
    embedding: torch.Tensor,
    first_token: int,
    tokens_per_image: int,
    column_scale: float = 1.0,
) -> torch.Tensor:
    """``features`` plus ``embedding[row's centre] + column_scale * embedding[column's centre]`` per token:
    images of ``tokens_per_image`` (grid^2) tokens each, as (N, grid^2, D) or concatenated (N * grid^2, D) as a
    chat gives them."""
    grid = round(tokens_per_image**0.5)
    if grid * grid != tokens_per_image or features.shape[:-1].numel() % tokens_per_image:
        raise InputError(
            f"a location code needs square grids of {tokens_per_image} image tokens, got {tuple(features.shape)}"
        )
    rows, columns = cell_centre_tokens(first_token, grid)
    row_code, column_code = embedding[rows.to(embedding.device)], embedding[columns.to(embedding.device)]
    code = (row_code + column_scale * column_code).to(features.dtype)
    return (features.reshape(-1, tokens_per_image, features.shape[-1]) + code).reshape(features.shape)
