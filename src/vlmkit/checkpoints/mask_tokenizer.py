"""big_vision's published mask tokenizer (``vae-oid.npz``, PaliGemma's ``<segNNN>`` codes) as a ``MaskTokenizer``.

The file is a numpy ``.npz`` of a PyTorch state dict, read without pickle. Its names are the ones
big_vision reads (``big_vision/pp/proj/paligemma/segmentation.py`` for the encoder and codebook, the
PaliGemma demo's ``_get_params`` for the decoder), PyTorch layouts (conv ``(out, in, kh, kw)``,
transposed conv ``(in, out, kh, kw)``):

- ``_vq_vae._embedding``: the codebook, (codes, dim);
- ``encoder.{0,2,4,6}``: the stride-2 convolutions (ReLUs at the odd indices); ``encoder.{8,9}.net.{0,2,4}``:
  the residual blocks' convolutions; ``encoder.10``: the 1x1 conv to the code dimension;
- ``decoder.0``: the 1x1 input conv; ``decoder.{2,3}.net.{0,2,4}``: residual blocks;
  ``decoder.{4,6,8,10}``: the transposed convolutions; ``decoder.12``: the 1x1 output conv.

Widths, kernel and code size are read from the shapes, so any model of this layout loads; its decoder
output is big_vision's signed convention (``output="signed"``). Keys outside these (training state a
file may carry) are not read.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from vlmkit.checkpoints.keymap import Rule, copy, load_mapped
from vlmkit.config.mask_tokenizer import DOWNSAMPLINGS, MaskTokenizerConfig
from vlmkit.errors import CheckpointError, ConfigError
from vlmkit.models.mask_tokenizer import MaskTokenizer

RES_BLOCKS = 2
"""big_vision's ``NUM_RES_BLOCKS``: the layer indices of the layout assume two on each side."""
CODEBOOK = "_vq_vae._embedding"


def _conv(target: str, source: str) -> list[Rule]:
    return [copy(f"{target}.weight", f"{source}.weight"), copy(f"{target}.bias", f"{source}.bias")]


def _block(target: str, source: str) -> list[Rule]:
    return [rule for i, conv in enumerate((0, 2, 4)) for rule in _conv(f"{target}.conv{i}", f"{source}.net.{conv}")]


def big_vision_rules() -> list[Rule]:
    """vlmkit key <- big_vision key, for every tensor of a ``MaskTokenizer``."""
    rules = [copy("codebook", CODEBOOK)]
    for n in range(DOWNSAMPLINGS):
        rules += _conv(f"encoder.downs.{n}", f"encoder.{2 * n}")
        rules += _conv(f"decoder.ups.{n}", f"decoder.{4 + 2 * n}")
    for n in range(RES_BLOCKS):
        rules += _block(f"encoder.blocks.{n}", f"encoder.{8 + n}")
        rules += _block(f"decoder.blocks.{n}", f"decoder.{2 + n}")
    rules += (
        _conv("encoder.out", "encoder.10") + _conv("decoder.input", "decoder.0") + _conv("decoder.out", "decoder.12")
    )
    return rules


def read_npz(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Every array of an ``.npz`` as a tensor; pickled (object) arrays are refused, never loaded."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: torch.from_numpy(np.array(archive[key])) for key in archive.files}
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except ValueError as error:  # object arrays need pickle; refused
        raise CheckpointError(f"{path}: holds an array numpy cannot read without pickle ({error})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise CheckpointError(f"{path}: not a readable .npz file ({error})") from None


def config_from_shapes(tensors: dict[str, torch.Tensor], where: str) -> MaskTokenizerConfig:
    """The config whose model has these tensors' shapes (checked in full when the weights are assigned)."""
    needed = [CODEBOOK, *(f"encoder.{2 * n}.weight" for n in range(DOWNSAMPLINGS))]
    needed += [f"decoder.{4 + 2 * n}.weight" for n in range(DOWNSAMPLINGS)]
    absent = [key for key in needed if key not in tensors]
    if absent:
        raise CheckpointError(f"{where}: not big_vision's mask tokenizer layout; missing {', '.join(absent[:4])}")
    shapes = {key: tuple(tensors[key].shape) for key in needed}
    if len(shapes[CODEBOOK]) != 2 or any(len(shapes[key]) != 4 for key in needed[1:]):
        raise CheckpointError(f"{where}: {CODEBOOK} must be 2-D and the conv weights 4-D, got {shapes}")
    first = shapes["encoder.0.weight"]
    try:
        return MaskTokenizerConfig(
            num_codes=shapes[CODEBOOK][0],
            embedding_dim=shapes[CODEBOOK][1],
            encoder_channels=tuple(shapes[f"encoder.{2 * n}.weight"][0] for n in range(DOWNSAMPLINGS)),
            encoder_kernel=first[2],
            decoder_channels=tuple(shapes[f"decoder.{4 + 2 * n}.weight"][1] for n in range(DOWNSAMPLINGS)),
            res_blocks=RES_BLOCKS,
            output="signed",
        ).checked(where)
    except ConfigError as error:
        raise CheckpointError(str(error)) from None


def load_big_vision_npz(path: str | os.PathLike[str]) -> MaskTokenizer:
    """big_vision's mask VQ-VAE ``.npz`` as a ``MaskTokenizer`` in eval mode (``save_pretrained`` it to get
    a vlmkit model directory)."""
    where = str(path)
    tensors = read_npz(path)
    config = config_from_shapes(tensors, where)
    with torch.device("meta"):
        model = MaskTokenizer(config)
    float32 = {key: value.float() if value.is_floating_point() else value for key, value in tensors.items()}
    used = {source for rule in big_vision_rules() for source in rule.sources}
    load_mapped(model, big_vision_rules(), float32, where, ignore=lambda key: key not in used)
    return model.eval()
