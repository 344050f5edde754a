"""Image loading and preprocessing: odd files, hostile files, and parity with transformers."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vlmkit.errors import ConfigError, InputError
from vlmkit.processing.images import ImagePreprocessor, load_image

# ------------------------------------------------------------------------------------- load_image


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(int)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # 40 wide, 20 tall: left half red, right half blue. Orientation 6 asks viewers to turn it 90°
    # clockwise, which puts the red half on top of a 20 wide, 40 tall image.
    array = np.zeros((20, 40, 3), dtype=np.uint8)
    array[:, :20] = (255, 0, 0)
    array[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(array).save(path, exif=exif, quality=95)

    image = load_image(path)
    assert image.mode == "RGB"
    assert image.size == (20, 40)
    top, bottom = _pixels(image)[5, 10], _pixels(image)[35, 10]
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


def test_exif_orientation_of_a_caller_image_is_applied_without_mutating_it() -> None:
    image = Image.new("RGB", (30, 10), (10, 20, 30))
    image.getexif()[0x0112] = 8
    loaded = load_image(image)
    assert loaded.size == (10, 30)
    assert image.size == (30, 10)


def test_grayscale_becomes_rgb_with_equal_channels() -> None:
    gray = Image.fromarray(np.arange(0, 250, 10, dtype=np.uint8).reshape(5, 5), mode="L")
    rgb = _pixels(load_image(gray))
    assert rgb.shape == (5, 5, 3)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], np.asarray(gray))


def test_rgba_is_composited_onto_white(tmp_path: Path) -> None:
    array = np.zeros((1, 3, 4), dtype=np.uint8)
    array[0, 0] = (0, 0, 0, 0)  # fully transparent black -> white
    array[0, 1] = (255, 0, 0, 255)  # opaque red stays red
    array[0, 2] = (0, 0, 0, 128)  # half-transparent black -> mid grey
    path = tmp_path / "alpha.png"
    Image.fromarray(array, mode="RGBA").save(path)
    rgb = _pixels(load_image(path))[0]
    np.testing.assert_array_equal(rgb[0], (255, 255, 255))
    np.testing.assert_array_equal(rgb[1], (255, 0, 0))
    assert np.all(np.abs(rgb[2] - 127) <= 1)


def test_palette_image_with_transparent_index(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 0, 200, 0] + [0] * (254 * 3))
    image.putdata([0, 1])
    path = tmp_path / "palette.png"
    image.save(path, transparency=0)
    rgb = _pixels(load_image(path))[0]
    np.testing.assert_array_equal(rgb[0], (255, 255, 255))
    np.testing.assert_array_equal(rgb[1], (0, 200, 0))


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    rgb = _pixels(load_image(path))[0]
    np.testing.assert_array_equal(rgb[:, 0], [0, 100, 255])
    assert np.all(rgb == rgb[:, :1])


def test_int32_image_holding_16_bit_data_is_scaled() -> None:
    image = Image.fromarray(np.array([[0, 257 * 50, 65535]], dtype=np.int32), mode="I")
    np.testing.assert_array_equal(_pixels(load_image(image))[0, :, 1], [0, 50, 255])


def test_int32_image_holding_8_bit_data_is_kept() -> None:
    image = Image.fromarray(np.array([[0, 7, 255]], dtype=np.int32), mode="I")
    np.testing.assert_array_equal(_pixels(load_image(image))[0, :, 2], [0, 7, 255])


def test_bytes_and_path_give_the_same_image(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)).save(path)
    np.testing.assert_array_equal(_pixels(load_image(path.read_bytes())), _pixels(load_image(str(path))))


def test_pixel_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 60)).save(path)
    with pytest.raises(InputError, match=r"big\.png.*6000 pixels exceeds the limit of 5000"):
        load_image(path, max_pixels=5000)
    assert load_image(path, max_pixels=6000).size == (100, 60)


def _png_claiming_size(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose header is patched to claim ``width`` x ``height``."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = 8 + 8  # signature, then the IHDR chunk's length and type
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13])))
    return bytes(data)


def test_decompression_bomb_is_refused_from_the_header(tmp_path: Path) -> None:
    # 9000 x 9000 = 81 MP: over vlmkit's default 64 MP but under Pillow's own guard, so only the
    # header check stands between this 70-byte file and a 243 MB decode.
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming_size(9000, 9000))
    with pytest.raises(InputError, match=r"bomb\.png: 9000x9000 = 81000000 pixels exceeds"):
        load_image(path)


def test_truncated_file_names_the_file(tmp_path: Path) -> None:
    array = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(InputError, match=r"cut\.jpg: corrupt or truncated"):
        load_image(path)


def test_corrupt_and_missing_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"definitely not an image")
    with pytest.raises(InputError, match=r"junk\.jpg: not a readable image"):
        load_image(junk)
    with pytest.raises(InputError, match=r"nowhere\.png: file not found"):
        load_image(tmp_path / "nowhere.png")
    with pytest.raises(InputError, match=r"image bytes \(3 B\): not a readable image"):
        load_image(b"abc")


def _encoded(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def test_min_side_decodes_a_large_jpeg_at_a_reduced_scale() -> None:
    halves = np.zeros((3000, 4000, 3), dtype=np.uint8)
    halves[:, :2000] = (250, 0, 0)
    halves[:, 2000:] = (0, 0, 250)
    data = _encoded(Image.fromarray(halves), "JPEG", quality=90)
    # JPEG's DCT scaling gives 1/4 (1000x750, short side >= 400); a whole-factor reduce alone would give
    # 4000 // 7: the size shows the image was never decoded at full size.
    reduced = load_image(data, min_side=400)
    assert reduced.size == (1000, 750)
    left, right = _pixels(reduced)[375, 250], _pixels(reduced)[375, 750]
    assert left[0] > 200 and left[2] < 60 and right[2] > 200 and right[0] < 60
    assert load_image(data).size == (4000, 3000)


def test_min_side_shrinks_other_formats_by_a_whole_factor() -> None:
    wide = Image.new("RGB", (3000, 1000), (10, 200, 30))
    assert load_image(_encoded(wide, "PNG"), min_side=64).size == (200, 67)  # 1000 // 64 = 15
    assert load_image(_encoded(wide, "PNG"), min_side=1000).size == (3000, 1000)  # never below min_side
    assert load_image(wide, min_side=64).size == (200, 67)
    assert load_image(wide, min_side=2000) is wide  # nothing to do: the caller's image as is


@pytest.mark.parametrize("format", ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "PPM"])
def test_the_allowed_formats_open(format: str) -> None:
    assert load_image(_encoded(Image.new("RGB", (9, 7), (90, 90, 90)), format)).size == (9, 7)


def test_formats_outside_the_allow_list_are_never_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import EpsImagePlugin, IcoImagePlugin

    def tried(*args, **kwargs):
        raise AssertionError("Pillow's EPS plugin was given the file")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", tried)
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(InputError, match="not a readable image"):
        load_image(eps)
    ico = _encoded(Image.new("RGB", (16, 16)), "ICO")
    assert Image.open(io.BytesIO(ico)).format == IcoImagePlugin.IcoImageFile.format  # Pillow reads it...
    with pytest.raises(InputError, match="not a readable image"):
        load_image(ico)  # ...vlmkit does not


def test_a_path_with_a_nul_byte_is_an_input_error() -> None:
    with pytest.raises(InputError, match="cannot open"):
        load_image("/tmp/a\x00b.png")


# --------------------------------------------------------------------------------- preprocessor


def test_normalisation_of_a_flat_grey_image() -> None:
    pre = ImagePreprocessor.clip(32)
    out = pre([Image.new("RGB", (50, 40), (128, 128, 128))])
    assert out.shape == (1, 3, 32, 32) and out.dtype == torch.float32
    for channel in range(3):
        expected = (128 / 255 - pre.mean[channel]) / pre.std[channel]
        torch.testing.assert_close(out[0, channel], torch.full((32, 32), expected), atol=1e-6, rtol=0)


def test_single_image_must_be_wrapped_in_a_list() -> None:
    with pytest.raises(InputError, match="list"):
        ImagePreprocessor.siglip(32)(Image.new("RGB", (8, 8)))


def test_dict_round_trip_through_json() -> None:
    pre = ImagePreprocessor(size=(96, 128), shortest_edge=144, resample="bilinear")
    assert ImagePreprocessor.from_dict(json.loads(json.dumps(pre.to_dict()))) == pre
    with pytest.raises(ConfigError, match="'colour'"):
        ImagePreprocessor.from_dict({**pre.to_dict(), "colour": 1})
    with pytest.raises(ConfigError, match="'shortest_edge'"):
        ImagePreprocessor(size=(224, 224), shortest_edge=200)
    with pytest.raises(ConfigError, match="'resample'"):
        ImagePreprocessor(resample="nearest")  # type: ignore[arg-type]


def test_legacy_clip_config_with_bare_ints() -> None:
    # The shape of openai/clip-vit-base-patch32's preprocessor_config.json.
    config = {
        "crop_size": 224,
        "do_center_crop": True,
        "do_normalize": True,
        "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor",
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "resample": 3,
        "size": 224,
    }
    assert ImagePreprocessor.from_hf_config(config) == ImagePreprocessor.clip(224)


def test_siglip_config() -> None:
    config = {
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_processor_type": "SiglipImageProcessor",
        "image_std": [0.5, 0.5, 0.5],
        "processor_class": "SiglipProcessor",
        "resample": 3,
        "rescale_factor": 0.00392156862745098,
        "size": {"height": 384, "width": 384},
    }
    assert ImagePreprocessor.from_hf_config(config) == ImagePreprocessor.siglip(384)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"resample": 0}, "'resample'"),  # nearest; 1 (lanczos) is supported, for Idefics3
        ({"size": {"longest_edge": 224}}, "'size'"),
        ({"crop_pct": 0.9}, "'crop_pct'"),
        ({"do_center_crop": False}, "'size'"),
        ({"do_pad": True}, "'do_pad'"),
        ({"image_mean": [0.5, 0.5]}, "'image_mean'"),
    ],
)
def test_unsupported_hf_settings_name_the_field(change: dict, field: str) -> None:
    base = {"size": {"shortest_edge": 224}, "crop_size": {"height": 224, "width": 224}, "do_center_crop": True}
    base.update({"image_mean": [0.5] * 3, "image_std": [0.5] * 3})
    with pytest.raises(ConfigError, match=field):
        ImagePreprocessor.from_hf_config({**base, **change})


# ------------------------------------------------------------------------ parity with transformers


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    data = pytest.importorskip("skimage.data")
    rocket = data.rocket()
    arrays = [data.astronaut(), data.chelsea(), data.coffee(), rocket, np.ascontiguousarray(np.rot90(rocket))]
    return [Image.fromarray(a) for a in arrays]


BICUBIC, BILINEAR = 3, 2  # Hugging Face configs store Pillow's filter numbers


def _hf_processor(family: str, size: int, edge: int, resample: int):
    transformers = pytest.importorskip("transformers")
    if family == "clip":
        return transformers.CLIPImageProcessorPil(
            size={"shortest_edge": edge}, crop_size={"height": size, "width": size}, resample=resample
        )
    return transformers.SiglipImageProcessorPil(size={"height": size, "width": size}, resample=resample)


@pytest.mark.parametrize(
    ("family", "size", "edge", "resample"),
    [
        ("clip", 224, 224, BICUBIC),
        ("clip", 96, 96, BICUBIC),
        ("clip", 224, 256, BILINEAR),
        ("siglip", 224, 224, BICUBIC),
        ("siglip", 96, 96, BILINEAR),
    ],
)
def test_pixels_match_transformers(photos: list[Image.Image], family: str, size: int, edge: int, resample: int) -> None:
    """Same pixels as transformers' PIL-backend processors, on real photos of several aspect ratios."""
    reference = _hf_processor(family, size, edge, resample)
    ours = ImagePreprocessor.from_hf_config(reference.to_dict())
    expected = reference(photos, return_tensors="pt")["pixel_values"]
    got = ours(photos)
    assert got.shape == expected.shape == (len(photos), 3, size, size)
    # Undo the std so the difference is in [0, 1] pixel units.
    diff = ((got - expected) * torch.tensor(ours.std).view(1, 3, 1, 1)).abs()
    # The requirement is 2/255 on average; we measure under 0.1/255 and guard at 0.5/255. The max bound
    # catches a wrong filter (bilinear for bicubic averages only ~1.4/255 but peaks at ~35/255).
    per_image_mean = diff.mean(dim=(1, 2, 3))
    assert per_image_mean.max().item() <= 0.5 / 255, per_image_mean
    assert diff.max().item() <= 8 / 255


@pytest.mark.parametrize("processor", [ImagePreprocessor.clip(32), ImagePreprocessor.siglip(48)])
def test_hf_config_round_trip(processor):
    assert ImagePreprocessor.from_hf_config(processor.to_hf_config()) == processor
