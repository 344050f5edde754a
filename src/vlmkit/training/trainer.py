"""The one trainer: every recipe (CLIP, SigLIP, the LLaVA stages, LoRA) is a ``TrainTask`` run by it.

The trainer owns what all recipes share: the optimizer and schedule, mixed precision, gradient
accumulation and clipping, DDP under torchrun, the JSONL log and progress bar, periodic evaluation,
and checkpoints that resume a run exactly. A task owns what differs: its data, its loss and its
evaluation.

Data position is part of the state. A task serves micro-batch ``j`` of epoch ``e`` on demand
(``TrainTask.batch``), from a permutation seeded by (seed, epoch), so a resumed run asks for exactly
the batches the uninterrupted run would have, without replaying the ones before.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from vlmkit.config import ConfigBase
from vlmkit.errors import ConfigError, InputError
from vlmkit.files import atomic_write_json
from vlmkit.training.checkpointing import list_checkpoints, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from vlmkit.training.data import to_device
from vlmkit.training.distributed import DistributedContext, all_reduce_mean, barrier
from vlmkit.training.metrics import MetricsLog
from vlmkit.training.optim import build_optimizer, warmup_cosine_schedule


@dataclass
class TrainConfig(ConfigBase):
    """Optimisation settings shared by every recipe.

    ``batch_size`` is the global batch of one optimizer step; it is split over processes and
    accumulation steps, so the maths is the same on one process or many.
    """

    steps: int = 1000
    batch_size: int = 128
    grad_accum: int = 1
    lr: float = 5e-4
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    warmup_steps: int = 100
    min_lr_ratio: float = 0.0
    grad_clip: float | None = 1.0  # max global gradient norm; None for no clipping
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast matmuls, fp32 master weights
    seed: int = 0
    log_every: int = 10
    eval_every: int = 0  # 0: evaluate only at the end
    save_every: int = 0  # 0: checkpoint only at the end (and on Ctrl-C)
    keep_last: int = 2
    gradient_checkpointing: bool = False
    per_module_lr: dict[str, float] | None = None  # module prefix -> lr, e.g. {"projector": 1e-3}

    def validate(self, where: str) -> None:
        for name in ("steps", "batch_size", "grad_accum", "log_every", "keep_last"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{where}.{name}: must be positive, got {getattr(self, name)}")
        if self.warmup_steps < 0 or self.lr <= 0:
            raise ConfigError(f"{where}: lr must be > 0 and warmup_steps >= 0")

    def micro_batch(self, world_size: int) -> int:
        per_step = world_size * self.grad_accum
        if self.batch_size % per_step:
            raise ConfigError(
                f"batch_size {self.batch_size} is not divisible by processes ({world_size}) x "
                f"grad_accum ({self.grad_accum})"
            )
        return self.batch_size // per_step


class TrainTask(Protocol):
    """What a recipe provides to the trainer."""

    def batches_per_epoch(self, micro_batch: int, world_size: int) -> int:
        """Micro-batches per epoch of the global data (each of ``micro_batch`` items on every rank)."""

    def batch(self, epoch: int, index: int, micro_batch: int, rank: int, world_size: int) -> Any:
        """This rank's share of micro-batch ``index`` of ``epoch``; deterministic in its arguments."""

    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss to minimise and extra scalars to log (e.g. the temperature)."""

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Held-out metrics, run on rank 0 only."""


