"""``--device``: one set of rules for every command, inference and training alike.

``auto`` is CUDA when torch sees a GPU, else the CPU; ``cpu``, ``cuda`` and ``cuda:N`` are taken as
given. A process launched by torchrun that asks for ``cuda`` (or ``auto`` on a GPU machine) takes the
GPU of its local rank. Asking for CUDA where there is none is one clear error, not a torch traceback.
"""

from __future__ import annotations

import re

import torch

from vlmkit.errors import ConfigError

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(name: str, local_rank: int = 0, world_size: int = 1) -> torch.device:
    """The torch device ``--device name`` means for the process of local rank ``local_rank`` in a job of
    ``world_size`` processes."""
    if not _DEVICE.match(name):
        raise ConfigError(f"--device {name}: expected auto, cpu, cuda or cuda:N")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: torch sees no CUDA device here")
    if name != "cuda" and world_size > 1:
        raise ConfigError(f"--device {name}: under torchrun each process takes its local GPU; pass --device cuda")
    device = torch.device("cuda", local_rank) if name == "cuda" else torch.device(name)
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: GPU {device.index} does not exist ({torch.cuda.device_count()} visible)")
    return device
