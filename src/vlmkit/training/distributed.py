"""Process-group setup for ``torchrun`` and the few collectives training needs.

Training is single-process by default; launched by ``torchrun`` it becomes one process per device.
Everything here degrades to a no-op (or the identity) when there is only one process, so the trainer
and the losses call these functions unconditionally instead of branching on "am I distributed?".

``torchrun`` describes the job through environment variables: ``RANK`` (this process among all),
``WORLD_SIZE`` (how many processes), ``LOCAL_RANK`` (this process on its machine, which picks the GPU)
and ``MASTER_ADDR`` / ``MASTER_PORT`` (where rank 0 listens for the rendezvous).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from vlmkit.devices import resolve_device
from vlmkit.errors import ConfigError


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the job and which device it owns."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, logs and progress bars."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r}: expected an integer") from None


def is_distributed() -> bool:
    """True when a process group with more than one member is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join the ``torchrun`` process group, if launched by one, and pick this process's device.

    ``device`` follows ``vlmkit.devices.resolve_device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``); a
    ``cuda`` process takes the GPU numbered ``LOCAL_RANK``. CUDA processes use the NCCL backend, CPU
    processes gloo. Without ``WORLD_SIZE`` > 1 in the environment no process group is created and the
    context describes a single process. Calling it again after the group exists returns the same
    context without re-initialising.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"environment: RANK={rank} must lie in [0, WORLD_SIZE={world_size})")
    torch_device = resolve_device(device, local_rank, world_size)
    use_cuda = torch_device.type == "cuda"
    if use_cuda:
        torch.cuda.set_device(torch_device)

    if world_size > 1 and not dist.is_initialized():
        missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
        if missing:
            raise ConfigError(
                f"environment: WORLD_SIZE={world_size} but {', '.join(missing)} unset; launch with torchrun"
            )
        backend = "nccl" if use_cuda else "gloo"
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size)
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=torch_device)


def barrier() -> None:
    """Wait until every process gets here (e.g. rank 0 finished writing a checkpoint)."""
    if is_distributed():
        dist.barrier()


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over all processes, as a new tensor (the input is left unchanged).

    Used for logging: each rank's loss is the loss of its shard, and their mean is the loss of the
    global batch (see ``losses``). The tensor must live on this process's device (CUDA under NCCL).
    """
    if not is_distributed():
        return tensor.detach().clone()
    reduced = tensor.detach().clone()
    dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
    return reduced / dist.get_world_size()


class _AllGatherWithGrad(torch.autograd.Function):
    """Concatenate every rank's tensor along dim 0, sending gradients back to their owners.

    Forward: ``out = cat([x_0, ..., x_{P-1}])`` with ``x_r`` the tensor of rank ``r``. Each rank ``q``
    then computes its own loss ``L_q`` from ``out``, so ``x_r`` influences every ``L_q``. Its gradient
    is the sum over ranks of their upstream gradient at the rows of ``x_r``:
    ``dL/dx_r = sum_q (dL_q/dout)[rows of r]``, i.e. an all-reduce (sum) of the upstream gradient
    followed by taking this rank's rows. (A reduce-scatter would move half the bytes but gloo lacks
    it; feature gradients are small, so one code path for every backend wins.)
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.contiguous()
        world_size, rank = dist.get_world_size(), dist.get_rank()
        gathered = [torch.empty_like(tensor) for _ in range(world_size)]
        dist.all_gather(gathered, tensor)
        ctx.rows = tensor.shape[0]
        ctx.rank = rank
        return torch.cat(gathered, dim=0)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_output: torch.Tensor) -> torch.Tensor:
        summed = grad_output.contiguous().clone()
        dist.all_reduce(summed, op=dist.ReduceOp.SUM)
        start = ctx.rank * ctx.rows
        return summed[start : start + ctx.rows]


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` from every rank concatenated along dim 0 (rank order), differentiable.

    Every rank must pass the same shape (drop the last incomplete batch when sharding data). With a
    single process this returns ``tensor`` itself.
    """
    if not is_distributed():
        return tensor
    return _AllGatherWithGrad.apply(tensor)


def cleanup() -> None:
    """Leave the process group (end of training); harmless when none exists.

    All ranks first meet at a barrier: rank 0 hosts the rendezvous store, and a rank still talking
    to it when rank 0 exits dies with an abort instead of a clean exit.
    """
    if dist.is_available() and dist.is_initialized():
        if dist.get_world_size() > 1:
            dist.barrier()
        dist.destroy_process_group()
