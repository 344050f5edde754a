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
