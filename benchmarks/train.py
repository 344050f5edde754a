"""Training throughput: vlmkit vs transformers CLIPModel(return_loss=True), and vlmkit's 1 -> 2 process scaling.

Both models have the same shape and the same weights (vlmkit loads the transformers checkpoint) and take
AdamW steps on the same random batch, timed interleaved in one run, in float32 and under bfloat16 autocast.
The scaling part trains on a small generated ShapesWorld set with ``vlmkit train clip``, once as one
process and once under ``torchrun --nproc-per-node 2`` on the same global batch, and compares samples/s.

    .venv/bin/python benchmarks/train.py [--batch 64] [--repeats 5] [--skip-scaling] [--device cuda]

On ``--device cuda`` the scaling part is skipped: it needs two devices.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import transformers

import vlmkit
from common import interleaved_medians
from vlmkit.training.losses import ClipLoss


def hf_small_clip() -> transformers.CLIPModel:
    """vlmkit's "small" preset shape at 64 px: ViT width 256 x 6 layers, text width 256 x 6 layers."""
    vision = dict(
        hidden_size=256,
        intermediate_size=1024,
        num_hidden_layers=6,
        num_attention_heads=8,
        image_size=64,
        patch_size=8,
        hidden_act="gelu",
    )
    text = dict(
        vocab_size=1024,
        hidden_size=256,
        intermediate_size=1024,
        num_hidden_layers=6,
        num_attention_heads=8,
        max_position_embeddings=48,
        hidden_act="gelu",
        eos_token_id=2,
        bos_token_id=1,
        pad_token_id=0,
    )
    return transformers.CLIPModel(transformers.CLIPConfig(vision_config=vision, text_config=text, projection_dim=256))


def step_functions(batch: int, dtype: torch.dtype, device: str):
    torch.manual_seed(0)
    hf = hf_small_clip().train()
    with tempfile.TemporaryDirectory() as tmp:
        hf.save_pretrained(tmp)
        ours = vlmkit.load(tmp).train()
    hf.to(device)
    ours.to(device)
    pixels = torch.randn(batch, 3, 64, 64, device=device)
    ids = torch.randint(3, 1000, (batch, 40), device=device)
    ids[:, -1] = 2
    loss_fn = ClipLoss()
    autocast = dict(device_type=device, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16)
    optimizers = {name: torch.optim.AdamW(model.parameters(), lr=1e-4) for name, model in (("hf", hf), ("ours", ours))}

    def hf_step() -> None:
        with torch.autocast(**autocast):
            loss = hf(input_ids=ids, pixel_values=pixels, return_loss=True).loss
        loss.backward()
        optimizers["hf"].step()
        optimizers["hf"].zero_grad()

    def our_step() -> None:
        with torch.autocast(**autocast):
            out = ours(pixels, ids)
            loss = loss_fn(out.image_embeds, out.text_embeds, ours.logit_scale)
        loss.backward()
        optimizers["ours"].step()
        optimizers["ours"].zero_grad()

    return {"vlmkit": our_step, "transformers": hf_step}


def scaling(batch: int) -> dict[str, float]:
    from vlmkit.data.shapesworld import ShapesWorldConfig, generate_split

    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "train"
        generate_split(data, ShapesWorldConfig(), "train", 1024, seed=0, progress=False)
        args = [
            "clip",
            "--data",
            str(data),
            "--steps",
            "12",
            "--batch-size",
            str(batch),
            "--warmup-steps",
            "1",
            "--log-every",
            "4",
            "--eval-images",
            "8",
        ]
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        runs = {
            "1 process": [sys.executable, "-m", "vlmkit", "train"],
            "2 processes": [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nproc-per-node",
                "2",
                "--master-port",
                "29561",
                "-m",
                "vlmkit",
                "train",
            ],
        }
        for name, command in runs.items():
            out = Path(tmp) / name.replace(" ", "_")
            threads = {"OMP_NUM_THREADS": "1"} if name == "2 processes" else {}
            subprocess.run(
                [*command, *args, "--out", str(out)], env={**env, **threads}, check=True, capture_output=True
            )
            lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
            measured = [line["samples_per_s"] for line in lines if "samples_per_s" in line][1:]  # skip warm-up
            rates[name] = sum(measured) / len(measured)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}, batch {args.batch}, 64 px, small preset")
    print(f"{'precision':10} {'vlmkit/s':>9} {'hf/s':>9} {'ratio':>6}")
    for dtype in (torch.float32, torch.bfloat16):
        times = interleaved_medians(step_functions(args.batch, dtype, args.device), repeats=args.repeats)
        ours, hf = args.batch / times["vlmkit"], args.batch / times["transformers"]
        print(f"{'bf16 amp' if dtype == torch.bfloat16 else 'fp32':10} {ours:9.1f} {hf:9.1f} {ours / hf:5.2f}x")
    if not args.skip_scaling and args.device == "cpu":
        rates = scaling(args.batch)
        print(
            "vlmkit train clip, samples/s: "
            + ", ".join(f"{k} {v:.1f}" for k, v in rates.items())
            + f"; 2/1 = {rates['2 processes'] / rates['1 process']:.2f}x"
        )


if __name__ == "__main__":
    main()
