"""`vlmkit tag` and `vlmkit search` as a user meets them: tags with a "none of these" outcome, a threshold
that is a probability, tags listed per file and searchable, and reports titled with their query.

The index holds scikit-image's photos with embeddings the test chooses, and label embeddings are
monkeypatched to fixed directions, so the tests check the tagging rule rather than a random model's taste.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image

from testkit import tiny_conse
from vlmkit.checkpoints import save_pretrained
from vlmkit.cli import main
from vlmkit.errors import InputError
from vlmkit.search import query
from vlmkit.search.models import canonical_model_id
from vlmkit.search.store import ItemMeta, SearchStore

pytest.importorskip("faiss")

DIM = 32  # the tiny ConSE model's embedding width
CAT, DOG_AXIS, TEXTURE = 0, 1, 2
SCALE = 100.0  # exp(logit_scale) of ConSE


def unit(*pairs: tuple[int, float]) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    for axis, value in pairs:
        vector[axis] = value
    return vector / np.linalg.norm(vector)


DOG = unit((CAT, 0.8), (DOG_AXIS, 0.6))  # close to "cat", as the words are: the labels must compete
PHOTOS = {
    "chelsea": unit((CAT, 1.0)),  # clearly a cat
    "coffee": unit((TEXTURE, 1.0)),  # none of the labels: the old softmax gave it cat 0.5 and dog 0.5
    "astronaut": unit((CAT, 1.0), (TEXTURE, 0.985)),  # a cat only about 3 times likelier than a texture
    "rocket": DOG,  # clearly a dog
}


def fake_label_embeddings(model, labels, templates):
    """'cat', 'dog' and 'texture' have fixed directions; every other word its own axis, far from each photo."""
    fixed = {"cat": unit((CAT, 1.0)), "dog": DOG, "texture": unit((TEXTURE, 1.0))}
    others = iter(range(8, DIM))
    rows = [fixed[label] if label in fixed else unit((next(others), 1.0)) for label in labels]
    return torch.from_numpy(np.stack(rows))


def expected_cat_score(vector: np.ndarray, labels: tuple[str, ...]) -> float:
    """The rule by hand: one softmax over the labels and the background words (those not among the labels)."""
    words = [*labels, *(w for w in query.BACKGROUND if w not in labels)]
    logits = SCALE * (fake_label_embeddings(None, words, None).numpy() @ vector)
    weights = np.exp(logits - logits.max())
    return float(weights[words.index("cat")] / weights.sum())


@pytest.fixture(scope="module")
def conse_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_conse")
    save_pretrained(tiny_conse(with_tokenizer=True), directory)
    return directory


@pytest.fixture
def index(conse_dir, photo_files, tmp_path, monkeypatch):
    """An index of the sample photos whose stored vectors are PHOTOS; label embeddings are faked."""
    monkeypatch.setattr(query, "label_embeddings", fake_label_embeddings)
    paths = {path.stem: path for path in photo_files}
    items = [
        ItemMeta(paths[name].resolve().as_posix(), f"hash-{name}", paths[name].stat().st_size, 0.0, 64, 48)
        for name in PHOTOS
    ]
    index_dir = tmp_path / "index"
    with SearchStore.create(index_dir, canonical_model_id(str(conse_dir)), DIM) as store:
        store.add(items, np.stack(list(PHOTOS.values())))
        store.commit()
    return index_dir


def run(capsys, *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def table(lines: list[str]) -> dict[str, str]:
    """`vlmkit tag`'s table as file name -> its tags column."""
    start = next(n for n, line in enumerate(lines) if line.startswith("file"))
    rows = [line for line in lines[start + 1 :] if ".jpg" in line]
    return {row.split()[0]: row.split(None, 1)[1].strip() for row in rows}


def names(lines: list[str]) -> list[str]:
    return [line.rsplit("/", 1)[-1] for line in lines if line.endswith(".jpg")]


def test_a_photo_that_matches_no_label_gets_no_tag(index, capsys):
    code, lines, _ = run(capsys, "tag", str(index), "--labels", "cat,dog", "--no-progress")
    assert code == 0
    assert lines[0] == "tagged 4 files at threshold 0.5: cat 2, dog 1; none of these 1"
    rows = table(lines)
    assert rows["coffee.jpg"] == "-"  # a texture: "none of these", not the least bad label
    assert rows["chelsea.jpg"] == "cat 1.00"  # "dog" is close to "cat" but loses the shared softmax
    assert rows["rocket.jpg"] == "dog 1.00"
    cat = expected_cat_score(PHOTOS["astronaut"], ("cat", "dog"))
    assert 0.7 < cat < 0.8 and rows["astronaut.jpg"] == f"cat {cat:.2f}"


def test_the_table_stays_short(index, capsys, monkeypatch):
    from vlmkit.cli import search as search_cli

    monkeypatch.setattr(search_cli, "TABLE_ROWS", 3)
    _, lines, _ = run(capsys, "tag", str(index), "--labels", "cat,dog", "--no-progress")
    assert lines[1].startswith("file") and lines[1].endswith(f"(files under {index.parent.resolve()})")
    # tagged files first: rocket.jpg before the untagged coffee.jpg
    assert [line.split()[0] for line in lines[2:5]] == ["astronaut.jpg", "chelsea.jpg", "rocket.jpg"]
    assert lines[5] == "... and 1 more file; list a label's files with: vlmkit search INDEX --tag LABEL"


