"""The vote flow in a real headless Chromium (Debian's package, driven by Playwright), launched exactly as
tests/serving/test_web_page.py launches it: drop an image on the page, ask, watch both answers stream,
vote, see the names, find them on the leaderboard."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import pytest
from arena_live import NAMES, arena_app, tiny_models

# the serving tests' uvicorn-in-a-thread and their Chromium, reused rather than copied
sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))
from serving_live import serve, shapes_png, slow_down
from test_web_page import CHROMIUM, CHROMIUM_FLAGS

from vlmkit.arena.votes import VoteStore

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it with apt-get)"
)

# Drops a PNG (base64) on the drop zone, as dragging a file from the desktop does.
DROP = """(png) => {
  const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], "shapes.png", {type: "image/png"}));
  const options = {dataTransfer: transfer, bubbles: true, cancelable: true};
  document.getElementById("drop-zone").dispatchEvent(new DragEvent("drop", options));
}"""

# Counts how many times each answer's text changed, to tell streaming from one late update.
COUNT_UPDATES = """() => {
  window.updates = {a: 0, b: 0};
  for (const side of ["a", "b"]) new MutationObserver(() => window.updates[side]++)
    .observe(document.getElementById("answer-" + side), {childList: true, subtree: true, characterData: true});
}"""


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_context(viewport={"width": 1280, "height": 960}).new_page()
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.set_default_timeout(20_000)
        try:
            yield page
        finally:
            browser.close()


def test_vote_flow_reveals_names_only_after_the_vote(page, tmp_path):
    from playwright.sync_api import expect

    picture = tmp_path / "shapes.png"
    picture.write_bytes(shapes_png(3, size=128))
    models = tiny_models()
    for model in models.values():
        slow_down(model.decoder, 0.03)  # tokens spread out in time, so streaming shows as several updates
    app, _ = arena_app(tmp_path / "votes.db", models)
    with serve(app) as url:
        page.goto(url + "/")
        page.evaluate(DROP, base64.b64encode(picture.read_bytes()).decode("ascii"))
        expect(page.locator("#preview")).to_be_visible()
        expect(page.locator("#drop-text")).to_have_text("shapes.png")
        page.evaluate(COUNT_UPDATES)
        page.fill("#prompt", "What colour is the circle?")
        page.keyboard.press("Enter")
        for side in ("a", "b"):
            expect(page.locator(f"#answer-{side}")).to_have_attribute("data-done", "true")
            assert page.locator(f"#answer-{side}").inner_text().strip()
        assert page.evaluate("window.updates.a") >= 2 and page.evaluate("window.updates.b") >= 2, "not streamed"
        expect(page.locator("#vote-a")).to_be_enabled()
        assert not any(name in page.content() for name in NAMES), "a name is on the page before the vote"
        expect(page.locator("#name-a")).to_be_hidden()

        page.click("#vote-b")
        expect(page.locator("#name-a")).to_be_visible()
        shown = [page.locator(f"#name-{side}").inner_text().strip("()") for side in ("a", "b")]
        assert set(shown) <= set(NAMES) and shown[0] != shown[1]
        expect(page.locator("#status")).to_contain_text("your vote is counted")
        expect(page.locator("#vote-a")).to_be_disabled()
        with VoteStore.open_existing(tmp_path / "votes.db") as store:
            (vote,) = store.battles()
        assert [vote.model_a, vote.model_b, vote.winner] == [*shown, "model_b"]
        page.screenshot(path=str(tmp_path / "arena.png"), full_page=True)

        page.click("text=Leaderboard")
        expect(page.locator("#leaderboard tbody tr")).to_have_count(2)
        assert page.locator("#leaderboard tbody tr").first.locator("td").nth(1).inner_text() == shown[1]
    assert not page.errors, page.errors
