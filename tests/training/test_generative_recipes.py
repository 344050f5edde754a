"""The generative pipeline end to end on tiny data: lm -> align -> instruct (LoRA) -> eval."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch

from testkit import TINY_EFFNET, tiny_bert_directory, tiny_conse
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.checkpoints.bert import bert_decoder
from vlmkit.data.records import RecordDataset
from vlmkit.data.sampling import epoch_order, shard
from vlmkit.errors import ConfigError
from vlmkit.evaluation.runner import evaluate
from vlmkit.models import VisionLanguageModel
from vlmkit.processing.chat import CAPTION_PROMPT
from vlmkit.tasks.chat import ask
from vlmkit.training.batches import ChatBatch
from vlmkit.training.distributed import init_distributed
from vlmkit.training.recipes import AlignRecipe, ClipRecipe, InstructRecipe, LmRecipe
from vlmkit.training.recipes.chat import conversation
from vlmkit.training.run import run
from vlmkit.training.trainer import TrainConfig, Trainer
from vlmkit.training.vision_cache import tokens_key


def _train(recipe, run_dir):
    result = run(recipe, run_dir, device="cpu")
    return result.model, result.model_dir


STEPS = TrainConfig(steps=2, batch_size=8, warmup_steps=0, log_every=1)


@pytest.fixture(scope="module")
def parts(shapes_dataset, tmp_path_factory):
    """A 2-step CLIP run and a 2-step LM: the inputs of the align stage."""
    root = tmp_path_factory.mktemp("parts")
    data = str(shapes_dataset / "train")
    _train(ClipRecipe(data=data, image_size=32, vocab_size=300, train=STEPS), root / "clip")
    _, lm_dir = _train(LmRecipe(data=data, vocab_size=300, train=STEPS), root / "lm")
    return str(root / "clip"), str(lm_dir)


def test_align_can_train_the_decoder(shapes_dataset, parts):
    clip_dir, lm_dir = parts
    recipe = AlignRecipe(
        data=str(shapes_dataset / "train"), vision_from=clip_dir, decoder_from=lm_dir, train_decoder=True
    )
    model = recipe.prepare().model
    assert all(p.requires_grad for p in model.decoder.parameters())
    assert not any(p.requires_grad for p in model.vision.parameters())


def test_align_and_instruct_with_a_bert_prefix_decoder(shapes_dataset, parts, tmp_path):
    """A BERT turned decoder (as vlmkit:minilm is) trains through align and instruct and answers."""
    clip_dir, _ = parts
    tiny_bert_directory(tmp_path / "bert")
    save_pretrained(bert_decoder(tmp_path / "bert"), tmp_path / "decoder")
    data = str(shapes_dataset / "train")
    align = AlignRecipe(data=data, vision_from=clip_dir, decoder_from=str(tmp_path / "decoder"), train_decoder=True)
    align = dataclasses.replace(align, train=STEPS)
    _, align_dir = _train(align, tmp_path / "align")
    instruct = InstructRecipe(data=data, init_from=str(align_dir), train=STEPS)
    _, vlm_dir = _train(instruct, tmp_path / "vlm")
    loaded = from_pretrained(vlm_dir)
    assert (loaded.config.decoder.family, loaded.config.decoder.attention) == ("bert", "prefix")
    assert isinstance(ask(loaded, shapes_dataset / "val" / "images" / "000000.png", "what color is the star?"), str)


def test_align_fresh_decoder_keeps_the_tokenizer_and_reinitialises_the_weights(shapes_dataset, parts):
    clip_dir, lm_dir = parts
    recipe = AlignRecipe(
        data=str(shapes_dataset / "train"),
        vision_from=clip_dir,
        decoder_from=lm_dir,
        train_decoder=True,
        fresh_decoder=True,
    )
    model = recipe.prepare().model
    trained = from_pretrained(lm_dir)
    assert model.tokenizer.vocab_size == trained.tokenizer.vocab_size
    assert model.config.decoder == trained.config
    fresh, old = model.decoder.state_dict(), trained.state_dict()
    assert all(not torch.equal(fresh[k], old[k]) for k in old if k.endswith(("qkv.weight", "embed.weight")))
    assert all(torch.equal(v, torch.ones_like(v)) for k, v in fresh.items() if "norm" in k)
    assert abs(float(fresh["embed.weight"].std()) - 0.02) < 0.002  # the Llama initialisation, not the LM's weights


def test_fresh_decoder_needs_a_decoder_that_trains(shapes_dataset, parts):
    clip_dir, lm_dir = parts
    recipe = AlignRecipe(
        data=str(shapes_dataset / "train"), vision_from=clip_dir, decoder_from=lm_dir, fresh_decoder=True
    )
    with pytest.raises(ConfigError, match="fresh_decoder"):
        recipe.validate("recipe")


def test_lm_align_instruct_eval(shapes_dataset, parts, tmp_path):
    data = str(shapes_dataset / "train")
    steps = STEPS
    clip_dir, lm_dir = parts
    align = AlignRecipe(data=data, vision_from=clip_dir, decoder_from=lm_dir, train=steps)
    prepared = align.prepare()
    model = prepared.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Trainer(prepared, align.train, tmp_path / "align", init_distributed("cpu")).fit()
    after = model.state_dict()
    frozen = [k for k in before if k.startswith(("vision.", "decoder."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("projector."))
    align_dir = align.export(model, tmp_path / "align")

    instruct = InstructRecipe(
        data=data,
        init_from=str(align_dir),
        lora_rank=4,
        eval_data=str(shapes_dataset / "val"),
        eval_images=2,
        train=steps,
    )
    model, vlm_dir = _train(instruct, tmp_path / "vlm")
    loaded = from_pretrained(vlm_dir)
    assert isinstance(loaded, VisionLanguageModel)
    assert not any("lora" in key for key in loaded.state_dict())  # adapters merged on export
    image = shapes_dataset / "val" / "images" / "000000.png"
    assert isinstance(ask(loaded, image, "what color is the circle?"), str)

    report = evaluate(loaded, shapes_dataset / "val", tmp_path / "eval", limit=2, batch_size=4)
    assert 0 <= report["tasks"]["vqa"]["accuracy"] <= 1
    assert "circular_accuracy" in report["tasks"]["multiple_choice"]
    assert "cider_d" in report["tasks"]["captioning"]
    assert report["tasks"]["image_reliance"]["caption_loss"] > 0


def test_align_on_a_conse_cnn_trains_from_cached_vision_tokens(shapes_dataset, parts, tmp_path, monkeypatch):
    """A ConSE model's EfficientNet becomes a headless tower; its frozen tokens are computed once, give
    the loss that the pixels give, and are reused from disk by a later run on the same inputs."""
    monkeypatch.setenv("VLMKIT_CACHE", str(tmp_path / "cache"))
    conse_dir = tmp_path / "conse"
    save_pretrained(tiny_conse(), conse_dir)
    _, lm_dir = parts
    recipe = AlignRecipe(
        data=str(shapes_dataset / "train"), vision_from=str(conse_dir), decoder_from=lm_dir, train=STEPS
    )
    prepared = recipe.prepare()
    model, batches = prepared.model, prepared.batches
    assert model.config.convolutional and model.vision.classifier is None
    assert model.image_processor.resize_mode == "squash"  # nothing cropped off the image's edges
    assert model.tokens_per_image == 16  # an 8x8 map, pixel-shuffled 2x2
    batch = batches.batch(0, 0, 4, 0, 1)
    ids, labels, pixels, tokens = batch.input_ids, batch.labels, batch.pixels, batch.vision_tokens
    assert pixels is None and tokens.shape == (4, 64, TINY_EFFNET.head_channels)
    assert len(list((tmp_path / "cache" / "vision-tokens").glob("*.safetensors"))) == 1
    again = recipe.prepare()
    again.model.vision_tokens = None  # a second run must load the tokens, not compute them
    assert torch.equal(again.batches.batch(0, 0, 4, 0, 1).vision_tokens, tokens)
    all_pixels = batches.images.all_pixels
    key = tokens_key(model, all_pixels)
    with torch.no_grad():
        next(model.vision.parameters())[0].add_(1.0)
        assert tokens_key(model, all_pixels) != key  # another tower never reads these tokens
        next(model.vision.parameters())[0].sub_(1.0)
    items = shard(epoch_order(len(batches.records), recipe.train.seed, 0), 0, 4, 0, 1)
    from_pixels = model.image_processor.normalize(all_pixels[items])
    model.eval()
    with torch.no_grad():
        expected = model(ids, from_pixels, labels=labels).loss
        cached = prepared.objective(model, ChatBatch(ids, labels, vision_tokens=tokens)).loss
        torch.testing.assert_close(cached, expected, atol=1e-3, rtol=0)
    model.train()
    Trainer(prepared, recipe.train, tmp_path / "align", init_distributed("cpu")).fit()
    loaded = from_pretrained(recipe.export(model, tmp_path / "align"))
    image = shapes_dataset / "val" / "images" / "000000.png"
    assert isinstance(ask(loaded, image, "what color is the circle?"), str)


def test_align_can_read_an_earlier_cnn_feature_map(shapes_dataset, parts, tmp_path, monkeypatch):
    """``vision_layer`` picks the CNN's first-stage map (16x16 cells of 8 channels here); the default pixel
    shuffle follows that grid, and its cached tokens are kept apart from the head's."""
    monkeypatch.setenv("VLMKIT_CACHE", str(tmp_path / "cache"))
    conse_dir = tmp_path / "conse"
    save_pretrained(tiny_conse(), conse_dir)
    recipe = AlignRecipe(
        data=str(shapes_dataset / "train"),
        vision_from=str(conse_dir),
        decoder_from=parts[1],
        vision_layer=1,
        train=STEPS,
    )
    prepared = recipe.prepare()
    model, batches = prepared.model, prepared.batches
    assert model.config.projector.vision_layer == 1 and model.tokens_per_image == 64  # 16x16, shuffled 2x2
    assert batches.batch(0, 0, 4, 0, 1).vision_tokens.shape == (4, 256, 8)
    head = dataclasses.replace(recipe, vision_layer=-1).prepare().model
    pixels = batches.images.all_pixels
    assert tokens_key(model, pixels) != tokens_key(head, pixels)
    with pytest.raises(ConfigError, match=r"AlignRecipe\.vision_layer: feature map 9: the network has 4"):
        dataclasses.replace(recipe, vision_layer=9).prepare()


