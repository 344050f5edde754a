"""Qwen2-VL and Qwen2.5-VL: the dynamic-resolution vision tower and the VLM around a Qwen2 decoder with M-RoPE.

Both generations are one pair of configs; Qwen2.5-VL is Qwen2-VL with other field values (RMSNorm and a gated
MLP in the tower, window attention outside ``full_attention_blocks``, video positions in seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vlmkit.config.base import Activation, ConfigBase, _layers, _positive, _size
from vlmkit.config.vlm import DecoderConfig
from vlmkit.errors import ConfigError


@dataclass
class QwenVisionConfig(ConfigBase):
    """The Qwen2-VL vision tower: flattened (temporal x patch x patch) pixels -> merged tokens.

    Fields:
        width, layers, heads, mlp_dim, act: the blocks (Qwen2-VL: ``embed_dim``, ``depth``, ``num_heads``,
            ``embed_dim * mlp_ratio``, quick_gelu; Qwen2.5-VL: ``hidden_size``, ..., ``intermediate_size``, silu).
        norm: "layer" (LayerNorm with bias, Qwen2-VL) or "rms" (RMSNorm, Qwen2.5-VL), in the blocks and the merger.
        mlp: "plain" (fc1, act, fc2) or "gated" (SwiGLU with biases, Qwen2.5-VL).
        patch_size, temporal_patch_size, in_channels: one patch is ``in_channels x temporal x patch x patch``
            pixels (a still image is its frame repeated ``temporal_patch_size`` times by the processor).
        merge_size: each ``merge x merge`` block of neighbouring patches becomes one output token (the merger).
        out_width: features per output token (the decoder's width).
        window_size: window attention in pixels (Qwen2.5-VL: 112); 0 means full attention in every block.
        full_attention_blocks: blocks that attend over the whole frame when windows are on
            (``fullatt_block_indexes``).
        rope_theta: base of the 2-D rotary embedding of the attention.
        norm_eps: of every norm in the tower (transformers hard-codes 1e-6).
    """

    width: int = 1280
    layers: int = 32
    heads: int = 16
    mlp_dim: int = 5120
    act: Activation = "quick_gelu"
    norm: Literal["layer", "rms"] = "layer"
    mlp: Literal["plain", "gated"] = "plain"
    patch_size: int = 14
    temporal_patch_size: int = 2
    in_channels: int = 3
    merge_size: int = 2
    out_width: int = 3584
    window_size: int = 0
    full_attention_blocks: tuple[int, ...] = ()
    rope_theta: float = 10000.0
    norm_eps: float = 1e-6

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    @property
    def patch_features(self) -> int:
        """Values per flattened patch: what a row of ``pixel_values`` holds."""
        return self.in_channels * self.temporal_patch_size * self.patch_size**2

    def parameter_count(self) -> int:
        w = self.width
        mlp = (3 if self.mlp == "gated" else 2) * w * self.mlp_dim
        merged = w * self.merge_size**2
        return self.patch_features * w + self.layers * (4 * w * w + mlp) + merged * (merged + self.out_width)

    def validate(self, where: str) -> None:
        _positive(
            where,
            width=self.width,
            layers=self.layers,
            heads=self.heads,
            mlp_dim=self.mlp_dim,
            patch_size=self.patch_size,
            temporal_patch_size=self.temporal_patch_size,
            in_channels=self.in_channels,
            merge_size=self.merge_size,
            out_width=self.out_width,
            rope_theta=self.rope_theta,
            norm_eps=self.norm_eps,
        )
        _layers(where, layers=self.layers)
        if self.width % self.heads or self.head_dim % 4:
            raise ConfigError(
                f"{where}: width {self.width} / heads {self.heads} must be a whole head size divisible by 4 "
                "(the 2-D rotary splits it into height and width halves)"
            )
        if self.window_size < 0 or self.window_size % (self.patch_size * self.merge_size):
            raise ConfigError(
                f"{where}.window_size: {self.window_size} is not 0 or a multiple of patch_size x merge_size "
                f"({self.patch_size * self.merge_size})"
            )
        outside = [i for i in self.full_attention_blocks if not 0 <= i < self.layers]
        if outside:
            raise ConfigError(f"{where}.full_attention_blocks: {outside} outside the {self.layers} blocks")
        _size(where, self.parameter_count(), width=self.width, layers=self.layers, mlp_dim=self.mlp_dim)


@dataclass
class Qwen2VLConfig(ConfigBase):
    """Qwen2-VL / Qwen2.5-VL: the vision tower's merged tokens replace the image and video pad tokens of a
    Qwen2 decoder, whose rotary positions are 3-D (M-RoPE).

    Fields:
        vision: the tower; its ``out_width`` must be the decoder's width.
        decoder: the Qwen2 language model (a Llama-family decoder with q/k/v biases).
        mrope_section: how many of each head's rotary frequency pairs follow the temporal, height and width
            positions, in that order (sums to half the head size; Qwen's 7B: 16, 24, 24).
        image_token_id, video_token_id: the pad tokens (``<|image_pad|>``, ``<|video_pad|>``) a prompt holds,
            one per merged token; ``vision_start_token_id`` / ``vision_end_token_id`` enclose each run.
        tokens_per_second: Qwen2.5-VL: a video's temporal positions advance by this many per second of video
            (``second_per_grid_ts`` gives the seconds per temporal patch); 0: by one per temporal patch (Qwen2-VL).
        chat_template: the prompt format's name (the checkpoint's own Jinja template is used when present).
    """

    vision: QwenVisionConfig = field(default_factory=QwenVisionConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    mrope_section: tuple[int, ...] = (16, 24, 24)
    image_token_id: int = 151655
    video_token_id: int = 151656
    vision_start_token_id: int = 151652
    vision_end_token_id: int = 151653
    tokens_per_second: float = 0.0
    chat_template: str = "qwen2_vl"

    def validate(self, where: str) -> None:
        if self.vision.out_width != self.decoder.width:
            raise ConfigError(
                f"{where}.vision.out_width: {self.vision.out_width} differs from decoder.width {self.decoder.width}"
            )
        if (
            len(self.mrope_section) != 3
            or min(self.mrope_section) < 0
            or sum(self.mrope_section) * 2 != self.decoder.dim_per_head
        ):
            raise ConfigError(
                f"{where}.mrope_section: {list(self.mrope_section)} must be 3 numbers summing to half the decoder's "
                f"head size ({self.decoder.dim_per_head // 2})"
            )
        for name in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"):
            value = getattr(self, name)
            if not 0 <= value < self.decoder.vocab_size:
                raise ConfigError(f"{where}.{name}: {value} is not below decoder.vocab_size {self.decoder.vocab_size}")
        if self.tokens_per_second < 0:
            raise ConfigError(f"{where}.tokens_per_second: must be >= 0, got {self.tokens_per_second}")
