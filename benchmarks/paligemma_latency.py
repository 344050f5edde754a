"""PaliGemma "detect" latency per image: ``vlmkit ask`` vs transformers' processor + ``generate``.

One random PaliGemma of a small shape of our own (SigLIP at 224 px in 16 px patches, 196 image
tokens, 4 blocks of width 192; a Gemma decoder of 4 blocks, width 256, 4 query heads and one
key/value head of 128, the vocabulary of the processor's tokenizer with its 1,024 ``<loc>`` and 128
``<seg>`` tokens) is saved by transformers with its processor, and loaded by ``vlmkit.load``, so the
weights are the same. Each side answers ``detect star`` about the same image file: decode the file,
preprocess, lay out the prompt, encode the image, prefill, then greedily decode exactly
``--new-tokens`` tokens (EOS disabled). Calls are timed interleaved in one run; the answers are
compared (decoded text).

    .venv/bin/python benchmarks/paligemma_latency.py [--new-tokens 16] [--repeats 5] [--threads N] [--device cuda]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from PIL import Image
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

import vlmkit
from common import interleaved_medians
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.chat import with_image
from vlmkit.tasks.chat import ask, chat_encoder

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<image>"]
WORDS = ["\n", "detect", "star", "circle", ";", "segment", "caption", "en"]
PROMPT = "detect star"


def save_processor(directory: Path) -> transformers.PaliGemmaProcessor:
    """A word-level tokenizer (ids: pad 0, eos 1, bos 2, <image> 4) in a PaliGemmaProcessor at 224 px."""
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(SPECIALS + WORDS)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(" ", "removed"), pre_tokenizers.Split("\n", "isolated")]
    )
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    fast.model_max_length = 512
    images = transformers.SiglipImageProcessor(size={"height": 224, "width": 224})
    images.image_seq_length = (224 // 16) ** 2
    processor = transformers.PaliGemmaProcessor(image_processor=images, tokenizer=fast)
    processor.save_pretrained(directory)
    return processor


def paligemma(vocab: int) -> transformers.PaliGemmaForConditionalGeneration:
    vision = transformers.SiglipVisionConfig(
        hidden_size=192,
        intermediate_size=768,
        num_hidden_layers=4,
        num_attention_heads=3,
        image_size=224,
        patch_size=16,
        vision_use_head=False,
    )
    text = transformers.GemmaConfig(
        vocab_size=vocab,
        hidden_size=256,
        intermediate_size=1024,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=128,
        max_position_embeddings=512,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
    )
    config = transformers.PaliGemmaConfig(
        vision_config=vision, text_config=text, image_token_index=4, projection_dim=256, hidden_size=256
    )
    model = transformers.PaliGemmaForConditionalGeneration(config).eval()
    with torch.no_grad():  # varied weights, so the answers are not one token repeated
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        processor = save_processor(directory)
        hf = paligemma(len(processor.tokenizer))
        hf.save_pretrained(directory)
        hf.to(args.device)
        ours = vlmkit.load(directory, device=args.device)
        image = directory / "photo.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(image)
        config = GenerationConfig(max_new_tokens=args.new_tokens, eos_token_ids=())

        def run_ours() -> str:
            return ask(ours, image, PROMPT, config)

        def run_hf() -> str:
            inputs = processor(images=Image.open(image), text=PROMPT, return_tensors="pt").to(args.device)
            out = hf.generate(**inputs, do_sample=False, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)
            return processor.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)

        with torch.inference_mode():
            same = run_ours() == run_hf()
            times = interleaved_medians({"vlmkit": run_ours, "transformers": run_hf}, repeats=args.repeats)
        prompt = len(chat_encoder(ours).encode([{"role": "user", "content": with_image(PROMPT)}]).input_ids)
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"{torch.get_num_threads()} CPU threads"
    print(
        f"PaliGemma detect, {where}, float32: {prompt} prompt tokens ({ours.tokens_per_image} image), "
        f"{args.new_tokens} new tokens, median of {args.repeats}"
    )
    print(
        f"per image: vlmkit {1e3 * times['vlmkit']:.1f} ms, transformers {1e3 * times['transformers']:.1f} ms, "
        f"ratio {times['transformers'] / times['vlmkit']:.2f}x; identical answers: {same}"
    )


if __name__ == "__main__":
    main()
