"""The mask tokenizer's interface (shapes, ranges, errors), its save/load round trip, TensorFlow SAME
padding, and the crop/paste helpers it is used with."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vlmkit
from vlmkit.config.mask_tokenizer import MaskTokenizerConfig
from vlmkit.errors import ConfigError, InputError
from vlmkit.models.mask_tokenizer import MaskTokenizer, SameConv2d, same_padding
from vlmkit.processing.masks import box_pixels, mask_crop, paste_mask

TINY = MaskTokenizerConfig(embedding_dim=8, encoder_channels=(2, 4, 4, 8), decoder_channels=(8, 4, 4, 2), res_blocks=1)


def _tokenizer(seed: int = 0) -> MaskTokenizer:
    torch.manual_seed(seed)
    return MaskTokenizer(TINY).eval()


def test_encode_decode_shapes_and_ranges():
    model = _tokenizer()
    masks = (torch.rand(3, 64, 64) > 0.5).float()
    codes = model.encode(masks)
    assert codes.shape == (3, 16) and codes.dtype == torch.long
    assert int(codes.min()) >= 0 and int(codes.max()) < 128
    probabilities = model.decode(codes)
    assert probabilities.shape == (3, 64, 64) and probabilities.dtype == torch.float32
    assert float(probabilities.min()) >= 0.0 and float(probabilities.max()) <= 1.0


def test_codes_are_nearest_codebook_rows_row_major():
    model = _tokenizer()
    masks = torch.rand(2, 64, 64)
    latents = model.encoder(masks)  # (N, D, 4, 4)
    codes = model.encode(masks)
    for n in range(2):
        for row in range(4):
            for col in range(4):
                distances = ((model.codebook - latents[n, :, row, col]) ** 2).sum(1)
                assert int(codes[n, row * 4 + col]) == int(distances.argmin())


def test_signed_output_is_big_visions_probability():
    model = _tokenizer()
    signed = MaskTokenizer(MaskTokenizerConfig(**{**TINY.to_dict(), "output": "signed"}))
    signed.load_state_dict(model.state_dict())
    codes = torch.randint(0, 128, (2, 16))
    raw = model.decoder(model.lookup(codes))
    assert torch.allclose(signed.decode(codes), (raw / 2 + 0.5).clamp(0, 1))
    assert torch.allclose(model.decode(codes), torch.sigmoid(raw))


def test_bad_inputs_are_input_errors():
    model = _tokenizer()
    with pytest.raises(InputError, match="masks: expected shape"):
        model.encode(torch.zeros(2, 32, 32))
    with pytest.raises(InputError, match="codes: expected shape"):
        model.decode(torch.zeros(2, 15, dtype=torch.long))
    with pytest.raises(InputError, match=r"0\.\.127"):
        model.decode(torch.full((1, 16), 128))


def test_save_load_round_trip_is_bit_identical(tmp_path):
    model = _tokenizer(3)
    vlmkit.save_pretrained(model, tmp_path / "m")
    loaded = vlmkit.load(tmp_path / "m")
    assert isinstance(loaded, MaskTokenizer) and loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    masks = torch.rand(4, 64, 64)
    assert torch.equal(model.encode(masks), loaded.encode(masks))
    assert torch.equal(model.decode(model.encode(masks)), loaded.decode(loaded.encode(masks)))


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"), [(64, 4, 2, (1, 1)), (64, 3, 2, (0, 1)), (5, 3, 1, (1, 1))]
)
def test_same_padding_is_tensorflows(size, kernel, stride, expected):
    assert same_padding(size, kernel, stride) == expected


def test_same_conv_keeps_ceil_size_and_pads_after():
    conv = SameConv2d(1, 1, 3, stride=2, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0  # output (i, j) reads input (2i - top, 2j - left): top = left = 0
    x = torch.arange(36.0).view(1, 1, 6, 6)
    assert torch.equal(conv(x)[0, 0], x[0, 0, ::2, ::2])


def test_crop_and_paste_invert_each_other_on_a_box():
    full = np.zeros((40, 50), dtype=bool)
    full[10:30, 5:21] = True
    full[10:15, 5:10] = False  # a notch, so the crop is not all ones
    crop = mask_crop(full, [5, 10, 21, 30])
    assert crop.shape == (64, 64) and crop.dtype == np.float32
    assert crop.min() >= 0 and crop.max() <= 1 and crop.mean() < 0.99
    back = paste_mask(crop, [5, 10, 21, 30], (40, 50))
    assert back.shape == (40, 50)
    assert np.array_equal(back > 0.5, full)


def test_paste_clips_the_box_and_crop_refuses_an_empty_one():
    assert box_pixels([-3.2, 2.6, 70, 8], 10, 60) == (0, 3, 60, 8)
    assert paste_mask(np.ones((64, 64)), [80, 80, 90, 90], (10, 10)).sum() == 0
    with pytest.raises(InputError, match="empty"):
        mask_crop(np.ones((10, 10)), [3, 3, 3, 8])
    with pytest.raises(InputError, match="mask64"):
        paste_mask(np.ones((32, 32)), [0, 0, 4, 4], (10, 10))


def test_config_round_trip_and_bad_fields():
    assert MaskTokenizerConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ConfigError, match="encoder_channels: expected 4 positive widths"):
        MaskTokenizerConfig.from_dict({"encoder_channels": [8, 16, 32]})
    with pytest.raises(ConfigError, match="output: expected one of"):
        MaskTokenizerConfig.from_dict({"output": "probabilities"})
