"""``vlmkit serve``: model directories and an index from the command line, and its refusals."""

from __future__ import annotations

import httpx
import pytest
import torch
from serving_live import build_index, data_url, serve, shapes_png, tiny_chat_model, tiny_encoder

from vlmkit.checkpoints import save_pretrained
from vlmkit.cli import build_parser, main
from vlmkit.cli.serve import build_app
from vlmkit.errors import ConfigError


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("cli")
    encoder = tiny_encoder()
    save_pretrained(encoder, root / "clip-small")
    save_pretrained(tiny_chat_model(), root / "vlm-small")
    (root / "images").mkdir()
    build_index(root / "images", encoder, count=3).close()  # its manifest names the model "tiny-clip"
    return root


def args(*extra: str):
    return build_parser().parse_args(["serve", *extra])


def test_serves_the_directories_and_the_index_under_their_names(saved, monkeypatch):
    monkeypatch.setenv("VLMKIT_API_KEY", "from-env")
    app = build_app(
        args("--model", str(saved / "clip-small"), "--vlm", str(saved / "vlm-small"), "--model-name", "tiny-clip",
             "--index", str(saved / "images/index"), "--images-root", str(saved / "images"), "--max-tokens-cap", "8")
    )  # fmt: skip
    with serve(app) as url:
        headers = {"Authorization": "Bearer from-env"}
        models = httpx.get(url + "/v1/models", headers=headers).json()["data"]
        assert {m["id"]: m["capabilities"] for m in models} == {
            "vlm-small": ["chat"],
            "tiny-clip": ["embeddings", "classify", "search"],
        }
        hits = httpx.post(url + "/v1/search", json={"image": data_url(shapes_png(1))}, headers=headers).json()["data"]
        assert sorted(h["path"] for h in hits) == ["shape0.png", "shape1.png", "shape2.png"]
        assert all(h["thumbnail"].startswith("data:image/jpeg") for h in hits)
        body = {"model": "vlm-small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 9}
        assert httpx.post(url + "/v1/chat/completions", json=body, headers=headers).status_code == 400  # cap is 8


def test_refusals_are_one_line_errors(saved, capsys):
    assert main(["serve"]) == 2
    assert "give --model" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="expected a VisionLanguageModel or Decoder"):
        build_app(args("--vlm", str(saved / "clip-small")))
    with pytest.raises(ConfigError, match="built with model 'tiny-clip'"):
        build_app(args("--vlm", str(saved / "vlm-small"), "--index", str(saved / "images/index")))
    with pytest.raises(ConfigError, match="both called"):
        build_app(
            args("--model", str(saved / "clip-small"), "--vlm", str(saved / "vlm-small"), "--vlm-name", "clip-small")
        )
    with pytest.raises(ConfigError, match="is not a folder"):
        build_app(args("--model", str(saved / "clip-small"), "--allow-local-folder", str(saved / "nowhere")))


def test_an_index_serves_alone_with_the_model_that_built_it(tmp_path, photo_files):
    """`vlmkit index PHOTOS --index IDX` then `vlmkit serve --index IDX`: nothing else needed, and a ConSE
    model (the offline default's kind) serves embeddings, classification and search like a dual encoder."""
    from testkit import tiny_conse

    conse_dir = tmp_path / "conse"
    save_pretrained(tiny_conse(with_tokenizer=True), conse_dir)
    photos = photo_files[0].parent
    assert main(["index", str(photos), "--index", str(tmp_path / "idx"), "--model", str(conse_dir)]) == 0
    with serve(build_app(args("--index", str(tmp_path / "idx")))) as url:
        models = httpx.get(url + "/v1/models").json()["data"]
        assert [(m["id"], set(m["capabilities"])) for m in models] == [("conse", {"embeddings", "classify", "search"})]
        embedded = httpx.post(url + "/v1/embeddings", json={"model": models[0]["id"], "input": ["a cat"]})
        assert embedded.status_code == 200 and len(embedded.json()["data"][0]["embedding"]) > 0
        hits = httpx.post(url + "/v1/search", json={"text": "a cup of coffee", "k": 2}).json()["data"]
        assert len(hits) == 2 and all(h["path"].endswith(".jpg") for h in hits)


def test_run_directories_are_named_for_their_run(tmp_path):
    from vlmkit.cli.serve import model_id

    for run in ("clip_run", "instruct_run"):
        (tmp_path / run / "model").mkdir(parents=True)
        (tmp_path / run / "run.json").write_text("{}")
    assert model_id(str(tmp_path / "clip_run" / "model"), None) == "clip_run"
    assert model_id(str(tmp_path / "instruct_run" / "model"), None) == "instruct_run"
    assert model_id(str(tmp_path / "clip_run" / "model"), "mine") == "mine"


def test_t2i_serves_image_generations(saved, tmp_path):
    from t2i_kit import tiny_dit

    save_pretrained(tiny_dit(), tmp_path / "dit-small")
    app = build_app(args("--t2i", str(tmp_path / "dit-small")))
    assert app.state.imagine.model_id == "dit-small" and app.state.imagine.size == "16x16"
    with pytest.raises(ConfigError, match=r"--t2i .*expected a DiT"):
        build_app(args("--t2i", str(saved / "clip-small")))
