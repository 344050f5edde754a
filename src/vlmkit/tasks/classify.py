"""Zero-shot classification with prompt-template ensembles (CLIP's protocol)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vlmkit.errors import InputError
from vlmkit.models import DualEncoder
from vlmkit.processing.images import ImageSource
from vlmkit.tasks.embed import embed_images, embed_texts

DEFAULT_TEMPLATES = ("a photo of a {}.",)
MAX_TEMPLATES = 128  # CLIP's ImageNet ensemble has 80
MAX_TEMPLATE_CHARS = 256


@dataclass(frozen=True)
class Prediction:
    label: str
    probability: float


def check_templates(templates: Sequence[str]) -> None:
    """Raise ``InputError`` unless there are 1 to ``MAX_TEMPLATES`` templates, each with a ``{}`` and at
    most ``MAX_TEMPLATE_CHARS`` characters."""
    if not templates or any("{}" not in template for template in templates):
        raise InputError(f"every template needs a '{{}}' placeholder for the label, got {list(templates)[:4]}")
    if len(templates) > MAX_TEMPLATES:
        raise InputError(f"at most {MAX_TEMPLATES} templates, got {len(templates)}")
    longest = max(len(template) for template in templates)
    if longest > MAX_TEMPLATE_CHARS:
        raise InputError(f"templates must be at most {MAX_TEMPLATE_CHARS} characters, got one of {longest}")


def fill(template: str, label: str) -> str:
    """The prompt: ``template`` with each ``{}`` replaced by ``label``, and nothing else interpreted.

    Not ``str.format``: templates may come from a client, and format would read ``{0.__class__}``-style
    fields, fail on ``{1}`` and spend seconds and gigabytes on a ``{:>5000000}`` width.
    """
    return template.replace("{}", label)


def label_embeddings(
    model: DualEncoder, labels: Sequence[str], templates: Sequence[str] = DEFAULT_TEMPLATES
) -> torch.Tensor:
    """One embedding per label: the mean of its normalised template embeddings, renormalised.

    Averaging over several phrasings ("a photo of a {}.", "a drawing of a {}.") smooths out the
    quirks of any single prompt; CLIP reports a few points of ImageNet accuracy from it.
    """
    labels = [label.strip() for label in labels]
    if not labels or not all(labels):
        raise InputError("the label list is empty or has an empty label; give at least one label")
    check_templates(templates)
    prompts = [fill(template, label) for label in labels for template in templates]
    embeds = embed_texts(model, prompts).view(len(labels), len(templates), -1)
    return F.normalize(embeds.mean(dim=1), dim=-1)


def classify(
    model: DualEncoder,
    images: Sequence[ImageSource],
    labels: Sequence[str],
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    top_k: int = 5,
) -> list[list[Prediction]]:
    """The ``top_k`` labels of each image with their probabilities (softmax for CLIP, sigmoid for SigLIP)."""
    classes = label_embeddings(model, labels, templates)
    with torch.inference_mode():
        logits = model.similarity(
            embed_images(model, images).to(model.device, classes.dtype), classes.to(model.device)
        ).float()
        probabilities = model.probabilities(logits).cpu()
    top = probabilities.topk(min(top_k, len(labels)), dim=-1)
    return [
        [Prediction(labels[i], float(p)) for p, i in zip(row_p.tolist(), row_i.tolist(), strict=True)]
        for row_p, row_i in zip(top.values, top.indices, strict=True)
    ]
