"""The one trainer: every recipe (CLIP, SigLIP, the LLaVA stages, LoRA) hands it a ``Prepared``.

The trainer owns what all recipes share: the optimizer and schedule, mixed precision, gradient
accumulation and clipping, DDP under torchrun, the JSONL log and progress bar, periodic evaluation,
and checkpoints that resume a run exactly. A recipe owns what differs: its model, its objective, its
data and its evaluation (``training.objective``).

Data position is part of the state. The batch source serves micro-batch ``j`` of epoch ``e`` on demand,
from an order seeded by (seed, epoch) (``data.sampling``), so a resumed run asks for exactly the batches
the uninterrupted run would have, without replaying the ones before.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from vlmkit.config.base import ConfigBase, option
from vlmkit.errors import ConfigError, InputError
from vlmkit.progress import progress
from vlmkit.training.checkpointing import (
    checkpoints_to_resume,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from vlmkit.training.distributed import DistributedContext, all_reduce_mean, barrier
from vlmkit.training.metrics import MetricsLog
from vlmkit.training.objective import Objective, ObjectiveOutput, Prepared
from vlmkit.training.optim import build_optimizer, warmup_cosine_schedule


@dataclass
class TrainConfig(ConfigBase):
    """Optimisation settings shared by every recipe.

    ``batch_size`` is the global batch of one optimizer step; it is split over processes and
    accumulation steps, so the maths is the same on one process or many.
    """

    steps: int = option(1000, "optimizer steps")
    batch_size: int = option(128, "global batch of one optimizer step (over processes and accumulation)")
    grad_accum: int = option(1, "micro-batches accumulated per optimizer step")
    lr: float = option(5e-4, "peak learning rate")
    weight_decay: float = option(0.1, "AdamW weight decay (never on norms, biases, embeddings, temperature)")
    betas: tuple[float, float] = option((0.9, 0.98), "AdamW betas", cli=False)
    eps: float = option(1e-6, "AdamW epsilon", cli=False)
    warmup_steps: int | None = option(
        None, "linear warm-up steps before the cosine decay (default: a tenth of the steps, at most 100)"
    )
    min_lr_ratio: float = option(0.0, "learning rate at the end, as a share of the peak", research=True)
    grad_clip: float | None = option(1.0, "max global gradient norm (none: no clipping)", research=True)
    precision: Literal["fp32", "bf16"] = option("fp32", "bf16: autocast matmuls, fp32 master weights")
    seed: int = option(0, "seed of the initial weights and the data order")
    log_every: int = option(10, "steps between metric lines")
    eval_every: int = option(0, "steps between evaluations (0: only at the end)")
    save_every: int = option(250, "steps between checkpoints (0: only at the end and on Ctrl-C)")
    keep_last: int = option(2, "checkpoints kept")
    gradient_checkpointing: bool = option(False, "recompute activations in the backward pass to save memory")
    per_module_lr: dict[str, float] | None = option(
        None, "learning rates by module prefix, e.g. projector=1e-3 (a new projector before a pretrained decoder)"
    )

    def validate(self, where: str) -> None:
        for name in ("steps", "batch_size", "grad_accum", "log_every", "keep_last"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{where}.{name}: must be positive, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"{where}.lr: must be positive, got {self.lr}")
        if self.warmup_steps is not None and not 0 <= self.warmup_steps <= self.steps:
            raise ConfigError(f"{where}.warmup_steps: expected 0..steps ({self.steps}), got {self.warmup_steps}")
        for name in ("eval_every", "save_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{where}.{name}: must be >= 0 (0: only at the end), got {getattr(self, name)}")

    @property
    def warmup(self) -> int:
        """Warm-up steps: as set, or a tenth of the run (at most 100), so the default fits any length."""
        return self.warmup_steps if self.warmup_steps is not None else min(100, self.steps // 10)

    def micro_batch(self, world_size: int) -> int:
        per_step = world_size * self.grad_accum
        if self.batch_size % per_step:
            raise ConfigError(
                f"batch_size {self.batch_size} is not divisible by processes ({world_size}) x "
                f"grad_accum ({self.grad_accum})"
            )
        return self.batch_size // per_step


class _ModelAndObjective(nn.Module):
    """Model and objective as one module: what DDP wraps and what a step calls."""

    def __init__(self, model: nn.Module, objective: Objective) -> None:
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, batch: Any) -> ObjectiveOutput:
        return self.objective(self.model, batch)


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
        prepared: Prepared,
        config: TrainConfig,
        run_dir: str | Path,
        context: DistributedContext,
        resume: bool = False,
    ) -> None:
        self.model = prepared.model.to(context.device)
        self.objective = prepared.objective.to(context.device)
        self.batches, self.evaluation = prepared.batches, prepared.evaluate
        self.config = config
        self.run_dir = Path(run_dir)
        self.context = context
        self.micro_batch = config.micro_batch(context.world_size)
        self.per_epoch = self.batches.batches_per_epoch(self.micro_batch, context.world_size)
        if self.per_epoch < config.grad_accum:
            raise InputError(
                f"the dataset gives {self.per_epoch} micro-batches of {self.micro_batch} per epoch, "
                f"fewer than one optimizer step needs ({config.grad_accum}); use a smaller batch_size"
            )
        self.checkpoint_dir = self.run_dir / "checkpoints"
        self._set_gradient_checkpointing(config.gradient_checkpointing)
        self.optimizer = build_optimizer(
            self.model, config.lr, config.weight_decay, config.betas, config.eps, config.per_module_lr, self.objective
        )
        self.scheduler = warmup_cosine_schedule(self.optimizer, config.warmup, config.steps, config.min_lr_ratio)
        self.step = 0
        self.micro_steps_done = 0  # micro-batches consumed since the start of the run
        torch.manual_seed(config.seed)
        existing = checkpoints_to_resume(self.checkpoint_dir, resume)
        if existing:
            self._restore(existing[-1])
            if context.is_main:
                tqdm.write(f"resuming {self.run_dir} from step {self.step} ({existing[-1].name})")
        elif resume and context.is_main:
            tqdm.write(f"--resume: {self.checkpoint_dir} holds no checkpoint yet; starting {self.run_dir} from step 0")
        self.wrapped: nn.Module = _ModelAndObjective(self.model, self.objective)
        if context.is_distributed:
            if context.device.type == "cuda":  # batch statistics over the global batch; gloo has no SyncBatchNorm
                self.wrapped = nn.SyncBatchNorm.convert_sync_batchnorm(self.wrapped)  # converts in place
            self.wrapped = DistributedDataParallel(self.wrapped)
        self.log = MetricsLog(self.run_dir, resume_step=self.step if resume else None) if context.is_main else None

    def _modules(self) -> dict[str, nn.Module]:
        return {"model": self.model, "objective": self.objective}

    def _trainable(self) -> list[nn.Parameter]:
        return [p for module in self._modules().values() for p in module.parameters() if p.requires_grad]

    def _set_gradient_checkpointing(self, enabled: bool) -> None:
        for module in self.model.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = enabled

    def _restore(self, path: Path) -> None:
        state = load_checkpoint(path, self._modules())
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
            save_checkpoint(self.checkpoint_dir, self.step, self._modules(), self._state(), self.config.keep_last)
        barrier()

    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.context.device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16")

    def _optimizer_step(self) -> tuple[float, dict[str, float], int]:
        """Accumulate ``grad_accum`` micro-batches, clip, step. Returns (loss, extras, samples)."""
        self.wrapped.train()
        freeze_locked_batch_norms(self.wrapped)
        total, extras, samples = 0.0, {}, 0
        for k in range(self.config.grad_accum):
            epoch, index = divmod(self.micro_steps_done, self.per_epoch)
            batch = self.batches.batch(epoch, index, self.micro_batch, self.context.rank, self.context.world_size)
            batch = batch.to(self.context.device)
            last = k == self.config.grad_accum - 1
            sync = contextlib.nullcontext() if last or not self.context.is_distributed else self.wrapped.no_sync()
            with sync:
                with self._autocast():
                    output: ObjectiveOutput = self.wrapped(batch)
                loss, extras = output.loss, output.metrics
                (loss / self.config.grad_accum).backward()
            total += loss.detach().float().item() / self.config.grad_accum
            samples += self.micro_batch * self.context.world_size
            self.micro_steps_done += 1
        grad_norm = None
        if self.config.grad_clip is not None:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self._trainable(), self.config.grad_clip))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1
        if grad_norm is not None:
            extras = {**extras, "grad_norm": grad_norm}
        return float(all_reduce_mean(torch.tensor(total, device=self.context.device))), extras, samples

    def evaluate(self) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if self.context.is_main and self.evaluation is not None:
            self.model.eval()
            with torch.inference_mode(), self._autocast():
                metrics = self.evaluation(self.model)
        barrier()
        return metrics

    def fit(self, until: int | None = None) -> dict[str, float]:
        """Train to ``config.steps`` (or stop early after step ``until``); returns the last eval metrics."""
        config, last_eval = self.config, {}
        stop = min(until or config.steps, config.steps)
        bar = progress(
            total=config.steps,
            initial=self.step,
            desc="train",
            unit="step",
            disable=not self.context.is_main,
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
                    bar.set_postfix(loss=f"{loss:.4f}", samples_s=f"{rate:.0f}", refresh=False)  # the bar paces itself
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
