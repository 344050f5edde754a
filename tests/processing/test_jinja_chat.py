"""A checkpoint's own Jinja chat template renders and tokenises as transformers' ``apply_chat_template``."""

from __future__ import annotations

import dataclasses
import json

import pytest

from chat_templates import IDEFICS3, LLAMA2, LLAVA, QWEN2_VL
from testkit import WORDS
from vlmkit.errors import CheckpointError, InputError
from vlmkit.processing.chat import IGNORE_INDEX
from vlmkit.processing.jinja_chat import JinjaChatEncoder, JinjaChatTemplate, read_chat_template
from vlmkit.processing.text import train_bpe_tokenizer

SPECIALS = ["<image>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|image_pad|>", "<|vision_end|>",
            "<end_of_utterance>"]  # fmt: skip
IMAGE_TOKENS = {"llava": "<image>", "qwen2_vl": "<|image_pad|>", "idefics3": "<image>"}
TEMPLATES = {"llava": LLAVA, "qwen2_vl": QWEN2_VL, "idefics3": IDEFICS3}

CONVERSATIONS = [
    [{"role": "user", "content": "<image>\nwhat colour is it?"}],
    [
        {"role": "system", "content": "be brief."},
        {"role": "user", "content": "<image>\nwhat colour is the circle?"},
        {"role": "assistant", "content": "red"},
        {"role": "user", "content": "compare <image> with <image>, which is bigger?"},
        {"role": "assistant", "content": "the second one"},
    ],
    [{"role": "user", "content": "describe the image."}, {"role": "assistant", "content": "a red circle"}],
]


@pytest.fixture(scope="module")
def tokenizer():
    corpus = [*WORDS, "user: assistant: describe the image.", "picture what colour is it? red circle"] * 4
    return train_bpe_tokenizer(corpus, vocab_size=340, special_tokens=SPECIALS, max_length=256)


def _hf_dir(path, tokenizer, template: str):
    path.mkdir(exist_ok=True)
    tokenizer.save(path / "tokenizer.json")
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<bos>", "eos_token": "<eos>",
              "pad_token": "<pad>", "chat_template": template}  # fmt: skip
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    return path


def _hf_messages(messages):
    """The same conversation as transformers' multimodal processors take it."""
    converted = []
    for message in messages:
        parts = []
        for index, piece in enumerate(message["content"].split("<image>")):
            if index:
                parts.append({"type": "image"})
                piece = piece.removeprefix("\n")
            if piece:
                parts.append({"type": "text", "text": piece})
        converted.append({"role": message["role"], "content": parts})
    return converted


@pytest.mark.parametrize("family", sorted(TEMPLATES))
@pytest.mark.parametrize("generation_prompt", [True, False])
def test_render_and_ids_equal_transformers(tmp_path, tokenizer, family, generation_prompt):
    transformers = pytest.importorskip("transformers")
    directory = _hf_dir(tmp_path / family, tokenizer, TEMPLATES[family])
    reference = transformers.PreTrainedTokenizerFast.from_pretrained(directory)
    template = read_chat_template(directory)
    image_id = tokenizer.tokenizer.token_to_id(IMAGE_TOKENS[family])
    # this reference tokenizer adds no BOS (its tokenizer.json has no post-processor), so neither may ours
    plain = dataclasses.replace(tokenizer, bos_id=None)
    encoder = JinjaChatEncoder(plain, template, image_id, tokens_per_image=1, multimodal=True)
    for messages in CONVERSATIONS:
        expected = reference.apply_chat_template(
            _hf_messages(messages), tokenize=False, add_generation_prompt=generation_prompt
        )
        assert template.render(_hf_messages(messages), generation_prompt) == expected
        ids = reference(expected, add_special_tokens=False)["input_ids"]
        encoded = encoder.encode(messages, add_generation_prompt=generation_prompt)
        assert encoded.input_ids == ids
        assert encoded.images == sum(m["content"].count("<image>") for m in messages)


