"""Peak resident memory of loading a ~1 GB checkpoint, as a multiple of its file size.

A random Llama decoder (about 300M float32 parameters by default) is written twice: as a Hugging Face
directory (``model_type`` llama, transformers' key names, taken from a meta-device transformers model)
and as a vlmkit directory (``save_pretrained``). Each is then loaded by ``vlmkit.load`` in a fresh process,
which reports its peak RSS (``VmHWM``; ``ru_maxrss`` would inherit the parent's peak across exec) above
what it held just before loading (torch and vlmkit imported). Loading builds the model on the meta device
and assigns the read tensors, so memory should be one copy of the weights at most; the issue's target is
a peak of at most 1.3x the file size. Memory-mapped tensors count only once touched, so a load that keeps
the map (the vlmkit directory as saved) defers its pages to first use. ``bfloat16`` loads with a cast.

    .venv/bin/python benchmarks/load_memory.py [--width 1536 --layers 8 --vocab 32000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

CHILD = """
import json, sys, torch, vlmkit

def status_kib(field):  # /proc/self/status (Linux): VmRSS now, VmHWM this process's peak since exec
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))

start = status_kib("VmRSS")
model = vlmkit.load(sys.argv[1], dtype=getattr(torch, sys.argv[2]) if sys.argv[2] != "none" else None)
print(json.dumps({"peak_kib": status_kib("VmHWM"), "start_kib": start}))
"""


def write_hf_llama(directory: Path, width: int, layers: int, vocab: int) -> int:
    """A random HF Llama directory with transformers' key names; returns the weights' file size."""
    import transformers

    config = transformers.LlamaConfig(
        vocab_size=vocab, hidden_size=width, intermediate_size=width * 8 // 3 // 64 * 64, num_hidden_layers=layers,
        num_attention_heads=width // 64, num_key_value_heads=width // 128, tie_word_embeddings=False,
    )  # fmt: skip
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in transformers.LlamaForCausalLM(config).state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    tensors = {k: torch.randn(shape, generator=generator) * 0.02 for k, shape in shapes.items()}
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, directory / "model.safetensors", metadata={"format": "pt"})
    config.save_pretrained(directory)
    return (directory / "model.safetensors").stat().st_size


def measure(directory: Path, dtype: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(directory), dtype], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr.strip().splitlines()[-1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1536)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--keep", type=Path, help="write the checkpoints here instead of a temporary directory")
    args = parser.parse_args()
    import vlmkit

    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        hf_dir, ours_dir = root / "hf-llama", root / "vlmkit-llama"
        size = write_hf_llama(hf_dir, args.width, args.layers, args.vocab)
        vlmkit.save_pretrained(vlmkit.load(hf_dir), ours_dir)
        print(f"checkpoint: {size / 2**30:.2f} GiB of float32 weights")
        print(f"{'directory':<14}{'dtype':<10}{'peak above start':>18}{'x file size':>13}")
        for name, directory in (("hugging face", hf_dir), ("vlmkit", ours_dir)):
            for dtype in ("none", "bfloat16"):
                row = measure(directory, dtype)
                extra = (row["peak_kib"] - row["start_kib"]) * 1024
                label = "as saved" if dtype == "none" else dtype
                print(f"{name:<14}{label:<10}{extra / 2**30:>15.2f} GiB{extra / size:>12.2f}x")


if __name__ == "__main__":
    main()
