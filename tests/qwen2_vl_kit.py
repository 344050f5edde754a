"""Tiny Qwen2-VL / Qwen2.5-VL pieces for tests: a random transformers model of our own shape (4 px patches merged
2x2, so images are multiples of 8 px; a GQA Qwen2 decoder with head size 16 and M-RoPE sections 2, 3, 3) and
its processor around a word-level tokenizer, both saved the way transformers saves them."""

from __future__ import annotations

import transformers
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

from testkit import perturb

SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]  # ids 0..6
WORDS = ["\n", "user", "assistant", "system", "what", "is", "this", "?", "a", "red", "star", "describe", "it", "and"]
PAD, IM_START, IM_END, VISION_START, VISION_END, IMAGE, VIDEO = range(7)
VOCAB = 96
PATCH, MERGE = 4, 2
MIN_PIXELS, MAX_PIXELS = 16 * 16, 48 * 48
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _text_config() -> dict:
    return dict(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        rope_parameters={"rope_type": "default", "rope_theta": 1000.0, "mrope_section": [2, 3, 3]},
        pad_token_id=PAD,
        bos_token_id=None,
        eos_token_id=IM_END,
    )


def _ids() -> dict:
    return dict(
        image_token_id=IMAGE, video_token_id=VIDEO, vision_start_token_id=VISION_START, vision_end_token_id=VISION_END
    )


def hf_qwen2_vl() -> transformers.Qwen2VLForConditionalGeneration:
    """Qwen2-VL: LayerNorm, quick-GELU MLP, full attention in every block."""
    vision = dict(
        depth=2,
        embed_dim=32,
        hidden_size=64,
        mlp_ratio=2,
        num_heads=4,
        patch_size=PATCH,
        spatial_merge_size=MERGE,
        temporal_patch_size=2,
    )
    config = transformers.Qwen2VLConfig(vision_config=vision, text_config=_text_config(), **_ids())
    return perturb(transformers.Qwen2VLForConditionalGeneration(config).eval(), scale=0.3)


def hf_qwen2_5_vl() -> transformers.Qwen2_5_VLForConditionalGeneration:
    """Qwen2.5-VL: RMSNorm, SwiGLU, 16 px windows (2x2 merged tokens) except in block 1 of 3."""
    vision = dict(
        depth=3,
        hidden_size=32,
        intermediate_size=48,
        out_hidden_size=64,
        num_heads=4,
        patch_size=PATCH,
        spatial_merge_size=MERGE,
        temporal_patch_size=2,
        window_size=16,
        fullatt_block_indexes=[1],
        tokens_per_second=2,
    )
    config = transformers.Qwen2_5_VLConfig(vision_config=vision, text_config=_text_config(), **_ids())
    return perturb(transformers.Qwen2_5_VLForConditionalGeneration(config).eval(), scale=0.3)


class ImageOnlyProcessor(transformers.Qwen2VLProcessor):
    """transformers' ``Qwen2VLProcessor`` (or 2.5's, by ``video_fields``) without its video processor, which needs
    torchvision (absent here): the same ``__call__`` and token expansion for text and images."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
        self.image_token_id, self.video_token_id = IMAGE, VIDEO
        transformers.ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


def save_tiny_processor(directory) -> ImageOnlyProcessor:
    """A word-level tokenizer (spaces split words, a line break is a token) with the chat template, and the
    PIL-backend Qwen2-VL image processor, each saved the way transformers saves them; returned as a processor."""
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(SPECIALS + WORDS)}, unk_token="<|endoftext|>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(" ", "removed"), pre_tokenizers.Split("\n", "isolated")]
    )
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token="<|endoftext|>"
    )
    fast.model_max_length = 512
    fast.padding_side = "left"
    fast.chat_template = CHAT_TEMPLATE
    images = transformers.Qwen2VLImageProcessorPil(
        min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, patch_size=PATCH, merge_size=MERGE, temporal_patch_size=2
    )
    fast.save_pretrained(directory)
    images.save_pretrained(directory)
    return ImageOnlyProcessor(image_processor=images, tokenizer=fast, chat_template=CHAT_TEMPLATE)
