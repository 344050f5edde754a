"""Tiny LLaVA-NeXT pieces for tests: a random transformers LlavaNextForConditionalGeneration of our own shape
(a 32 px CLIP tower of 8 px patches, tiled at 32x64, 64x32 or 64x64; a GQA Llama) and its LlavaNextProcessor
around a word-level tokenizer, both saved the way transformers saves them."""

from __future__ import annotations

import transformers
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, processors

from testkit import perturb

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<image>"]  # ids 0..4
WORDS = ["\n", "USER:", "ASSISTANT:", "what", "is", "this", "?", "a", "red", "star", "describe", "it"]
PAD, BOS, EOS, IMAGE = 0, 1, 2, 4
VOCAB = 96
PINPOINTS = [[32, 64], [64, 32], [64, 64]]


def hf_llava_next(
    strategy: str = "default", layer: int = -2, tower: str = "clip", tie: bool = False, text_tie: bool = False
) -> transformers.LlavaNextForConditionalGeneration:
    """``tower`` "clip" (a class token, read with strategy "default") or "siglip" (none, read with "full");
    ``tie`` and ``text_tie`` are the top-level and the text config's ``tie_word_embeddings``."""
    shape = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4, image_size=32)
    vision = (transformers.CLIPVisionConfig if tower == "clip" else transformers.SiglipVisionConfig)(
        **shape, patch_size=8
    )
    text = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        rope_parameters={"rope_type": "default", "rope_theta": 1000.0},
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        tie_word_embeddings=text_tie,
    )
    config = transformers.LlavaNextConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=IMAGE,
        image_grid_pinpoints=PINPOINTS,
        vision_feature_select_strategy=strategy,
        vision_feature_layer=layer,
        tie_word_embeddings=tie,
    )
    return perturb(transformers.LlavaNextForConditionalGeneration(config).eval(), scale=0.3)


def save_tiny_processor(directory, strategy: str = "default") -> transformers.LlavaNextProcessor:
    """A word-level tokenizer (spaces split words, a line break is a token, BOS added) in a LlavaNextProcessor
    with the PIL-backend image processor, saved."""
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(SPECIALS + WORDS)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(" ", "removed"), pre_tokenizers.Split("\n", "isolated")]
    )
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", BOS)])
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    fast.model_max_length = 512  # transformers writes 1e30 otherwise, which TextTokenizer refuses
    fast.padding_side = "left"
    images = transformers.LlavaNextImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, image_grid_pinpoints=PINPOINTS
    )
    processor = transformers.LlavaNextProcessor(  # the class token counted, then dropped by "default" (the hub's)
        image_processor=images,
        tokenizer=fast,
        patch_size=8,
        vision_feature_select_strategy=strategy,
        num_additional_image_tokens=int(strategy == "default"),
    )
    processor.save_pretrained(directory)
    return processor