def epoch_indices(count: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled item order of ``epoch``: the same on every rank, different each epoch."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(count, generator=generator)


def shard(order: torch.Tensor, index: int, micro_batch: int, rank: int, world_size: int) -> list[int]:
    """Items of micro-batch ``index`` for ``rank``: consecutive slices of one global batch per rank."""
    start = (index * world_size + rank) * micro_batch
    return order[start : start + micro_batch].tolist()


def freeze_locked_batch_norms(model: nn.Module) -> None:
    """Keep the BatchNorms of frozen towers in eval mode.

    ``train()`` would otherwise normalise a locked tower with each batch's statistics and drift its
    running averages, so the "frozen" tower would change what it computes.
    """
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
            p.requires_grad for p in module.parameters()
        ):
            module.eval()


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        task: TrainTask,
        config: TrainConfig,
        run_dir: str | Path,
        context: DistributedContext,
        resume: bool = False,
    ) -> None:
        self.model = model.to(context.device)
        self.task = task
        self.config = config
        self.run_dir = Path(run_dir)
        self.context = context
        self.micro_batch = config.micro_batch(context.world_size)
        self.per_epoch = task.batches_per_epoch(self.micro_batch, context.world_size)
        if self.per_epoch < config.grad_accum:
            raise InputError(
                f"the dataset gives {self.per_epoch} micro-batches of {self.micro_batch} per epoch, "
                f"fewer than one optimizer step needs ({config.grad_accum}); use a smaller batch_size"
            )
        self.checkpoint_dir = self.run_dir / "checkpoints"
        self._set_gradient_checkpointing(config.gradient_checkpointing)
        self.optimizer = build_optimizer(
            model, config.lr, config.weight_decay, config.betas, config.eps, config.per_module_lr
        )
        self.scheduler = warmup_cosine_schedule(self.optimizer, config.warmup_steps, config.steps, config.min_lr_ratio)
        self.step = 0
        self.micro_steps_done = 0  # micro-batches consumed since the start of the run
        torch.manual_seed(config.seed)
        existing = list_checkpoints(self.checkpoint_dir)
        if existing and not resume:
            raise InputError(
                f"{self.run_dir} already holds checkpoints; pass --resume to continue that run or choose "
                "another output directory"
            )
        if resume and existing:
            self._restore(existing[-1])
        self.wrapped: nn.Module = self.model
        if context.is_distributed:
            if context.device.type == "cuda":  # batch statistics over the global batch; gloo has no SyncBatchNorm
                self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.wrapped = DistributedDataParallel(self.model)
        self.log = MetricsLog(self.run_dir, resume_step=self.step if resume else None) if context.is_main else None
        if context.is_main:
            atomic_write_json(self.run_dir / "trainer.json", config.to_dict())

    def _set_gradient_checkpointing(self, enabled: bool) -> None:
        for module in self.model.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = enabled

    def _restore(self, path: Path) -> None:
        state = load_checkpoint(path, self.model)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.micro_steps_done = state["step"], state["micro_steps_done"]
        set_rng_state(state["rng"])

    def _state(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "micro_steps_done": self.micro_steps_done,
            "rng": rng_state(),
            "config": self.config.to_dict(),
        }

    def save(self) -> None:
        if self.context.is_main:
            save_checkpoint(self.checkpoint_dir, self.step, self.model, self._state(), self.config.keep_last)
        barrier()

    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.context.device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16")

    def _optimizer_step(self) -> tuple[float, dict[str, float], int]:
        """Accumulate ``grad_accum`` micro-batches, clip, step. Returns (loss, extras, samples)."""
        self.wrapped.train()
        freeze_locked_batch_norms(self.model)
        total, extras, samples = 0.0, {}, 0
        for k in range(self.config.grad_accum):
            epoch, index = divmod(self.micro_steps_done, self.per_epoch)
            batch = self.task.batch(epoch, index, self.micro_batch, self.context.rank, self.context.world_size)
            batch = to_device(batch, self.context.device)
            last = k == self.config.grad_accum - 1
            sync = contextlib.nullcontext() if last or not self.context.is_distributed else self.wrapped.no_sync()
            with sync:
                with self._autocast():
                    loss, extras = self.task.loss(self.wrapped, batch)
                (loss / self.config.grad_accum).backward()
            total += loss.detach().float().item() / self.config.grad_accum
            samples += self.micro_batch * self.context.world_size
            self.micro_steps_done += 1
        grad_norm = None
        if self.config.grad_clip is not None:
            grad_norm = float(
                torch.nn.utils.clip_grad_norm_(
                    [p for p in self.model.parameters() if p.requires_grad], self.config.grad_clip
                )
            )
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1
        if grad_norm is not None:
            extras = {**extras, "grad_norm": grad_norm}
        return float(all_reduce_mean(torch.tensor(total, device=self.context.device))), extras, samples

    def evaluate(self) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if self.context.is_main:
            self.model.eval()
            with torch.inference_mode(), self._autocast():
                metrics = self.task.evaluate(self.model)
        barrier()
        return metrics

    def fit(self, until: int | None = None) -> dict[str, float]:
        """Train to ``config.steps`` (or stop early after step ``until``); returns the last eval metrics."""
        config, last_eval = self.config, {}
        stop = min(until or config.steps, config.steps)
        bar = tqdm(
            total=config.steps,
            initial=self.step,
            desc="train",
            unit="step",
            disable=not self.context.is_main,
            dynamic_ncols=True,
        )
        window_start, window_samples = time.perf_counter(), 0
        try:
            while self.step < stop:
                loss, extras, samples = self._optimizer_step()
                window_samples += samples
                bar.update(1)
                if self.step % config.log_every == 0 or self.step == stop:
                    rate = window_samples / max(time.perf_counter() - window_start, 1e-9)
                    record = {
                        "step": self.step,
                        "epoch": self.micro_steps_done / self.per_epoch,
                        "loss": loss,
                        "lr": self.scheduler.get_last_lr()[0],
                        "samples_per_s": rate,
                        **extras,
                    }
                    bar.set_postfix(loss=f"{loss:.4f}", samples_s=f"{rate:.0f}")
                    self._write(record)
                    window_start, window_samples = time.perf_counter(), 0
                if config.eval_every and self.step % config.eval_every == 0 and self.step < config.steps:
                    last_eval = self._evaluate_and_log()
                if config.save_every and self.step % config.save_every == 0:
                    self.save()
        except KeyboardInterrupt:
            bar.close()
            self.save()
            raise
        bar.close()
        self.save()
        if self.step >= config.steps:
            last_eval = self._evaluate_and_log()
        if self.log:
            self.log.close()
        return last_eval

    def _evaluate_and_log(self) -> dict[str, float]:
        metrics = self.evaluate()
        if metrics:
            self._write({"step": self.step, **{f"eval/{k}": v for k, v in metrics.items()}})
            tqdm.write(f"step {self.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        return metrics

    def _write(self, record: dict[str, Any]) -> None:
        if self.log:
            self.log.write(record)


def save_run_config(run_dir: Path, settings: dict[str, Any]) -> None:
    """The recipe's full settings, so ``--config run_dir/run.json`` reproduces the run."""
    atomic_write_json(run_dir / "run.json", json.loads(json.dumps(settings, default=str)))
