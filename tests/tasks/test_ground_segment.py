"""detect, refer and segment: prompts, parsed pixel boxes, masks through a mask codec, broken answers,
pictures; and a random tiny VLM end to end (whatever it writes, the result is a Grounding)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import vlmkit.tasks.ground as ground
from grounding_kit import GridCodec, grounding_vlm, script
from tiny_vlm import tiny_vlm
from vlmkit.errors import InputError
from vlmkit.processing.locations import format_object, format_objects
from vlmkit.processing.masks import mask_crop
from vlmkit.tasks.ground import GroundedObject, Grounding, detect, detect_all, refer
from vlmkit.tasks.pictures import draw_objects, label_colour
from vlmkit.tasks.segment import segment, segment_many


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return grounding_vlm()


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "scene.png"
    Image.new("RGB", (80, 60), (40, 40, 40)).save(path)
    return path


def test_detect_asks_in_paligemma_words_and_returns_pixel_boxes(model, picture, monkeypatch):
    answer = format_objects(
        [format_object("star", [8, 6, 40, 30], 80, 60), format_object("circle", [50, 10, 79, 59], 80, 60)]
    )
    seen = script(monkeypatch, ground, lambda prompt: answer)
    result = detect(model, picture, ["star", "circle"])
    assert "detect star ; circle" in seen[0]
    assert [o.label for o in result.objects] == ["star", "circle"]
    assert [round(v) for v in result.objects[0].box] == [8, 6, 40, 30]
    assert result.size == (80, 60) and result.unparsed == () and result.text == answer
    assert result.objects[0].score is None and result.objects[0].mask is None
    assert detect(model, picture, "star ; circle") == result
    detect_all(model, picture)
    assert "detect every object" in seen[-1]


def test_a_truncated_answer_keeps_what_parsed_and_the_text(model, picture, monkeypatch):
    good = format_object("star", [8, 6, 40, 30], 80, 60)
    script(monkeypatch, ground, lambda prompt: f"{good} ; <loc0001><loc0002>")
    result = detect(model, picture, "star ; circle")
    assert [o.label for o in result.objects] == ["star"]
    assert result.unparsed == ("<loc0001><loc0002>",)
    script(monkeypatch, ground, lambda prompt: "no idea")
    assert detect(model, picture, "star").objects == []


def test_refer_keeps_the_first_object_only(model, picture, monkeypatch):
    two = format_objects(
        [format_object("the red star", [1, 1, 9, 9], 80, 60), format_object("x", [2, 2, 3, 3], 80, 60)]
    )
    seen = script(monkeypatch, ground, lambda prompt: two)
    result = refer(model, picture, "the red star")
    assert "detect the red star" in seen[0]
    assert [o.label for o in result.objects] == ["the red star"]
    with pytest.raises(InputError, match="without ';'"):
        refer(model, picture, "a ; b")


def test_segment_decodes_codes_into_a_mask_inside_the_box(model, picture, monkeypatch):
    truth = np.zeros((60, 80), dtype=bool)
    truth[10:42, 16:48] = True  # a 32 x 32 square: whole cells of the 64x64 crop of its box
    truth[10:26, 16:32] = False  # its top-left quarter cut away
    box = [16, 10, 48, 42]
    codec = GridCodec()
    codes = codec.encode(torch.from_numpy(mask_crop(truth, box))[None])[0].tolist()
    seen = script(monkeypatch, ground, lambda prompt: format_object("the red star", box, 80, 60, codes))
    result = segment(model, picture, "the red star", codec)
    assert "segment the red star" in seen[0]
    (found,) = result.objects
    assert found.mask is not None and found.mask.shape == (60, 80)
    assert (found.mask == truth).all()
    assert found.to_dict()["mask"]["size"] == [60, 80]
    # an object without codes keeps its box and has no mask
    script(monkeypatch, ground, lambda prompt: format_object("star", box, 80, 60))
    assert segment_many(model, [picture], ["star"], codec)[0].objects[0].mask is None


def test_models_without_location_tokens_are_refused(picture):
    with pytest.raises(InputError, match="no location tokens"):
        detect(tiny_vlm(), picture, "star")
    with pytest.raises(InputError, match="vision-language model"):
        detect(object(), picture, "star")  # type: ignore[arg-type]


def test_a_random_model_gives_groundings_whatever_it_writes(photo_files):
    model = grounding_vlm()
    with torch.no_grad():
        for param in model.decoder.parameters():
            param.mul_(6 if param.ndim > 1 else 1)
    for result in (
        detect(model, photo_files[0], ["star", "circle"], max_new_tokens=12),
        refer(model, photo_files[1], "the cat", max_new_tokens=12),
        segment(model, photo_files[2], "the cup", GridCodec(), max_new_tokens=12),
    ):
        assert isinstance(result, Grounding)
        for item in result.objects:
            x0, y0, x1, y1 = item.box
            assert 0 <= x0 <= x1 <= 64 and 0 <= y0 <= y1 <= 48


def test_pictures_draw_masks_boxes_and_labels(picture):
    mask = np.zeros((60, 80), dtype=bool)
    mask[20:40, 20:40] = True
    objects = [GroundedObject("star", (10, 10, 30, 30)), GroundedObject("circle", (20, 20, 40, 40), mask, 0.9)]
    drawn = draw_objects(picture, objects)
    assert drawn.size == (400, 300)  # enlarged 5x to be readable
    pixels = np.asarray(drawn)
    inside = pixels[35 * 5, 35 * 5].astype(int)  # under the circle's mask only
    assert (inside != 40).any() and inside.argmax() == int(np.argmax(label_colour("circle")))
    assert (pixels[5, 5] == 40).all()  # untouched background


def test_segment_takes_the_real_mask_tokenizer(model, picture, monkeypatch):
    from vlmkit.config.mask_tokenizer import MaskTokenizerConfig
    from vlmkit.models.mask_tokenizer import MaskTokenizer

    codec = MaskTokenizer(
        MaskTokenizerConfig(embedding_dim=8, encoder_channels=(4, 4, 4, 8), decoder_channels=(8, 4, 4, 4))
    )
    truth = np.zeros((60, 80), dtype=bool)
    truth[10:42, 16:48] = True
    codes = codec.encode(torch.from_numpy(mask_crop(truth, [16, 10, 48, 42]))[None])[0].tolist()
    script(monkeypatch, ground, lambda prompt: format_object("star", [16, 10, 48, 42], 80, 60, codes))
    (found,) = segment(model, picture, "star", codec).objects
    assert found.mask is not None and found.mask.shape == (60, 80)
    assert not found.mask[:10].any() and not found.mask[:, :16].any()  # nothing outside the box
