"""Generation speed: vlmkit vs transformers ``generate`` on the same random Llama decoders and LLaVA.

Models: a ~25M-parameter Llama (width 512, 7 blocks, GQA 8/4, vocab 8192, tied), SmolLM2-135M's
shape (width 576, 30 blocks, 9/3 heads, vocab 49152, tied) and a tiny LLaVA (CLIP ViT-S/16-ish at
224 px + the 25M decoder). vlmkit loads each transformers checkpoint through its key map, so the
weights are identical; both decode greedily for exactly ``--new-tokens`` tokens (EOS disabled) from
the same prompts (left-padded at batch 8), timed interleaved in one run, in float32 and bfloat16.

Columns: tokens/s of each, their ratio, whether the generated ids are identical, and at batch 1
the fraction of the memory-bandwidth bound reached by vlmkit (weight bytes read per token times
tokens/s, over the bandwidth of a large copy measured here), and ``mm%bw``, the fraction that one row
multiplied through every weight matrix of the decoder reaches on its own: the ceiling of a decoding step
that does nothing but its matmuls (vlmkit's matrices in the layout its generation uses). Time to first
token (TTFT) is for one image prompt (image encoding + prefill + first token).

    .venv/bin/python benchmarks/generate.py [--new-tokens 128] [--repeats 3] [--threads N] [--models 25m,135m,llava]
        [--device cuda] [--clock cpu]

``--clock cpu`` times by this process's CPU seconds instead of wall seconds (the copy bandwidth too): on a
machine shared with other jobs, wall time mostly measures how long the others held the cores. It is only
meaningful on the CPU with ``--threads 1`` (with more threads it adds up every thread's time).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable

import torch
import transformers

import vlmkit
from common import interleaved_medians
from vlmkit.models import VisionLanguageModel
from vlmkit.models.generation import GenerationConfig, generate, pad_left

PROMPT = 32


Clock = Callable[[], float]


def copy_bandwidth(device: str, clock: Clock, megabytes: int = 256, repeats: int = 5) -> float:
    """Bytes per second moved by a large copy (read + write): the practical memory-bandwidth ceiling."""
    source = torch.empty(megabytes * 2**20, dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    seconds = interleaved_medians({"copy": lambda: target.copy_(source)}, repeats=repeats, clock=clock)["copy"]
    return 2 * source.numel() / seconds


def llama_config(name: str) -> transformers.LlamaConfig:
    shapes = {
        "25m": dict(
            vocab_size=8192,
            hidden_size=512,
            intermediate_size=1408,
            num_hidden_layers=7,
            num_attention_heads=8,
            num_key_value_heads=4,
            rope_theta=10000.0,
        ),
        "135m": dict(
            vocab_size=49152,
            hidden_size=576,
            intermediate_size=1536,
            num_hidden_layers=30,
            num_attention_heads=9,
            num_key_value_heads=3,
            rope_theta=100000.0,
        ),
    }[name]
    return transformers.LlamaConfig(
        **shapes,
        tie_word_embeddings=True,
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )


def llava_config() -> transformers.LlavaConfig:
    vision = transformers.CLIPVisionConfig(
        hidden_size=384,
        intermediate_size=1536,
        num_hidden_layers=6,
        num_attention_heads=6,
        image_size=224,
        patch_size=16,
    )
    return transformers.LlavaConfig(vision_config=vision, text_config=llama_config("25m"), image_token_index=8000)


def load_pair(hf: torch.nn.Module) -> torch.nn.Module:
    hf.eval()
    hf.generation_config.eos_token_id = None  # both sides generate exactly --new-tokens tokens
    with tempfile.TemporaryDirectory() as tmp:
        hf.save_pretrained(tmp)
        return vlmkit.load(tmp)


def prompts(batch: int, vocab: int, image_tokens: int = 0, image_id: int = 0) -> list[list[int]]:
    rows = []
    for row in range(batch):
        length = PROMPT - (row % 4) * 4  # unequal lengths: batches are left-padded
        rows.append([1] + [image_id] * image_tokens + torch.randint(3, vocab - 200, (length - 1,)).tolist())
    return rows


def decoder_bytes(decoder: torch.nn.Module) -> int:
    """Weight bytes a decoding step reads: every matrix once (an untied embedding only by one row)."""
    total = sum(p.numel() * p.element_size() for p in decoder.parameters())
    embedding = decoder.embed.weight
    return total if decoder.lm_head is None else total - embedding.numel() * embedding.element_size()


def matmul_rate(decoder: torch.nn.Module, clock: Clock, repeats: int) -> float:
    """Tokens/s of a step that only multiplies one row by each weight matrix (the output head included)."""
    weights = [m.weight for m in decoder.modules() if isinstance(m, torch.nn.Linear)]
    weights = weights if decoder.lm_head is not None else [*weights, decoder.embed.weight]
    rows = {w.shape[1]: torch.randn(1, 1, w.shape[1], dtype=w.dtype, device=w.device) for w in weights}

    def step() -> None:
        for weight in weights:
            torch.nn.functional.linear(rows[weight.shape[1]], weight)

    with torch.inference_mode():
        return 1 / interleaved_medians({"mm": step}, repeats=5 * repeats, clock=clock)["mm"]


def family_race_arguments(parser: argparse.ArgumentParser) -> None:
    """The settings every one-family race (SmolVLM, Qwen2-VL) takes."""
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="cpu: process CPU seconds")


def family_race_setup(args: argparse.Namespace) -> tuple[Clock, float]:
    """The clock, threads and seed those settings name, and the copy bandwidth measured under them."""
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    return clock, copy_bandwidth("cpu", clock)


def family_header(args: argparse.Namespace, bandwidth: float, workload: str) -> str:
    """The first line every one-family race prints: versions, threads, bandwidth, ``workload`` and the settings."""
    return (
        f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.get_num_threads()} threads, "
        f"copy bandwidth {bandwidth / 1e9:.1f} GB/s; {workload}, {args.new_tokens} new tokens, float32; "
        f"{args.clock} clock"
    )


def race(
    run_ours: Callable[[], list[list[int]]],
    hf: torch.nn.Module,
    hf_inputs: dict[str, torch.Tensor],
    new_tokens: int,
    repeats: int,
    clock: Clock,
) -> tuple[float, float, float]:
    """Tokens/s of vlmkit's and transformers' greedy generation of exactly ``new_tokens`` (EOS off) on the same
    inputs, interleaved, and the share of rows whose tokens are identical. Every family's benchmark races this way."""
    prompt = hf_inputs["input_ids"].shape[1]
    batch = hf_inputs["input_ids"].shape[0]

    def run_hf() -> list[list[int]]:
        generated = hf.generate(
            **hf_inputs, do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=0
        )
        return generated[:, prompt:].tolist()

    with torch.inference_mode():
        same = sum(a == b for a, b in zip(run_ours(), run_hf(), strict=True)) / batch
        times = interleaved_medians({"ours": run_ours, "hf": run_hf}, repeats=repeats, warmup=0, clock=clock)
    return batch * new_tokens / times["ours"], batch * new_tokens / times["hf"], same


