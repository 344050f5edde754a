"""EfficientNet-Lite: a mobile ImageNet classifier of inverted-residual (MBConv) blocks.

Each MBConv block widens its input with a 1x1 convolution (``expand``, absent when the ratio is 1),
filters each channel with a k x k depthwise convolution (``depthwise``, which carries the stride),
and narrows back with a 1x1 convolution (``project``, no activation: a linear bottleneck). When the
shape is unchanged the input is added back. The Lite variants drop squeeze-excitation and use ReLU6
so the network quantises well; otherwise it is EfficientNet-B0's layout (see ``EfficientNetConfig``).

Checkpoints trained in TensorFlow pad stride-2 convolutions "SAME": the total padding
``max(k - s, 0)`` (for even inputs) is split with the extra pixel at the bottom and right. PyTorch's
symmetric padding would shift every stride-2 feature map by half a pixel, so ``same_padding`` pads
explicitly.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from vlmkit.config import EfficientNetConfig


class ConvNorm(nn.Module):
    """Convolution (no bias), BatchNorm, and ReLU6 unless ``act=False``."""

    def __init__(
        self,
        channels_in: int,
        channels_out: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        act: bool = True,
        eps: float = 1e-3,
        same_padding: bool = True,
    ) -> None:
        super().__init__()
        # With stride 1 "SAME" is symmetric, so the convolution pads itself; only strided layers need _pad.
        self.pad_first = same_padding and stride > 1
        self.kernel, self.stride = kernel, stride
        padding = 0 if self.pad_first else kernel // 2
        self.conv = nn.Conv2d(channels_in, channels_out, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(channels_out, eps=eps)
        self.act = act

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """TensorFlow "SAME" padding for this input size: the odd pixel goes after, not before."""
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad takes the last dimension first
            total = max((math.ceil(size / self.stride) - 1) * self.stride + self.kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads) if any(pads) else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad_first:
            x = self._pad(x)
        x = self.bn(self.conv(x))
        return F.relu6(x) if self.act else x


class MBConv(nn.Module):
    """Inverted residual block: expand (1x1), depthwise (k x k, strided), project (1x1, linear)."""

    def __init__(
        self, channels_in: int, channels_out: int, kernel: int, stride: int, expand: int, config: EfficientNetConfig
    ) -> None:
        super().__init__()
        hidden = channels_in * expand
        options = {"eps": config.bn_eps, "same_padding": config.same_padding}
        self.expand = ConvNorm(channels_in, hidden, 1, **options) if expand != 1 else None
        self.depthwise = ConvNorm(hidden, hidden, kernel, stride, groups=hidden, **options)
        self.project = ConvNorm(hidden, channels_out, 1, act=False, **options)
        self.residual = stride == 1 and channels_in == channels_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


class EfficientNet(nn.Module):
    """Stem, MBConv stages, 1x1 head, global average pooling, linear classifier."""

    def __init__(self, config: EfficientNetConfig) -> None:
        super().__init__()
        self.config = config
        options = {"eps": config.bn_eps, "same_padding": config.same_padding}
        self.stem = ConvNorm(3, config.stem_channels, 3, stride=2, **options)
        blocks = []
        channels = config.stem_channels
        for kernel, stride, expand, channels_out, repeats in config.stages:
            for repeat in range(repeats):
                blocks.append(MBConv(channels, channels_out, kernel, stride if repeat == 0 else 1, expand, config))
                channels = channels_out
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvNorm(channels, config.head_channels, 1, **options)
        self.classifier = nn.Linear(config.head_channels, config.num_classes) if config.num_classes else None

    def feature_map(self, pixels: torch.Tensor, level: int = -1) -> torch.Tensor:
        """Feature map ``level`` (stem, one per stage, head; -1 is the head's map before pooling) of
        normalised ``(B, 3, H, W)`` pixels. Only the layers up to that level run."""
        self.config.feature_shape(level)  # raises a ConfigError for a level outside the network
        level %= self.config.feature_levels
        # Channels-last activations make the depthwise and 1x1 convolutions ~1.4x faster on CPU.
        x = self.stem(pixels.contiguous(memory_format=torch.channels_last))
        blocks = sum(stage[4] for stage in self.config.stages[:level])
        x = self.blocks[:blocks](x)
        return self.head(x) if level == self.config.feature_levels - 1 else x

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)`` of normalised ``(B, 3, H, W)`` pixels."""
        if self.classifier is None:
            raise ValueError("this EfficientNet has no classifier (num_classes=0); read feature_map instead")
        return self.classifier(self.feature_map(pixels).mean(dim=(2, 3)))


def without_classifier(network: EfficientNet) -> EfficientNet:
    """``network`` as a feature extractor: its classifier removed (in place) and its config saying so."""
    network.classifier = None
    network.config = dataclasses.replace(network.config, num_classes=0)
    return network