def test_text_only_template_gets_strings_and_special_tokens(tmp_path, tokenizer):
    transformers = pytest.importorskip("transformers")
    directory = _hf_dir(tmp_path / "llama2", tokenizer, LLAMA2)
    reference = transformers.PreTrainedTokenizerFast.from_pretrained(directory)
    messages = CONVERSATIONS[2]
    template = read_chat_template(directory)
    assert template.render(messages, False) == reference.apply_chat_template(messages, tokenize=False)
    assert template.render(messages, False).startswith("<bos>[INST] describe")
    with pytest.raises(InputError, match="roles must alternate"):
        JinjaChatEncoder(tokenizer, template).encode([*messages, messages[1]])


def test_labels_are_the_answers_with_their_end_of_turn(tokenizer):
    template = JinjaChatTemplate(QWEN2_VL)
    image_id = tokenizer.tokenizer.token_to_id("<|image_pad|>")
    encoder = JinjaChatEncoder(tokenizer, template, image_id, tokens_per_image=4, multimodal=True)
    encoded = encoder.encode(CONVERSATIONS[1])
    assert encoded.images == 3 and encoded.input_ids.count(image_id) == 12
    assert len(encoded.labels) == len(encoded.input_ids)
    assert all(label in (token, IGNORE_INDEX) for token, label in zip(encoded.input_ids, encoded.labels, strict=True))
    runs, run = [], []
    for token, label in zip(encoded.input_ids, encoded.labels, strict=True):
        if label != IGNORE_INDEX:
            run.append(token)
        elif run:
            runs, run = [*runs, run], []
    answers = [tokenizer.tokenizer.decode(r, skip_special_tokens=False).replace(" ", "") for r in [*runs, run] if r]
    # each answer and its own end of turn; the system and user turns' ends are not learned
    assert answers == ["red<|im_end|>\n", "thesecondone<|im_end|>\n"]


def test_the_sandbox_refuses_escapes(tokenizer):
    template = JinjaChatTemplate("{{ messages.__class__.__mro__ }}{{ ''.__class__.__subclasses__() }}")
    with pytest.raises(InputError, match="chat template refused"):
        template.render(CONVERSATIONS[0])


def test_bad_template_files_name_the_problem(tmp_path, tokenizer):
    assert read_chat_template(tmp_path) is None
    (tmp_path / "chat_template.json").write_text(json.dumps({"chat_template": 3}))
    with pytest.raises(CheckpointError, match=r"chat_template\.json: field 'chat_template'"):
        read_chat_template(tmp_path)
    (tmp_path / "chat_template.json").unlink()
    (tmp_path / "chat_template.jinja").write_text("{% for m in messages %}")
    with pytest.raises(CheckpointError, match="Jinja syntax error on line 1"):
        read_chat_template(tmp_path)


def test_named_templates_pick_default_and_jinja_file_wins(tmp_path, tokenizer):
    named = [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": "plain"}]
    _hf_dir(tmp_path, tokenizer, "unused")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": named, "bos_token": "<bos>"}))
    template = read_chat_template(tmp_path)
    assert template.source == "plain" and template.tokens == {"bos_token": "<bos>"}
    (tmp_path / "chat_template.jinja").write_text("{{ bos_token }}file")
    assert read_chat_template(tmp_path).render([]) == "<bos>file"


def test_an_empty_answer_in_the_history_renders(tokenizer):
    """A chat turn whose answer came out empty stays in the history; templates that read content[0] still render."""
    image_id = tokenizer.tokenizer.token_to_id("<image>")
    encoder = JinjaChatEncoder(tokenizer, JinjaChatTemplate(IDEFICS3), image_id, tokens_per_image=2, multimodal=True)
    history = [
        {"role": "user", "content": "<image>\nwhat colour is it?"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "and the circle?"},
    ]
    encoded = encoder.encode(history, add_generation_prompt=True)
    assert encoded.images == 1 and encoded.input_ids.count(image_id) == 2