def family_row(
    decoder: torch.nn.Module,
    run_ours: Callable[[], list[list[int]]],
    hf: torch.nn.Module,
    hf_inputs: dict[str, torch.Tensor],
    new_tokens: int,
    repeats: int,
    bandwidth: float,
    clock: Clock,
) -> str:
    """One row of a family benchmark's table: ``race``'s rates, their ratio, the identical share, and at batch 1
    the share of ``decoder``'s memory-bandwidth bound."""
    ours_rate, hf_rate, same = race(run_ours, hf, hf_inputs, new_tokens, repeats, clock)
    batch = hf_inputs["input_ids"].shape[0]
    bound = f"{100 * decoder_bytes(decoder) * ours_rate / bandwidth:5.1f}%" if batch == 1 else "     -"
    return f"{batch:5} {ours_rate:10.1f} {hf_rate:10.1f} {ours_rate / hf_rate:6.2f}x {same:6.2f} {bound}"


def family_table(row: Callable[[int], str], batches: str, label: str = "") -> None:
    """The family benchmarks' table: a header, then ``row(batch)`` per batch size with the seconds it took;
    ``label`` prefixes every line as a first column."""
    first = f"{'model':8} " if label else ""
    print(f"{first}{'batch':>5} {'vlmkit/s':>10} {'hf/s':>10} {'ratio':>7} {'same':>6} {'%bw':>6}")
    for batch in map(int, batches.split(",")):
        start = time.perf_counter()
        prefix = f"{label:8} " if label else ""
        print(f"{prefix}{row(batch)}   ({time.perf_counter() - start:.0f} s)", flush=True)


