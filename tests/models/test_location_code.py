"""The location code (models.location_code): image tokens carry their cell centre as <loc> embeddings."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from grounding_kit import grounding_vlm
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.checkpoints.export import export_hf
from vlmkit.errors import ConfigError, InputError
from vlmkit.models.location_code import add_location_code, cell_centre_tokens
from vlmkit.processing.locations import LOC_BINS, LOCATION_TOKENS


def test_cells_take_the_bins_of_their_centres_in_row_major_order():
    rows, columns = cell_centre_tokens(1000, 4)
    centres = [1000 + round(f * (LOC_BINS - 1)) for f in (0.125, 0.375, 0.625, 0.875)]
    assert rows.tolist() == [c for c in centres for _ in range(4)]
    assert columns.tolist() == centres * 4


def test_the_code_is_the_sum_of_the_two_rows():
    embedding = torch.randn(10 + LOC_BINS, 3)
    features = torch.randn(2, 4, 3)
    coded = add_location_code(features, embedding, 10, 4)
    rows, columns = cell_centre_tokens(10, 2)
    torch.testing.assert_close(coded - features, (embedding[rows] + embedding[columns]).expand(2, -1, -1))
    # a chat's images come concatenated: each image's tokens get the code, not one grid over all of them
    torch.testing.assert_close(add_location_code(features.reshape(8, 3), embedding, 10, 4), coded.reshape(8, 3))
    with pytest.raises(InputError, match="square grids"):
        add_location_code(torch.randn(1, 5, 3), embedding, 10, 5)
    with pytest.raises(InputError, match="square grids"):
        add_location_code(torch.randn(6, 3), embedding, 10, 4)


def test_a_column_scale_tells_a_cell_from_its_mirror():
    embedding = torch.randn(10 + LOC_BINS, 3)
    zeros = torch.zeros(1, 9, 3)
    for scale, mirrors_equal in ((1.0, True), (0.5, False)):
        code = add_location_code(zeros, embedding, 10, 9, column_scale=scale)[0]  # 3x3 grid, row-major
        assert torch.allclose(code[1], code[3]) == mirrors_equal  # cells (0, 1) and (1, 0)
    rows, columns = cell_centre_tokens(10, 3)
    torch.testing.assert_close(
        add_location_code(zeros, embedding, 10, 9, column_scale=0.5)[0], embedding[rows] + 0.5 * embedding[columns]
    )


def _coded_model():
    model = grounding_vlm()
    first = model.tokenizer.tokenizer.token_to_id(LOCATION_TOKENS[0])
    model.config.location_code_token = first
    return model, first


def test_image_tokens_carry_the_code_and_train_the_location_rows():
    model, first = _coded_model()
    prompt = torch.tensor([[model.config.image_token_id] * model.config.tokens_per_image + [5, 6]])
    pixels = torch.randn(1, 3, 32, 32)
    features = model.encode_images(pixels)
    plain = model.decoder.embed(prompt).clone()
    each = model.config.tokens_per_image
    plain[0, :each] = add_location_code(features, model.decoder.embed.weight, first, each)[0]
    torch.testing.assert_close(model.embed(prompt, features), plain)
    two = torch.cat([prompt[:, :each], prompt], 1)  # two images, their features concatenated as a chat has them
    both = model.encode_images(torch.randn(2, 3, 32, 32))
    torch.testing.assert_close(model.embed(two, both.reshape(-1, both.shape[-1])), model.embed(two, both))
    model.decoder.embed.weight.grad = None
    model.embed(prompt, model.encode_images(pixels)).square().sum().backward()  # the embeddings alone, not the head
    grads = model.decoder.embed.weight.grad.abs().sum(1)
    used = torch.cat(cell_centre_tokens(first, round(model.config.tokens_per_image**0.5))).unique()
    assert bool((grads[used] > 0).all())  # reached through the image tokens alone: no <loc> in the prompt
    unused = torch.tensor([i for i in range(first, first + LOC_BINS) if i not in set(used.tolist())])
    assert float(grads[unused].abs().max()) == 0.0


def test_the_code_survives_a_save_and_is_not_exported(tmp_path):
    model, first = _coded_model()
    save_pretrained(model, tmp_path / "m")
    loaded = from_pretrained(tmp_path / "m")
    assert loaded.config.location_code_token == first
    prompt = torch.tensor([[model.config.image_token_id] * model.config.tokens_per_image + [5]])
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(prompt, pixels).logits, model(prompt, pixels).logits)
    with pytest.raises(ConfigError, match="location_code_token"):
        export_hf(model, tmp_path / "hf")


def test_configs_that_cannot_carry_a_code_are_refused():
    model, first = _coded_model()
    config = model.config
    with pytest.raises(ConfigError, match="leaves no room"):
        dataclasses.replace(config, location_code_token=config.decoder.vocab_size - 10).validate("vlm")
    with pytest.raises(ConfigError, match="square token grid"):
        dataclasses.replace(config, image_splitting=True, location_code_token=first).validate("vlm")
    for scale in (0.0, float("nan")):
        with pytest.raises(ConfigError, match="location_code_column_scale"):
            dataclasses.replace(config, location_code_column_scale=scale).validate("vlm")
