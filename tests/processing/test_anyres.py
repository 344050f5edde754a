"""LLaVA-NeXT's anyres geometry and pixels equal transformers' functions and processors (5.24)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from vlmkit.errors import ConfigError, InputError
from vlmkit.processing.anyres import (
    AnyresPreprocessor,
    anyres_token_count,
    expand_image_tokens,
    fitted_size,
    image_processor_from_dict,
    image_processor_from_hf,
    select_best_resolution,
    unpadded_span,
)
from vlmkit.processing.images import ImagePreprocessor

transformers = pytest.importorskip("transformers")
from transformers.image_processing_utils import get_patch_output_size  # noqa: E402
from transformers.image_processing_utils import select_best_resolution as hf_select  # noqa: E402
from transformers.models.llava_next.modeling_llava_next import unpad_image  # noqa: E402

HUB_PINPOINTS = ((336, 672), (672, 336), (672, 672), (1008, 336), (336, 1008))  # llava-v1.6's
SIDES = [1, 7, 31, 32, 33, 64, 100, 223, 336, 500, 671, 1000, 1500]
SIZES = list(itertools.product(SIDES, SIDES))


def test_best_resolution_and_fit_match_transformers():
    for height, width in SIZES:
        best = select_best_resolution(height, width, HUB_PINPOINTS)
        assert best == hf_select((height, width), [list(p) for p in HUB_PINPOINTS])
        image = np.zeros((3, height, width), dtype=np.uint8)
        assert fitted_size(height, width, best) == get_patch_output_size(image, best, "channels_first")


def test_unpadded_span_matches_unpad_image():
    for (height, width), (rows, cols) in itertools.product(SIZES, [(1, 2), (2, 1), (2, 2), (3, 1)]):
        cells = torch.arange(rows * 24 * cols * 24).view(1, rows * 24, cols * 24)
        kept_rows, kept_cols = unpadded_span(height, width, rows * 24, cols * 24)
        torch.testing.assert_close(cells[:, kept_rows, kept_cols], unpad_image(cells, (height, width)))


def test_token_count_matches_the_processor(tmp_path):
    from llava_next_kit import save_tiny_processor

    processor = save_tiny_processor(tmp_path)  # 32 px tiles, 8 px patches, class token counted then dropped
    processor.image_processor.image_grid_pinpoints = [list(p) for p in HUB_PINPOINTS]
    processor.patch_size = 14
    for height, width in SIZES:
        expected = processor._get_number_of_features(height, width, 336, 336) - 1
        assert anyres_token_count(height, width, HUB_PINPOINTS, 336, 24, 576) == expected


def _photos() -> list[Image.Image]:
    data = pytest.importorskip("skimage.data")
    rng = np.random.default_rng(1)
    noise = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(5, 300), (301, 9), (97, 97)]]
    return [Image.fromarray(a) for a in [data.astronaut(), data.chelsea(), data.rocket(), *noise]]


@pytest.mark.parametrize("side", [32, 48])
def test_pixels_match_the_pil_image_processor(side):
    pinpoints = [[side, 2 * side], [2 * side, side], [2 * side, 2 * side], [3 * side, side]]
    reference = transformers.LlavaNextImageProcessorPil(
        size={"shortest_edge": side}, crop_size={"height": side, "width": side}, image_grid_pinpoints=pinpoints
    )
    ours = image_processor_from_hf(reference.to_dict())
    assert isinstance(ours, AnyresPreprocessor) and ours.tile == side
    photos = _photos()
    expected = reference(photos, return_tensors="pt")
    got = ours(photos)
    assert got["image_sizes"].tolist() == expected["image_sizes"].tolist()
    assert got["pixel_values"].shape == expected["pixel_values"].shape
    torch.testing.assert_close(got["pixel_values"], expected["pixel_values"], atol=1e-5, rtol=0)


def test_crops_are_base_then_row_major_tiles():
    image = Image.new("RGB", (64, 32), (0, 0, 0))
    image.paste((255, 0, 0), (32, 0, 64, 32))  # the right half red
    crops = AnyresPreprocessor(ImagePreprocessor.siglip(32), ((32, 64),)).crops(image)
    assert crops.shape == (3, 3, 32, 32) and crops.dtype == torch.uint8
    assert crops[1, 0].max() == 0 and crops[2, 0].min() == 255  # tile 1 left (black), tile 2 right (red)


def test_settings_round_trip_and_kinds():
    ours = AnyresPreprocessor(ImagePreprocessor.siglip(32), ((32, 64), (64, 32)))
    assert image_processor_from_dict(ours.to_dict()) == ours
    fixed = ImagePreprocessor.clip(32)
    assert image_processor_from_dict(fixed.to_dict()) == fixed
    assert image_processor_from_hf(fixed.to_hf_config()) == fixed


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"do_magic": True}, "do_magic"),
        ({"size": {"shortest_edge": 40}}, "shortest edge of 40"),
        ({"do_pad": False}, "do_pad"),
        ({"image_grid_pinpoints": [[32, 50]]}, r"\[32, 50\]"),
    ],
)
def test_unsupported_processor_settings_are_named(change, named):
    config = transformers.LlavaNextImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, image_grid_pinpoints=[[32, 64]]
    ).to_dict()
    with pytest.raises(ConfigError, match=named):
        image_processor_from_hf({**config, **change})


def test_expand_image_tokens():
    assert expand_image_tokens([1, 9, 5, 9], 9, [2, 3]) == [1, 9, 9, 5, 9, 9, 9]
    with pytest.raises(InputError, match="2 image tokens but 1 image"):
        expand_image_tokens([9, 9], 9, [4])
