"""The web page in a real headless Chromium (Debian's package, driven by Playwright): upload an image,
chat about it with a streamed answer, classify it, search the index by text and by the image; read a page.

Random tiny models answer gibberish: the checks are on mechanics (text arrives in several pieces,
bars and thumbnails appear), not on content. A screenshot is saved under the test's tmp dir.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from serving_live import API_KEY, server, shapes_png  # noqa: F401 - server is a fixture

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The machine's network is closed: without these, Chromium keeps trying to reach Google's services.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it with apt-get)"
)

# Counts how many times the streamed answer's text changed, to tell streaming from one late update.
COUNT_UPDATES = """() => {
  window.answerUpdates = 0;
  new MutationObserver((records) => {
    for (const r of records) if (r.target.closest && r.target.closest("li.assistant")) window.answerUpdates++;
  }).observe(document.getElementById("transcript"), {childList: true, subtree: true, characterData: true});
}"""


@pytest.fixture
def page(tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 960})
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.set_default_timeout(20_000)
        try:
            yield page
        finally:
            browser.close()


def test_page_streams_chat_classifies_and_searches(server, page, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    picture = tmp_path / "shapes.png"
    picture.write_bytes(shapes_png(7, size=192))

    page.goto(server.url + "/")
    expect(page.locator("#status")).to_contain_text("API key")  # the server asks for one
    page.fill("#api-key", API_KEY)
    page.dispatch_event("#api-key", "change")
    expect(page.locator("#status")).to_contain_text("Connected")

    page.set_input_files("#image-input", str(picture))
    expect(page.locator("#preview")).to_be_visible()

    page.evaluate(COUNT_UPDATES)
    page.fill("#question", "What colour is the circle?")
    page.keyboard.press("Enter")  # Enter in the message box sends
    answer = page.locator("#transcript li.assistant")
    expect(answer).to_have_attribute("data-done", "true")
    assert "error" not in (answer.get_attribute("class") or ""), answer.inner_text()
    assert answer.locator(".text").inner_text().strip()
    assert page.evaluate("window.answerUpdates") >= 2, "the answer arrived in one piece, not streamed"

    page.fill("#labels", "circle, square, triangle")
    page.click("#classify")
    bars = page.locator("#bars li")
    expect(bars).to_have_count(3)
    shares = [float(text.rstrip("%")) for text in page.locator("#bars .value").all_inner_texts()]
    assert sum(shares) == pytest.approx(100, abs=0.5)

    page.fill("#query", "a red circle")
    page.click("#search-text")
    thumbnails = page.locator("#results img")
    expect(thumbnails).to_have_count(6)  # the whole tiny index
    page.wait_for_function(
        "[...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)"
    )

    page.click("#search-image")
    expect(page.locator("#search-status")).to_have_text("6 results.")
    page.screenshot(path=str(tmp_path / "web.png"), full_page=True)
    assert not page.errors, page.errors


def test_page_reads_a_dropped_page_and_draws_its_regions(page, tmp_path):
    from playwright.sync_api import expect
    from serving_live import serve

    from doc_scans import clean_page
    from vlmkit.serving import ServedModels, create_app

    picture = tmp_path / "note.png"
    clean_page("Please pay 128.50 by Friday", size=28).save(picture)
    with serve(create_app(ServedModels(read_engine="ppocr"))) as url:
        page.goto(url + "/")
        expect(page.locator("#status")).to_contain_text("read")
        expect(page.locator("#chat-section")).to_be_hidden()
        page.set_input_files("#image-input", str(picture))
        page.click("#read")
        expect(page.locator("#read-text")).to_have_text("Please pay 128.50 by Friday", timeout=60_000)
        expect(page.locator("#read-status")).to_have_text("1 line, 5 words (ppocr).")
        expect(page.locator("#regions")).to_be_visible()
        # the canvas holds the drawn regions: some pixels are tinted, neither white paper nor black ink
        tinted = page.evaluate(
            """() => { const c = document.getElementById('regions'); const d = c.getContext('2d')
                .getImageData(0, 0, c.width, c.height).data; let n = 0;
                for (let i = 0; i < d.length; i += 4) if (d[i + 1] > d[i] + 40 && d[i + 1] > d[i + 2] + 40) n++;
                return n; }"""
        )
        assert tinted > 100
        page.screenshot(path=str(tmp_path / "read.png"), full_page=True)
    assert not page.errors, page.errors


def _pixel(page, selector: str, x: int, y: int) -> list[int]:
    return page.evaluate(
        f"""() => Array.from(document.querySelector('{selector}').getContext('2d').getImageData({x}, {y}, 1, 1)
            .data.slice(0, 3))"""
    )


def test_page_draws_labelled_boxes_and_translucent_masks_over_the_image(page, tmp_path, monkeypatch):
    import numpy as np
    import torch
    from PIL import Image
    from playwright.sync_api import expect
    from scripted_chat import script_chat
    from serving_live import serve

    import vlmkit.tasks.ground as ground
    from grounding_kit import GridCodec, grounding_vlm, script
    from vlmkit.processing.locations import format_object
    from vlmkit.processing.masks import mask_crop
    from vlmkit.serving import ServedModels, create_app

    torch.manual_seed(0)
    model, codec = grounding_vlm(), GridCodec()
    picture = tmp_path / "grey.png"
    Image.new("RGB", (160, 120), (128, 128, 128)).save(picture)
    box = [32, 20, 96, 84]  # a 64 px square: the mask is its left half
    truth = np.zeros((120, 160), dtype=bool)
    truth[20:84, 32:64] = True
    codes = codec.encode(torch.from_numpy(mask_crop(truth, box))[None])[0].tolist()
    script(monkeypatch, ground, lambda prompt: format_object("star", box, 160, 120, codes))
    script_chat(monkeypatch, model, format_object("circle", [100, 10, 150, 60], 160, 120))
    with serve(create_app(ServedModels(chat=model, chat_id="grounder", mask_tokenizer=codec))) as url:
        page.goto(url + "/")
        expect(page.locator("#status")).to_contain_text("segment")
        page.set_input_files("#image-input", str(picture))
        page.fill("#find", "star")
        page.click("#segment")
        expect(page.locator("#ground-status")).to_have_text("1 object found by segmenting.")
        expect(page.locator("#object-list li")).to_have_text("star · box 32, 20, 96, 84 · mask")
        expect(page.locator("#objects")).to_be_visible()
        inside, outside = _pixel(page, "#objects", 48, 52), _pixel(page, "#objects", 80, 52)
        assert outside == [128, 128, 128]  # in the box, off the mask: the image itself
        assert inside != outside and max(abs(v - 128) for v in inside) > 20  # tinted, and translucent:
        assert all(0 < v < 255 for v in inside)  # halfway between the grey and the label's colour
        edge = _pixel(page, "#objects", 95, 60)  # on the box's right side: outlined in the same colour
        assert edge != outside

        page.fill("#question", "where is the circle?")
        page.keyboard.press("Enter")
        expect(page.locator("#transcript li.assistant")).to_have_attribute("data-done", "true")
        expect(page.locator("#ground-status")).to_have_text("1 object found by the answer.")
        expect(page.locator("#object-list li")).to_have_text("circle · box 100, 10, 150, 60")
        assert _pixel(page, "#objects", 48, 52) == [128, 128, 128]  # redrawn: the old mask is gone
        assert _pixel(page, "#objects", 100, 35) != [128, 128, 128]
        page.screenshot(path=str(tmp_path / "objects.png"), full_page=True)
    assert not page.errors, page.errors


def test_page_plays_a_dropped_clip_and_marks_the_answer_s_moment(page, tmp_path, monkeypatch):
    import numpy as np
    import torch
    from playwright.sync_api import expect
    from scripted_chat import script_chat
    from serving_live import serve, tiny_chat_model

    from vlmkit.data.videoworld import encode_mp4, resolve_codec
    from vlmkit.serving import ServedModels, ServerLimits, create_app

    pytest.importorskip("av")
    torch.manual_seed(0)
    model = tiny_chat_model()
    rng = np.random.default_rng(0)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(encode_mp4([rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(12)], 6,
                                resolve_codec("auto")))  # fmt: skip
    runs = script_chat(monkeypatch, model, "1.25 to 1.75")
    with serve(create_app(ServedModels(chat=model), ServerLimits(video_frames=3))) as url:
        page.goto(url + "/")
        expect(page.locator("#status")).to_contain_text("chat, video")
        page.set_input_files("#image-input", str(clip))
        expect(page.locator("#clip")).to_be_visible()
        expect(page.locator("#preview")).to_be_hidden()
        assert page.evaluate("document.getElementById('player').src").startswith("blob:")
        expect(page.locator("#moment")).to_be_hidden()
        page.fill("#question", "When does the star appear?")
        page.keyboard.press("Enter")
        expect(page.locator("#transcript li.assistant .text")).to_have_text("1.25 to 1.75")
        expect(page.locator("#moment")).to_be_visible()
        expect(page.locator("#moment-text")).to_contain_text("1.25 s to 1.75 s of 2 s")
        left, width = page.evaluate(
            "(() => { const s = document.getElementById('moment').style; return [parseFloat(s.left), "
            "parseFloat(s.width)]; })()"
        )
        assert left == pytest.approx(62.5, abs=0.5) and width == pytest.approx(25, abs=0.5)
        page.screenshot(path=str(tmp_path / "clip.png"), full_page=True)
    assert len(runs) == 1 and model.tokenizer.decode(runs[0].input_ids[0]).count("frame at ") == 3
    assert not page.errors, page.errors


def test_page_draws_images_from_a_prompt(page, tmp_path):
    from playwright.sync_api import expect
    from serving_live import serve

    from t2i_kit import tiny_dit
    from vlmkit.serving import ServedModels, create_app

    with serve(create_app(ServedModels(t2i=tiny_dit(), t2i_id="dit"))) as url:
        page.goto(url + "/")
        expect(page.locator("#status")).to_contain_text("images")
        expect(page.locator("#imagine-section")).to_be_visible()
        page.fill("#imagine-prompt", "a green circle")
        page.fill("#imagine-n", "3")
        page.click("#imagine")
        expect(page.locator("#drawn img")).to_have_count(3)
        expect(page.locator("#imagine-status")).to_contain_text("3 images in")
        # every picture decoded to the model's 16 x 16 pixels
        sizes = page.evaluate("() => Array.from(document.querySelectorAll('#drawn img'), (i) => i.naturalWidth)")
        assert sizes == [16, 16, 16]
        page.fill("#imagine-prompt", " ")
        page.click("#imagine")
        expect(page.locator("#imagine-status")).to_have_text("Describe the image to draw.")
        page.screenshot(path=str(tmp_path / "imagine.png"), full_page=True)
    assert not page.errors, page.errors
