"""Frame-difference tokens: a clip's later frames reach the decoder as what changed, not as whole scenes.

A VLM asked about a clip reads its frames as several images of one prompt (``tasks.video``). A linear probe on
the frozen frame tokens reads the direction of the one move at 0.82 from (last frame - first frame), yet a
decoder trained for 150 steps answers at the prior: among 8 x 16 tokens that mostly repeat the same static
scene it does not find the few that changed. With a ``frame_delta`` mode, the first image of each sequence keeps
its tokens and every later one is replaced, cell by cell, by its difference from the previous image
(``previous``) or from the first (``first``), so static cells cancel to zero and only what moved, appeared or
changed colour stands out.

The difference is taken on the projected features (decoder space), in ``VisionLanguageModel.embed``: the one
step that training (cached tower tokens -> projector), generation (pixels -> ``encode_images``) and a chat's
pictures all go through (a chat turn that adds a picture re-embeds the earlier ones, ``tasks.chat``), so every
path gives the decoder the same inputs. A cell whose tokens do not change becomes exactly zero, where before the
projector it would become the projector's output for zero. In a real clip few cells are that still: lossy video
coding and a tower whose few cells each see much of the frame make most differences small, not zero.
"""

from __future__ import annotations

import torch

from vlmkit.errors import InputError

FRAME_DELTA_MODES = ("previous", "first")


def frame_deltas(features: torch.Tensor, images_per_row: torch.Tensor, mode: str) -> torch.Tensor:
    """``features`` (N, T, D), the images of all sequences in order, with each sequence's images after its first
    replaced by their difference from the one before (``previous``) or from the sequence's first (``first``);
    ``images_per_row`` (B,) says how many of the N images each sequence holds."""
    if mode not in FRAME_DELTA_MODES:
        raise InputError(f"frame_delta: expected one of {list(FRAME_DELTA_MODES)}, got {mode!r}")
    counts = images_per_row.to(device=features.device, dtype=torch.long)
    if int(counts.sum()) != features.shape[0]:
        raise InputError(f"frame_delta: the sequences hold {int(counts.sum())} images but {features.shape[0]} came")
    starts = torch.cumsum(counts, 0) - counts  # index of each sequence's first image
    first = torch.repeat_interleave(starts, counts)  # per image: its sequence's first image
    index = torch.arange(features.shape[0], device=features.device)
    reference = index - 1 if mode == "previous" else first
    is_first = index == first
    reference = torch.where(is_first, index, reference)
    return torch.where(is_first[:, None, None], features, features - features[reference])