def test_threshold_is_the_probability_a_tag_needs(index, capsys):
    cat = expected_cat_score(PHOTOS["astronaut"], ("cat", "dog"))
    _, lines, _ = run(capsys, "tag", str(index), "--labels", "cat,dog", "--threshold", "0.9", "--no-progress")
    rows = table(lines)
    assert rows["astronaut.jpg"] == "-" and rows["chelsea.jpg"] == "cat 1.00"  # cat ~0.75 < 0.9 <= ~1.0
    _, lines, _ = run(capsys, "tag", str(index), "--labels", "cat,dog", "--threshold", f"{cat - 0.01:.4f}")
    assert table(lines)["astronaut.jpg"] == f"cat {cat:.2f}"
    code, _, err = run(capsys, "tag", str(index), "--labels", "cat", "--threshold", "1.5")
    assert code == 2 and "between 0 and 1" in err
    code, _, err = run(capsys, "tag", str(index), "--labels", " , ")
    assert code == 2 and "at least one label" in err
    with query.Searcher.open(index) as searcher, pytest.raises(InputError, match="at least one label"):
        searcher.tag([], progress=False)


def test_a_label_that_is_a_background_word_competes_once(index, capsys):
    """'texture' as a label takes the background's 'texture' place instead of splitting with it."""
    _, lines, _ = run(capsys, "tag", str(index), "--labels", "cat,texture,cat", "--no-progress")
    rows = table(lines)
    assert rows["coffee.jpg"] == "texture 1.00" and rows["chelsea.jpg"] == "cat 1.00"
    # "texture" was not also a background word: coffee would have split its probability with it (0.50)
    assert lines[0].startswith("tagged 4 files at threshold 0.5: cat 3, texture 1;")  # the duplicate cat counts once


def test_retagging_says_what_it_replaced(index, capsys):
    _, lines, _ = run(capsys, "tag", str(index), "--labels", "cat,dog", "--no-progress")
    assert not any("re-tagged" in line for line in lines)  # nothing to replace the first time
    _, lines, _ = run(capsys, "tag", str(index), "--labels", "cat,bird", "--no-progress")
    assert lines[-1] == "3 files re-tagged; replaced labels: cat, dog"
    assert "dog" not in table(lines)["rocket.jpg"]  # its old tag is gone


def test_search_by_tag_lists_tagged_files_best_first(index, conse_dir, photo_files, capsys):
    run(capsys, "tag", str(index), "--labels", "cat,dog", "--no-progress")
    code, lines, _ = run(capsys, "search", str(index), "--tag", "cat")
    assert code == 0 and names(lines) == ["chelsea.jpg", "astronaut.jpg"]
    scores = [float(line.split()[1]) for line in lines]
    cat = expected_cat_score(PHOTOS["astronaut"], ("cat", "dog"))
    assert scores == pytest.approx([1.0, cat], abs=1e-3)  # the tag scores
    _, lines, _ = run(capsys, "search", str(index), "--tag", "cat", "--min-score", "0.9")
    assert names(lines) == ["chelsea.jpg"]
    _, lines, _ = run(capsys, "search", str(index), "--tag", "cat", "-k", "1")
    assert names(lines) == ["chelsea.jpg"]
    _, lines, _ = run(capsys, "search", str(index), "--tag", "cat", "--tag", "dog")
    assert lines == ["no results"]  # every tag must be present
    _, lines, _ = run(capsys, "search", str(index), "--tag", "bird")
    assert lines == ["no results"]
    # with a query: only tagged files, ranked by the query
    _, lines, _ = run(capsys, "search", str(index), "the cat", "--tag", "cat", "-k", "10")
    assert sorted(names(lines)) == ["astronaut.jpg", "chelsea.jpg"]
    rocket = next(path for path in photo_files if path.stem == "rocket")
    _, lines, _ = run(capsys, "search", str(index), "--image", str(rocket), "--tag", "dog")
    assert names(lines) == ["rocket.jpg"]
    code, _, err = run(capsys, "search", str(index), "--tag", "cat", "--model", str(conse_dir.parent))
    assert code == 2 and "was built with model" in err


def test_search_needs_something_to_look_for(index, capsys):
    code, _, err = run(capsys, "search", str(index))
    assert code == 2 and "--tag LABEL" in err
    code, _, err = run(capsys, "search", str(index), "a cat", "--image", "x.jpg")
    assert code == 2 and "not both" in err


