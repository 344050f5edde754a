"""big_vision's mask tokenizer ``.npz`` layout loads into ``MaskTokenizer`` and computes what big_vision does.

The file is built here with big_vision's key names and PyTorch layouts (random weights, tiny widths, a
3x3 stride-2 encoder kernel so TensorFlow's asymmetric SAME padding matters); the reference is numpy
written from big_vision's code: ``encode_to_codebook_indices`` (SAME convolutions, residual blocks,
argmin of squared distances) and the demo's decoder (transposed convolutions as the gradient of a
convolution, kernel 4, stride 2, output cropped by 1), then ``clip(x * 0.5 + 0.5, 0, 1)``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

import vlmkit
from vlmkit.checkpoints.mask_tokenizer import load_big_vision_npz
from vlmkit.errors import CheckpointError

DIM, CODES = 8, 128
ENC, KERNEL = (2, 3, 4, 5), 3
DEC = (6, 5, 4, 3)


def _big_vision_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def conv(name: str, out: int, inp: int, k: int, scale: float = 0.4) -> dict[str, np.ndarray]:
        return {
            f"{name}.weight": (rng.standard_normal((out, inp, k, k)) * scale).astype(np.float32),
            f"{name}.bias": (rng.standard_normal(out) * 0.1).astype(np.float32),
        }

    arrays = {"_vq_vae._embedding": rng.standard_normal((CODES, DIM)).astype(np.float32)}
    widths = (1, *ENC)
    for n in range(4):
        arrays |= conv(f"encoder.{2 * n}", widths[n + 1], widths[n], KERNEL)
    for n in range(2):
        for part, k in ((0, 3), (2, 3), (4, 1)):
            arrays |= conv(f"encoder.{8 + n}.net.{part}", ENC[-1], ENC[-1], k, 0.2)
            arrays |= conv(f"decoder.{2 + n}.net.{part}", DEC[0], DEC[0], k, 0.2)
    arrays |= conv("encoder.10", DIM, ENC[-1], 1)
    arrays |= conv("decoder.0", DEC[0], DIM, 1)
    ups = (DEC[0], *DEC)
    for n in range(4):  # ConvTranspose2d weights are (in, out, kh, kw)
        arrays |= {
            f"decoder.{4 + 2 * n}.weight": (rng.standard_normal((ups[n], ups[n + 1], 4, 4)) * 0.3).astype(np.float32),
            f"decoder.{4 + 2 * n}.bias": (rng.standard_normal(ups[n + 1]) * 0.1).astype(np.float32),
        }
    arrays |= conv("decoder.12", 1, DEC[-1], 1)
    return arrays


def _same_conv(x: np.ndarray, ckpt: dict, name: str, stride: int = 1) -> np.ndarray:
    """TensorFlow ``conv2d(..., padding='SAME')`` on (H, W, C) with a PyTorch (out, in, kh, kw) kernel."""
    w, b = ckpt[f"{name}.weight"], ckpt[f"{name}.bias"]
    k = w.shape[2]
    pads = []
    for size in x.shape[:2]:
        out = -(-size // stride)
        total = max((out - 1) * stride + k - size, 0)
        pads.append((total // 2, total - total // 2))
    padded = np.pad(x, (*pads, (0, 0)))
    windows = sliding_window_view(padded, (k, k), axis=(0, 1))[::stride, ::stride]  # (Ho, Wo, C, k, k)
    return np.einsum("ijcab,ocab->ijo", windows, w) + b


def _transposed_conv(x: np.ndarray, ckpt: dict, name: str) -> np.ndarray:
    """Kernel 4, stride 2: every input pixel scatters its kernel, then 1 is cropped from each side."""
    w, b = ckpt[f"{name}.weight"], ckpt[f"{name}.bias"]
    h, wd, _ = x.shape
    full = np.zeros((2 * (h - 1) + 4, 2 * (wd - 1) + 4, w.shape[1]))
    for i in range(h):
        for j in range(wd):
            full[2 * i : 2 * i + 4, 2 * j : 2 * j + 4] += np.einsum("c,coab->abo", x[i, j], w)
    return full[1 : 1 + 2 * h, 1 : 1 + 2 * wd] + b


def _resblock(x: np.ndarray, ckpt: dict, name: str) -> np.ndarray:
    y = np.maximum(_same_conv(x, ckpt, f"{name}.0"), 0)
    y = np.maximum(_same_conv(y, ckpt, f"{name}.2"), 0)
    return x + _same_conv(y, ckpt, f"{name}.4")


def _reference_encode(mask: np.ndarray, ckpt: dict) -> np.ndarray:
    x = 2.0 * (mask[..., None].astype(np.float64) - 0.5)
    for n in range(4):
        x = np.maximum(_same_conv(x, ckpt, f"encoder.{2 * n}", stride=2), 0)
    for n in range(2):
        x = _resblock(x, ckpt, f"encoder.{8 + n}.net")
    flat = _same_conv(x, ckpt, "encoder.10").reshape(-1, DIM)
    emb = ckpt["_vq_vae._embedding"]
    distances = (flat**2).sum(1, keepdims=True) + (emb**2).sum(1) - 2 * flat @ emb.T
    return distances.argmin(1)


def _reference_decode(codes: np.ndarray, ckpt: dict) -> np.ndarray:
    x = ckpt["_vq_vae._embedding"][codes].reshape(4, 4, DIM).astype(np.float64)
    x = np.maximum(_same_conv(x, ckpt, "decoder.0"), 0)
    for n in range(2):
        x = _resblock(x, ckpt, f"decoder.{2 + n}.net")
    for n in range(4):
        x = np.maximum(_transposed_conv(x, ckpt, f"decoder.{4 + 2 * n}"), 0)
    return np.clip(_same_conv(x, ckpt, "decoder.12")[..., 0] * 0.5 + 0.5, 0, 1)


@pytest.fixture
def npz(tmp_path):
    arrays = _big_vision_arrays()
    path = tmp_path / "vae.npz"
    np.savez(path, **arrays, **{"_vq_vae._ema_w": np.zeros((CODES, DIM), np.float32)})  # a key it does not read
    return path, arrays


def test_loaded_model_encodes_and_decodes_as_big_vision(npz):
    path, arrays = npz
    model = load_big_vision_npz(path)
    assert model.config.encoder_kernel == KERNEL and model.config.output == "signed"
    assert model.config.encoder_channels == ENC and model.config.decoder_channels == DEC
    rng = np.random.default_rng(1)
    masks = np.zeros((3, 64, 64), np.float32)
    masks[0, 10:50, 20:40] = 1
    masks[1] = rng.random((64, 64)) > 0.5
    masks[2] = rng.random((64, 64))
    codes = model.encode(torch.from_numpy(masks))
    expected = np.stack([_reference_encode(m, arrays) for m in masks])
    assert np.array_equal(codes.numpy(), expected)
    decoded = model.decode(codes).numpy()
    reference = np.stack([_reference_decode(c, arrays) for c in expected])
    assert np.abs(decoded - reference).max() < 1e-4
    assert 0.01 < reference.mean() < 0.99  # not a saturated output that any decoder would match


def test_loaded_model_saves_as_a_vlmkit_directory(npz, tmp_path):
    model = load_big_vision_npz(npz[0])
    vlmkit.save_pretrained(model, tmp_path / "m")
    codes = torch.randint(0, CODES, (2, 16))
    assert torch.equal(vlmkit.load(tmp_path / "m").decode(codes), model.decode(codes))


def test_missing_or_misshaped_tensors_name_the_key(tmp_path):
    arrays = _big_vision_arrays()
    del arrays["decoder.12.bias"]
    np.savez(tmp_path / "a.npz", **arrays)
    with pytest.raises(CheckpointError, match=r"missing tensors: decoder\.12\.bias"):
        load_big_vision_npz(tmp_path / "a.npz")
    arrays = _big_vision_arrays()
    arrays["encoder.9.net.2.weight"] = arrays["encoder.9.net.2.weight"][:, :, :2]
    np.savez(tmp_path / "b.npz", **arrays)
    with pytest.raises(CheckpointError, match=r"encoder\.9\.net\.2\.weight has shape"):
        load_big_vision_npz(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", weights=np.zeros(3))
    with pytest.raises(CheckpointError, match="not big_vision's mask tokenizer layout"):
        load_big_vision_npz(tmp_path / "c.npz")


def test_pickled_arrays_and_broken_files_are_refused(tmp_path):
    np.savez(tmp_path / "p.npz", **{"_vq_vae._embedding": np.array([{"x": 1}], dtype=object)})
    with pytest.raises(CheckpointError, match="without pickle"):
        load_big_vision_npz(tmp_path / "p.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match=r"bad\.npz"):
        load_big_vision_npz(tmp_path / "bad.npz")
    with pytest.raises(CheckpointError, match="no such file"):
        load_big_vision_npz(tmp_path / "absent.npz")
