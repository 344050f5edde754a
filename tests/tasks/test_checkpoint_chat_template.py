"""A LLaVA checkpoint saved by transformers with its processor's chat template is prompted through that
template: vlmkit's prompt ids equal the processor's (``<image>`` expanded), answers and chats run, and the
template survives ``save_pretrained``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from tokenizers import processors

from chat_templates import LLAVA
from testkit import WORDS
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.text import train_bpe_tokenizer
from vlmkit.tasks.chat import Chat, ask, chat_encoder

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("llava")
    corpus = [*WORDS, "user: assistant: describe the image.", "what colour is it? red circle"] * 4
    tokenizer = train_bpe_tokenizer(corpus, vocab_size=300, special_tokens=["<image>"], max_length=128)
    # like Llama's: the tokenizer itself starts every text with <bos>
    bos = tokenizer.tokenizer.token_to_id("<bos>")
    starts = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", bos)])
    tokenizer.tokenizer.post_processor = starts
    tokenizer.save(directory / "tokenizer.json")
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(directory / "tokenizer.json"),
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        model_max_length=128,
        add_bos_token=True,
    )
    image_id = fast.convert_tokens_to_ids("<image>")
    vision = transformers.CLIPVisionConfig(
        hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, image_size=32, patch_size=8
    )
    text = transformers.LlamaConfig(
        vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )  # fmt: skip
    config = transformers.LlavaConfig(vision_config=vision, text_config=text, image_token_index=image_id)
    torch.manual_seed(0)
    transformers.LlavaForConditionalGeneration(config).eval().save_pretrained(directory)
    processor = transformers.LlavaProcessor(
        image_processor=transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size=32),
        tokenizer=fast,
        chat_template=LLAVA,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    processor.save_pretrained(directory)
    return directory


def _image():
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8))


def test_prompt_ids_equal_the_processors(llava_dir):
    processor = transformers.AutoProcessor.from_pretrained(llava_dir)
    model = from_pretrained(llava_dir)
    assert model.jinja_template is not None
    messages = [{"role": "user", "content": "<image>\nwhat colour is it?"}]
    hf_messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what colour is it?"}]}]
    inputs = processor.apply_chat_template(
        hf_messages, add_generation_prompt=True, tokenize=True, return_dict=True, images=[_image()]
    )
    expected = list(inputs["input_ids"][0])
    got = chat_encoder(model).encode(messages, add_generation_prompt=True).input_ids
    assert got[0] == model.tokenizer.bos_id and got == expected
    assert got.count(model.config.image_token_id) == model.tokens_per_image == 16


def test_ask_and_chat_run_through_the_template_and_it_is_saved(llava_dir, tmp_path):
    model = from_pretrained(llava_dir)
    config = GenerationConfig(max_new_tokens=4)
    answer = ask(model, _image(), "what colour is it?", config)
    chat = Chat(model, _image(), config=config)
    assert chat.send("what colour is it?") == answer
    chat.send("and the shape?")
    assert [m["role"] for m in chat.history] == ["user", "assistant", "user", "assistant"]
    save_pretrained(model, tmp_path / "copy")
    copy = from_pretrained(tmp_path / "copy")
    assert copy.jinja_template.source == LLAVA and copy.jinja_template.tokens == model.jinja_template.tokens
    assert ask(copy, _image(), "what colour is it?", config) == answer