def test_reports_carry_their_query_as_title(index, photo_files, tmp_path, capsys):
    from vlmkit.search.query import search_text
    from vlmkit.search.report import write_png

    page, picture = tmp_path / "r.html", tmp_path / "r.png"
    argv = ["search", str(index), "a cup of coffee", "-k", "2", "--html", str(page), "--png", str(picture)]
    assert run(capsys, *argv)[0] == 0
    assert '<h1>vlmkit search: "a cup of coffee"</h1>' in html.unescape(page.read_text())
    untitled = tmp_path / "plain.png"
    write_png(search_text(index, "a cup of coffee", k=2), untitled)
    titled, plain = np.asarray(Image.open(picture).convert("L")), np.asarray(Image.open(untitled).convert("L"))
    band = titled.shape[0] - plain.shape[0]
    assert titled.shape[1] == plain.shape[1] and band > 16
    assert (titled[band:] == plain).all()  # the same grid, under a title band
    assert (titled[:band] < 128).sum() > 50  # with dark text in it

    coffee = next(path for path in photo_files if path.stem == "coffee")
    argv = ["search", str(index), "--image", str(coffee), "-k", "2", "--html", str(page), "--png", str(picture)]
    assert run(capsys, *argv)[0] == 0
    text = html.unescape(page.read_text())
    head = text.split("<main>")[0]
    assert "<title>vlmkit search: image coffee.jpg</title>" in head and str(coffee.parent) not in head
    assert Image.open(picture).size[1] == titled.shape[0]

    run(capsys, "tag", str(index), "--labels", "cat,dog", "--no-progress")
    assert run(capsys, "search", str(index), "--tag", "cat", "--html", str(page))[0] == 0
    assert "<h1>vlmkit search: tag cat</h1>" in html.unescape(page.read_text())


def test_expected_scores_follow_the_softmax_rule():
    """The helper above is the documented rule: a cat-direction photo leaves ~nothing to the background."""
    assert expected_cat_score(PHOTOS["chelsea"], ("cat", "dog")) == pytest.approx(1.0, abs=1e-6)
    assert expected_cat_score(PHOTOS["coffee"], ("cat", "dog")) < math.exp(-50)


def test_documents_are_found_by_their_words_with_page_line_and_a_highlight(conse_dir, tmp_path, capsys):
    pytest.importorskip("pypdfium2")
    from doc_scans import write_text_pdf

    folder, index_dir, page = tmp_path / "docs", tmp_path / "index", tmp_path / "found.html"
    folder.mkdir()
    write_text_pdf(folder / "memo.pdf", ["Staff meeting on Friday", "Bring the invoice 4471"])
    write_text_pdf(folder / "report.pdf")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7 and then nothing")
    argv = ["index", str(folder), "--index", str(index_dir), "--model", str(conse_dir), "--workers", "0"]
    code, lines, _ = run(capsys, *argv, "--no-progress")
    assert code == 0 and lines[0].startswith("3 files scanned: 2 added") and "1 failed" in lines[0]
    assert lines[1].startswith(f"  skipped {(folder / 'broken.pdf').resolve()}: ") and "not a readable PDF" in lines[1]

    code, lines, _ = run(capsys, "search", str(index_dir), "the invoice 4471", "-k", "2", "--html", str(page))
    assert code == 0 and lines[0].endswith('memo.pdf  page 1  "Bring the invoice 4471"')
    assert lines[1].endswith("report.pdf  page 1")  # found by its look alone: no line of it matches
    _, lines, _ = run(capsys, "search", str(index_dir), "revenue", "--mode", "text")
    assert len(lines) == 1 and lines[0].endswith('report.pdf  page 1  "Revenue grew by 12 percent"')

    report = page.read_text()
    assert "<mark>Bring the invoice 4471</mark>" in report and "memo.pdf page 1" in report
    thumbs = [
        np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"), dtype=int)
        for data in re.findall(r"data:image/jpeg;base64,([A-Za-z0-9+/=]+)", report)
    ]
    yellow = [(t[..., 0] > 200) & (t[..., 1] > 140) & (t[..., 2] < 110) for t in thumbs]
    assert thumbs[0].shape == (144, 192, 3) and not yellow[1].any()  # the page, fitted; no match, no mark
    rows, columns = np.nonzero(yellow[0])
    scale = 192 / 800  # the page renders at 800 x 600 px (4 x 3 in at 200 dpi)
    box = query.search_text(index_dir, "the invoice 4471", k=1)[0].box
    assert len(rows) > 200  # the outline of the matching line, a few pixels thick
    assert box[0] * scale - 8 < columns.min() < box[0] * scale and box[2] * scale < columns.max() < box[2] * scale + 8
    assert box[1] * scale - 8 < rows.min() < box[1] * scale and box[3] * scale < rows.max() < box[3] * scale + 8


COMMANDS = [["index", "PHOTOS"], ["search", "IDX", "a cat"], ["tag", "IDX", "--labels", "cat"]]


@pytest.mark.parametrize("command", COMMANDS)
def test_search_commands_take_the_device_option(tmp_path, capsys, command):
    if torch.cuda.is_available():
        pytest.skip("checks the message on machines without CUDA")
    argv = [str(tmp_path) if part in ("PHOTOS", "IDX") else part for part in command]
    if command[0] == "index":
        argv += ["--index", str(tmp_path / "idx")]
    assert main([*argv, "--device", "cuda"]) == 2
    assert "--device cuda: torch sees no CUDA device" in capsys.readouterr().err