def test_training_conversations_mix_questions_and_captions(shapes_dataset):
    records = RecordDataset(shapes_dataset / "train").records[:40]

    def draw(share: float) -> list[list[dict[str, str]]]:
        return [conversation(r, random.Random(i), 2, share) for i, r in enumerate(records)]

    asked = [sum(m["content"] == CAPTION_PROMPT for m in chat) for chat in draw(0.5)]
    assert set(asked) == {0, 1} and 0.25 < sum(asked) / len(asked) < 0.75
    assert all(sum(m["content"] == CAPTION_PROMPT for m in chat) == 1 for chat in draw(1.0))
    assert not any(m["content"] == CAPTION_PROMPT for chat in draw(0.0) for m in chat)
    for chat in draw(0.0):
        assert [m["role"] for m in chat] == ["user", "assistant"] * (len(chat) // 2) and len(chat) == 4
    with pytest.raises(ConfigError, match="caption_share"):
        LmRecipe.from_dict({"data": "d", "caption_share": 1.5})


def test_a_conversation_is_never_empty(shapes_dataset):
    record = RecordDataset(shapes_dataset / "train").records[0]
    captions_only = dataclasses.replace(record, qa=None)
    questions_only = dataclasses.replace(record, captions=None)
    for seed in range(20):
        assert conversation(captions_only, random.Random(seed), 4, caption_share=0.0)
        assert conversation(questions_only, random.Random(seed), 0)
