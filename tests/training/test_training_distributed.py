"""distributed.py in a single process: every helper is the identity or a no-op, env errors are clear."""

import pytest
import torch

from vlmkit.errors import ConfigError
from vlmkit.training import distributed

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture(autouse=True)
def _no_torchrun_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)


def test_single_process_context() -> None:
    context = distributed.init_distributed(device="cpu")
    assert (context.rank, context.world_size, context.local_rank) == (0, 1, 0)
    assert context.device == torch.device("cpu")
    assert context.is_main and not context.is_distributed
    assert distributed.is_main_process() and not distributed.is_distributed()
    assert not torch.distributed.is_initialized()


def test_collectives_are_identities_in_one_process() -> None:
    value = torch.tensor([1.0, 3.0], requires_grad=True)
    mean = distributed.all_reduce_mean(value)
    assert torch.equal(mean, value.detach()) and mean is not value and not mean.requires_grad
    assert distributed.all_gather_with_grad(value) is value
    distributed.barrier()
    distributed.cleanup()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two'"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK=2"),
        ({"WORLD_SIZE": "2", "RANK": "1"}, "MASTER_ADDR, MASTER_PORT unset"),
    ],
)
def test_bad_launch_environment_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        distributed.init_distributed(device="cpu")


def test_unknown_device_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="device"):
        distributed.init_distributed(device="tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cuda_without_a_gpu_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no CUDA device"):
        distributed.init_distributed(device="cuda")
