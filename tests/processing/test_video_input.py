"""Frame token pooling (checked by hand and against transformers' LLaVA-OneVision), frame-time prompts, moments."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from vlmkit.errors import ConfigError, InputError
from vlmkit.processing.video_input import (
    format_moment,
    grounding_prompt,
    parse_moment,
    pool_frame_tokens,
    video_prompt,
)


def _grid(height: int, width: int, frames: int = 1, dim: int = 1) -> torch.Tensor:
    return torch.arange(frames * height * width * dim, dtype=torch.float32).reshape(frames, height * width, dim)


def test_average_pooling_by_hand() -> None:
    pooled, grid = pool_frame_tokens(_grid(4, 4), (4, 4))
    assert grid == (2, 2)
    # blocks of the 4x4 grid 0..15: {0,1,4,5}, {2,3,6,7}, {8,9,12,13}, {10,11,14,15}
    assert pooled[0, :, 0].tolist() == [2.5, 4.5, 10.5, 12.5]
    odd, grid = pool_frame_tokens(_grid(3, 3), (3, 3))
    assert grid == (2, 2)
    assert odd[0, :, 0].tolist() == [2.0, 3.5, 6.5, 8.0]  # overhanging windows average what they cover
    most, _ = pool_frame_tokens(_grid(3, 3), (3, 3), mode="max")
    assert most[0, :, 0].tolist() == [4.0, 5.0, 7.0, 8.0]


def test_frames_and_channels_pool_independently() -> None:
    tokens = _grid(4, 6, frames=3, dim=5)
    pooled, grid = pool_frame_tokens(tokens, (4, 6))
    assert pooled.shape == (3, 6, 5) and grid == (2, 3)
    for frame in range(3):
        alone, _ = pool_frame_tokens(tokens[frame : frame + 1], (4, 6))
        assert torch.equal(pooled[frame : frame + 1], alone)


def test_bilinear_is_the_average_on_even_grids_and_matches_transformers() -> None:
    tokens = torch.randn(2, 24 * 24, 8)
    average, _ = pool_frame_tokens(tokens, (24, 24), mode="average")
    bilinear, _ = pool_frame_tokens(tokens, (24, 24), mode="bilinear")
    torch.testing.assert_close(average, bilinear)
    onevision = pytest.importorskip("transformers.models.llava_onevision.modeling_llava_onevision")
    fake = SimpleNamespace(config=SimpleNamespace(vision_config=SimpleNamespace(image_size=384, patch_size=14)))
    odd = torch.randn(2, 27 * 27, 8)  # SigLIP-so400m at 384 px: a 27 x 27 grid, as LLaVA-OneVision uses
    reference = onevision.LlavaOnevisionModel.apply_pooling(fake, odd)
    ours, grid = pool_frame_tokens(odd, (27, 27), mode="bilinear")
    assert grid == (14, 14)
    torch.testing.assert_close(ours, reference, rtol=0, atol=0)


def test_stride_one_is_the_identity_and_bad_shapes_are_named() -> None:
    tokens = _grid(2, 2)
    assert pool_frame_tokens(tokens, (2, 2), stride=1) == (tokens, (2, 2))
    with pytest.raises(InputError, match="3x3 grid holds 9 tokens, got 4"):
        pool_frame_tokens(tokens, (3, 3))
    with pytest.raises(ConfigError, match="mode"):
        pool_frame_tokens(tokens, (2, 2), mode="median")  # type: ignore[arg-type]


def test_video_prompt_puts_each_frame_after_its_time() -> None:
    assert video_prompt([0.0, 0.5, 1.25], "what moves?") == (
        "frame at 0s: <image>\nframe at 0.5s: <image>\nframe at 1.25s: <image>\nwhat moves?"
    )
    with pytest.raises(InputError):
        video_prompt([], "what moves?")


def test_moments_round_trip_and_parse_from_free_text() -> None:
    assert format_moment(1.25, 1.75) == "1.25 to 1.75"
    assert parse_moment(format_moment(1.25, 1.75)) == (1.25, 1.75)
    assert parse_moment("It happens from 0.5s - 1s.") == (0.5, 1.0)
    assert parse_moment("2 to 1.5") == (1.5, 2.0)
    assert parse_moment("at the start") is None
    assert grounding_prompt("the blue star appears") == (
        "When does this happen: the blue star appears? Answer with its start and end in seconds."
    )
