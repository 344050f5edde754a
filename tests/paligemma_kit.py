"""Tiny PaliGemma pieces for tests: a random transformers PaliGemmaForConditionalGeneration of our own shape
and a PaliGemmaProcessor around a word-level tokenizer, both saved the way transformers saves them."""

from __future__ import annotations

import transformers
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

from testkit import perturb

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<image>"]  # ids 0..4, Gemma's pad/eos/bos order
WORDS = ["\n", "detect", "star", "circle", ";", "caption", "en", "red", "blue", "segment", "the"]
PAD, EOS, BOS, IMAGE = 0, 1, 2, 4
VOCAB = 128  # model rows; the processor's <loc>/<seg> tokens come after the words, from id 16 on


def hf_paligemma(vision_head: bool = False, image_size: int = 32) -> transformers.PaliGemmaForConditionalGeneration:
    """One key/value head, head_dim 16 != 48 / 4 heads, a 2-block SigLIP of 8 px patches; weights perturbed."""
    vision = transformers.SiglipVisionConfig(
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=image_size,
        patch_size=8,
        vision_use_head=vision_head,
    )
    text = transformers.GemmaConfig(
        vocab_size=VOCAB,
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=128,
        rope_parameters={"rope_type": "default", "rope_theta": 500.0},
        pad_token_id=PAD,
        eos_token_id=EOS,
        bos_token_id=BOS,
    )
    config = transformers.PaliGemmaConfig(
        vision_config=vision, text_config=text, image_token_index=IMAGE, projection_dim=48, hidden_size=48
    )
    return perturb(transformers.PaliGemmaForConditionalGeneration(config).eval(), scale=0.3)


def save_tiny_processor(directory, image_size: int = 32) -> transformers.PaliGemmaProcessor:
    """A word-level tokenizer (spaces split words, a line break is a token) in a PaliGemmaProcessor, saved."""
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(SPECIALS + WORDS)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(" ", "removed"), pre_tokenizers.Split("\n", "isolated")]
    )
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    fast.model_max_length = 128  # transformers writes 1e30 otherwise, which TextTokenizer refuses
    images = transformers.SiglipImageProcessor(size={"height": image_size, "width": image_size})
    images.image_seq_length = (image_size // 8) ** 2
    processor = transformers.PaliGemmaProcessor(image_processor=images, tokenizer=fast)
    processor.save_pretrained(directory)
    return processor
