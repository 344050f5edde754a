"""Each command given the wrong kind of model says which kind it needs, in one line, exit 2; the ConSE
model works wherever a dual encoder does (classify, embed, eval)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from testkit import TINY_EFFNET, tiny_bert_text, tiny_model, tiny_tokenizer
from tiny_vlm import tiny_vlm
from vlmkit.checkpoints import save_pretrained
from vlmkit.cli import main


def tiny_conse_with_tokenizer():
    """A tiny ConSE model whose text tower's vocabulary fits the tiny BPE tokenizer it carries."""
    import torch
    import torch.nn.functional as F

    from vlmkit.config import ConSEConfig
    from vlmkit.models.conse import ConSEModel
    from vlmkit.processing.images import ImagePreprocessor

    tokenizer = tiny_tokenizer()
    text = tiny_bert_text(vocab_size=tokenizer.vocab_size)
    model = ConSEModel(ConSEConfig(vision=TINY_EFFNET, text=text, top_k=3)).eval()
    model.class_embeddings.copy_(F.normalize(torch.randn(7, 32), dim=-1))
    model.tokenizer = tokenizer
    model.image_processor = ImagePreprocessor.clip(32)
    return model


@pytest.fixture
def models(tmp_path):
    paths = {}
    for name, build in (("clip", tiny_model), ("vlm", tiny_vlm), ("conse", tiny_conse_with_tokenizer)):
        save_pretrained(build(), tmp_path / name)
        paths[name] = str(tmp_path / name)
    return paths


def _one_line_error(capsys, *expected: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for text in expected:
        assert text in err, err
    return err


def test_a_generative_model_is_not_a_dual_encoder(models, photo_files, tmp_path, capsys):
    image = str(photo_files[0])
    for argv in (
        ["classify", image, "--labels", "cat,dog", "--model", models["vlm"]],
        ["embed", image, "--model", models["vlm"], "--out", str(tmp_path / "e.npy")],
        ["embed", "a cat", "--text", "--model", models["vlm"], "--out", str(tmp_path / "e.npy")],
    ):
        assert main(argv) == 2
        err = _one_line_error(capsys, "is a vision-language model", f"{argv[0]} needs a dual encoder", "caption")
        assert err.startswith(f"vlmkit {argv[0]}: error: {models['vlm']}")
    assert not (tmp_path / "e.npy").exists()


@pytest.mark.parametrize("kind", ["clip", "conse"])
def test_a_dual_encoder_cannot_caption_ask_or_chat(models, photo_files, capsys, kind):
    image = str(photo_files[0])
    for argv in (
        ["caption", image, "--model", models[kind]],
        ["ask", image, "what is it?", "--model", models[kind]],
        ["chat", image, "--model", models[kind]],
    ):
        assert main(argv) == 2
        _one_line_error(capsys, "dual encoder", f"{argv[0]} needs a vision-language model", "classify, embed")


def test_conse_classifies_and_embeds_like_a_dual_encoder(models, photo_files, tmp_path, capsys):
    images = list(map(str, photo_files[:2]))
    assert main(["classify", *images, "--labels", "cat,dog,car", "--model", models["conse"], "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["image"] for line in lines] == images
    assert abs(sum(p["probability"] for p in lines[0]["predictions"]) - 1) < 1e-4
    assert main(["embed", *images, "--model", models["conse"], "--out", str(tmp_path / "i.npy")]) == 0
    texts = ["a cat", "a dog", "--text"]
    assert main(["embed", *texts, "--model", models["conse"], "--out", str(tmp_path / "t.npy")]) == 0
    for name in ("i.npy", "t.npy"):
        vectors = np.load(tmp_path / name)
        assert vectors.shape == (2, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def test_eval_takes_conse_as_a_dual_encoder(models, shapes_dataset, tmp_path, capsys):
    out = tmp_path / "report"
    argv = ["eval", "--model", models["conse"], "--data", str(shapes_dataset / "val"), "--limit", "4"]
    assert main([*argv, "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model_type"] == "ConSEModel" and set(report["tasks"]) == {"zero_shot", "retrieval"}


def test_python_api_errors_name_the_kind(photo_files):
    from vlmkit.errors import InputError
    from vlmkit.tasks import classify, embed_images
    from vlmkit.tasks.caption import caption

    with pytest.raises(InputError, match="cannot embed images and texts"):
        embed_images(tiny_vlm(), photo_files[:1])
    with pytest.raises(InputError, match="cannot embed images and texts"):
        classify(tiny_vlm(), photo_files[:1], ["cat"])
    with pytest.raises(InputError, match="cannot generate text"):
        caption(tiny_model(), photo_files[:1])
