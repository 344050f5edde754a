"""Tiny Idefics3 / SmolVLM pieces for tests: a random transformers Idefics3ForConditionalGeneration or
SmolVLMForConditionalGeneration of our own shape (a 32 px SigLIP-style tower, pixel shuffle 2 over 8 px patches
or 4 over 4 px patches, so 4 tokens a crop either way; a GQA Llama) and an Idefics3Processor around a
word-level tokenizer holding the marker tokens, saved the way transformers saves them.

SmolVLM's own processor cannot be built here (its video processor needs torchvision), so SmolVLM's image
prompt is taken from ``processing_smolvlm.get_image_prompt_string``, the function its processor calls.
"""

from __future__ import annotations

import transformers
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
from transformers.models.smolvlm.processing_smolvlm import DEFAULT_CHAT_TEMPLATE

from testkit import perturb

MARKERS = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"]
ROW_COLS = [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
SPECIALS = ["<pad>", "<|im_start|>", "</s>", "<unk>", *MARKERS, *ROW_COLS]
WORDS = ["\n", "User:", "Assistant:", "User", "Assistant", ":", "what", "is", "this", "?", "a", "red", "star"]
WORDS += ["describe", "it", "and", "that", "blue", "circle", "big", "small", "square", "green"]
PAD, BOS, EOS = 0, 1, 2
IMAGE = SPECIALS.index("<image>")
VOCAB = 96
TILE = 32
# SmolVLM's template (transformers' DEFAULT_CHAT_TEMPLATE, as the hub's SmolVLM checkpoints ship it).
SMOLVLM_TEMPLATE = DEFAULT_CHAT_TEMPLATE


def hf_idefics3(family: str = "idefics3", tied: bool = False) -> transformers.PreTrainedModel:
    """``family`` "idefics3" (pixel shuffle 2 over a 4x4 grid) or "smolvlm" (4 over an 8x8 grid)."""
    patch, scale = (8, 2) if family == "idefics3" else (4, 4)
    vision = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, image_size=TILE)
    text = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        rope_parameters={"rope_type": "default", "rope_theta": 1000.0},
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
    )
    if family == "idefics3":
        config = transformers.Idefics3Config(
            vision_config=transformers.Idefics3VisionConfig(**vision, patch_size=patch),
            text_config=text,
            image_token_id=IMAGE,
            scale_factor=scale,
            tie_word_embeddings=tied,
        )
        model = transformers.Idefics3ForConditionalGeneration(config)
    else:
        config = transformers.SmolVLMConfig(
            vision_config=transformers.SmolVLMVisionConfig(**vision, patch_size=patch),
            text_config=text,
            image_token_id=IMAGE,
            scale_factor=scale,
            tie_word_embeddings=tied,
        )
        model = transformers.SmolVLMForConditionalGeneration(config)
    return perturb(model.eval(), scale=0.3)


def tiny_tokenizer() -> transformers.PreTrainedTokenizerFast:
    """Spaces split words, a line break is a token; the marker tokens are special; no BOS is added."""
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(SPECIALS + WORDS)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(" ", "removed"), pre_tokenizers.Split("\n", "isolated")]
    )
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<|im_start|>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    fast.model_max_length = 1024  # transformers writes 1e30 otherwise, which TextTokenizer refuses
    fast.padding_side = "left"
    return fast


def image_processor(family: str = "idefics3", splitting: bool = True, longest_edge: int = 96):
    """The PIL-backend image processor: images resized to ``longest_edge`` then cut into 32 px tiles."""
    cls = transformers.Idefics3ImageProcessorPil if family == "idefics3" else transformers.SmolVLMImageProcessorPil
    return cls(size={"longest_edge": longest_edge}, max_image_size={"longest_edge": TILE}, do_image_splitting=splitting)


def save_tiny_processor(directory, family: str = "idefics3", splitting: bool = True) -> transformers.Idefics3Processor:
    """An Idefics3Processor (4 image tokens a crop) with SmolVLM's chat template, saved into ``directory``."""
    processor = transformers.Idefics3Processor(
        image_processor=image_processor(family, splitting),
        tokenizer=tiny_tokenizer(),
        image_seq_len=4,
        chat_template=SMOLVLM_TEMPLATE,
    )
    processor.save_pretrained(directory)
    return processor