def bench(
    name: str,
    hf: torch.nn.Module,
    ours: torch.nn.Module,
    dtype: torch.dtype,
    batch: int,
    new_tokens: int,
    repeats: int,
    bandwidth: float,
    device: str,
    clock: Clock,
) -> str:
    hf.to(device, dtype)
    ours.to(device, dtype)
    vlm = isinstance(ours, VisionLanguageModel)
    decoder = ours.decoder if vlm else ours
    tokens = ours.tokens_per_image if vlm else 0
    rows = prompts(batch, decoder.config.vocab_size, tokens, ours.config.image_token_id if vlm else 0)
    ids, mask = (t.to(device) for t in pad_left(rows, 0))
    pixels = torch.randn(batch, 3, 224, 224, dtype=dtype, device=device) if vlm else None
    config = GenerationConfig(max_new_tokens=new_tokens, eos_token_ids=())
    extra = {"pixel_values": pixels} if vlm else {}

    def run_ours() -> list[list[int]]:
        return ours.generate(rows, pixels, config) if vlm else generate(ours, ids, config, attention_mask=mask)

    hf_inputs = {"input_ids": ids, "attention_mask": mask, **extra}
    ours_rate, hf_rate, same = race(run_ours, hf, hf_inputs, new_tokens, repeats, clock)
    bound, ceiling = "     -", "     -"
    if batch == 1:
        bound = f"{100 * decoder_bytes(decoder) * ours_rate / bandwidth:5.1f}%"
        ceiling = f"{100 * decoder_bytes(decoder) * matmul_rate(decoder, clock, repeats) / bandwidth:5.1f}%"
    dtype_name = str(dtype).removeprefix("torch.")
    return (
        f"{name:8} {dtype_name:9} {batch:5} {ours_rate:10.1f} {hf_rate:10.1f} {ours_rate / hf_rate:6.2f}x "
        f"{same:6.2f} {bound} {ceiling}"
    )


def time_to_first_token(
    hf: torch.nn.Module, ours: torch.nn.Module, dtype: torch.dtype, repeats: int, device: str, clock: Clock
) -> str:
    hf.to(device, dtype)
    ours.to(device, dtype)
    rows = prompts(1, 8192, ours.tokens_per_image, ours.config.image_token_id)
    pixels = torch.randn(1, 3, 224, 224, dtype=dtype, device=device)
    one = GenerationConfig(max_new_tokens=1, eos_token_ids=())
    ids = torch.tensor(rows, device=device)
    with torch.inference_mode():
        times = interleaved_medians(
            {
                "ours": lambda: ours.generate(rows, pixels, one),
                "hf": lambda: hf.generate(
                    input_ids=ids, pixel_values=pixels, do_sample=False, max_new_tokens=1, pad_token_id=0
                ),
            },
            repeats=repeats,
            clock=clock,
        )
    return (
        f"TTFT llava {str(dtype).removeprefix('torch.'):9} ({len(rows[0])} prompt tokens): "
        f"vlmkit {1e3 * times['ours']:.1f} ms, transformers {1e3 * times['hf']:.1f} ms, "
        f"{times['hf'] / times['ours']:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--models", default="25m,135m,llava")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="cpu: process CPU seconds")
    args = parser.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    bandwidth = copy_bandwidth(args.device, clock)
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"{torch.get_num_threads()} threads"
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, {where}, "
        f"copy bandwidth {bandwidth / 1e9:.1f} GB/s; prompt {PROMPT} tokens, {args.new_tokens} new tokens; "
        f"{args.clock} clock"
    )
    header = f"{'model':8} {'dtype':9} {'batch':>5} {'vlmkit/s':>10} {'hf/s':>10} {'ratio':>7} {'same':>6}"
    print(f"{header} {'%bw':>6} {'mm%bw':>6}")
    dtypes = [getattr(torch, name) for name in args.dtypes.split(",")]
    for name in args.models.split(","):
        hf = (
            transformers.LlavaForConditionalGeneration(llava_config())
            if name == "llava"
            else transformers.LlamaForCausalLM(llama_config(name))
        )
        ours = load_pair(hf)
        for dtype in dtypes:
            for batch in map(int, args.batches.split(",")):
                start = time.perf_counter()
                print(
                    bench(name, hf, ours, dtype, batch, args.new_tokens, args.repeats, bandwidth, args.device, clock)
                    + f"   ({time.perf_counter() - start:.0f} s)",
                    flush=True,
                )
            if name == "llava":
                print(time_to_first_token(hf, ours, dtype, args.repeats, args.device, clock), flush=True)


if __name__ == "__main__":
    main()
