"""Two gloo processes on CPU reproduce one process with the whole batch: same loss, same gradients.

Each worker wraps a tiny two-tower linear model in DDP (which averages gradients over ranks), feeds
it its half of a global batch, and saves its mean-reduced loss and parameter gradients; the test
compares them with the same model trained on the full batch in this process.
"""

import math
import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from vlmkit.training.distributed import all_reduce_mean, cleanup, init_distributed
from vlmkit.training.losses import ClipLoss, SigLipLoss

WORLD_SIZE = 2
GLOBAL_BATCH = 8


class TwoTowers(nn.Module):
    def __init__(self, with_bias: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.image = nn.Linear(6, 4)
        self.text = nn.Linear(5, 4)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))
        self.logit_bias = nn.Parameter(torch.tensor(-2.0)) if with_bias else None

    def forward(self, images: torch.Tensor, texts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return F.normalize(self.image(images), dim=-1), F.normalize(self.text(texts), dim=-1)


KINDS = ("clip", "siglip", "clip-negatives", "siglip-negatives")


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Images, then texts: the first half of the text rows match the images, the second half are
    hard negatives (used by the ``-negatives`` kinds)."""
    generator = torch.Generator().manual_seed(1)
    return torch.randn(GLOBAL_BATCH, 6, generator=generator), torch.randn(2 * GLOBAL_BATCH, 5, generator=generator)


def _loss(kind: str, model: nn.Module, images: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
    params = model.module if isinstance(model, DistributedDataParallel) else model
    image_features, text_features = model(images, texts)
    positives, negatives = text_features[: len(images)], text_features[len(images) :]
    extra = (negatives,) if kind.endswith("negatives") else ()
    if kind.startswith("clip"):
        return ClipLoss()(image_features, positives, params.logit_scale, *extra)
    return SigLipLoss()(image_features, positives, params.logit_scale, params.logit_bias, *extra)


def _worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD_SIZE),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    context = init_distributed(device="cpu")
    assert (context.rank, context.world_size, context.is_main) == (rank, WORLD_SIZE, rank == 0)
    images, texts = _batch()
    shard = slice(rank * GLOBAL_BATCH // WORLD_SIZE, (rank + 1) * GLOBAL_BATCH // WORLD_SIZE)
    text_shard = torch.cat([texts[:GLOBAL_BATCH][shard], texts[GLOBAL_BATCH:][shard]])
    try:
        for kind in KINDS:
            model = DistributedDataParallel(TwoTowers(with_bias=kind.startswith("siglip")))
            loss = _loss(kind, model, images[shard], text_shard)
            loss.backward()
            tensors = {name: p.grad for name, p in model.module.named_parameters()}
            tensors["loss"] = all_reduce_mean(loss)
            save_file(tensors, str(Path(out_dir) / f"{kind}_rank{rank}.safetensors"))
    finally:
        cleanup()
    # Skip interpreter teardown: gloo's background threads occasionally abort the process there
    # (SIGABRT after the work is done and saved), which would fail the test for nothing it checks.
    os._exit(0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_match_one_process_with_the_global_batch(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    images, texts = _batch()
    for kind in KINDS:
        model = TwoTowers(with_bias=kind.startswith("siglip"))
        loss = _loss(kind, model, images, texts)
        loss.backward()
        for rank in range(WORLD_SIZE):
            result = load_file(str(tmp_path / f"{kind}_rank{rank}.safetensors"))
            torch.testing.assert_close(result.pop("loss"), loss.detach(), atol=1e-5, rtol=0)
            expected = {name: p.grad for name, p in model.named_parameters()}
            assert result.keys() == expected.keys()
            for name, grad in expected.items():
                torch.testing.assert_close(result[name], grad, atol=1e-5, rtol=1e-5, msg=f"{kind} {name}")
