"""The arena over HTTP: two anonymous streamed answers, names only in the vote's answer, limits as serve's."""

from __future__ import annotations

import base64
import io
import subprocess
import sys

import pytest
from arena_live import NAMES, arena_app, events
from fastapi.testclient import TestClient
from PIL import Image

from vlmkit.arena.votes import VoteStore


def png_url(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@pytest.fixture
def client(tmp_path):
    app, arena = arena_app(tmp_path / "votes.db")
    with TestClient(app) as client:
        client.arena = arena
        yield client


def battle(client, **body):
    with client.stream("POST", "/arena/battle", json={"prompt": "what colour is it?", **body}) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = "".join(response.iter_text())
    return raw, events(raw.splitlines()), response.headers


def test_battle_streams_two_anonymous_answers_and_the_vote_reveals_them(client, tmp_path):
    raw, found, headers = battle(client, image=png_url(40, 30))
    assert not any(name in raw or name in str(headers) for name in NAMES), "a name leaked before the vote"
    battle_id = found[0]["battle"]
    for side in ("a", "b"):
        assert sum(1 for e in found if e.get("side") == side and "text" in e) >= 2, "not streamed in pieces"
        assert {"side": side, "done": True, "reason": "length"} in found
    assert found[-1] == {"ready": True}
    assert set().union(*(e.keys() for e in found)) <= {"battle", "side", "text", "done", "reason", "ready"}

    page, health = client.get("/").text, client.get("/healthz").json()
    assert not any(name in page or name in str(health) for name in NAMES)
    assert health["votes"] == 0

    voted = client.post("/arena/vote", json={"battle": battle_id, "winner": "tie (bothbad)"})
    assert voted.status_code == 200, voted.text
    result = voted.json()
    assert {result["model_a"], result["model_b"]} <= set(NAMES) and result["model_a"] != result["model_b"]
    with VoteStore.open_existing(tmp_path / "votes.db") as store:
        (stored,) = store.battles()
    assert (stored.model_a, stored.model_b, stored.winner) == (result["model_a"], result["model_b"], "tie (bothbad)")

    again = client.post("/arena/vote", json={"battle": battle_id, "winner": "model_a"})
    assert again.status_code == 404 and again.json()["error"]["code"] == "battle_not_found"


def test_pairs_are_distinct_and_vary(client):
    pairs = set()
    for _ in range(12):
        pending, services = client.arena.new_battle()
        assert {side: s.model_id for side, s in services.items()} == pending.models
        assert pending.models["a"] != pending.models["b"]
        pairs.add((pending.models["a"], pending.models["b"]))
    assert len(pairs) >= 3  # 6 ordered pairs: twelve draws give several


def test_a_battle_takes_its_vote_only_when_both_answers_are_complete(client):
    pending, _ = client.arena.new_battle()
    response = client.post("/arena/vote", json={"battle": pending.id, "winner": "model_a"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "battle_not_done"
    client.arena.finished(pending, "a")
    client.arena.finished(pending, "b")
    assert client.post("/arena/vote", json={"battle": pending.id, "winner": "model_b"}).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"prompt": "hi", "image": png_url(300, 300)}, 400, "invalid_image"),  # over max_image_pixels
        ({"prompt": "hi", "image": "http://example.com/a.png"}, 400, "invalid_image"),
        ({"prompt": "hi", "image": "data:image/png;base64,!!!"}, 400, "invalid_image"),
        ({"prompt": "<image> hi"}, 400, "invalid_value"),
        ({"prompt": ""}, 400, "invalid_value"),
        ({"prompt": "hi", "model": "tiny-vlm-red"}, 400, "invalid_value"),  # no choosing the model
        ({"prompt": "x" * 300_000}, 413, "body_too_large"),
        ({"prompt": "describe " * 100}, 400, "invalid_value"),  # more tokens than the models' context
    ],
)
def test_bad_battles_are_refused_as_serve_refuses_them(client, body, status, code):
    response = client.post("/arena/battle", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert not client.arena.pending, "a refused request left a battle behind"


def test_bad_votes_are_refused(client):
    assert client.post("/arena/vote", json={"battle": "nope", "winner": "model_a"}).status_code == 404
    response = client.post("/arena/vote", json={"battle": "nope", "winner": "model_c"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "winner"


def test_leaderboard_page_shows_the_ratings(client):
    assert "No votes yet." in client.get("/leaderboard").text
    for _ in range(3):
        _, found, _ = battle(client)
        assert client.post("/arena/vote", json={"battle": found[0]["battle"], "winner": "model_a"}).status_code == 200
    page = client.get("/leaderboard")
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.text.count("<tr>") - 1 == len({n for n in NAMES if n in page.text}) >= 2


def test_the_arena_imports_without_the_search_extra():
    """The arena serves votes and ratings, not search: faiss (the search extra) must not be needed to start it."""
    blocker = (
        "import sys\n"
        "class NoFaiss:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'faiss':\n"
        "            raise ImportError('faiss is blocked')\n"
        "sys.meta_path.insert(0, NoFaiss())\n"
        "import vlmkit.arena.app, vlmkit.serving.app\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'faiss'))\n"
    )
    done = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
