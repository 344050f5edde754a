"""Dual-encoder protocols over embeddings: zero-shot classification and image-text retrieval.

They take image embeddings already computed (from files with ``tasks.embed_images``, or from a
training run's preloaded pixels), so the same numbers come out of ``vlmkit eval`` and of periodic
evaluation during training.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vlmkit.errors import InputError
from vlmkit.evaluation.classification import topk_accuracy
from vlmkit.evaluation.retrieval import image_text_retrieval
from vlmkit.tasks.classify import label_embeddings
from vlmkit.tasks.embed import embed_texts


def zero_shot_accuracy(
    model,
    image_embeds: torch.Tensor,
    targets: Sequence[str],
    classnames: Sequence[str],
    templates: Sequence[str],
    parts: Sequence[str] = (),
) -> dict[str, float]:
    """Top-1/top-5 accuracy of classifying each image as its target class among ``classnames``.

    With ``parts`` (e.g. ("color", "shape") for "red star" classes), also the share of top-1 predictions
    right in each word: a model that sees colour but not shape scores 100% / chance, which the joint
    accuracy alone cannot tell apart from a model half right on both. ``text_similarity_<part>`` is the
    mean cosine between class prompts that differ in that word only. It tells which tower is blind: near
    1 means the text tower maps "red star" and "red circle" to the same point, so no image tower could
    be scored on the difference.
    """
    index = {name: i for i, name in enumerate(classnames)}
    missing = sorted(set(targets) - set(index))
    if missing:
        raise InputError(f"zero-shot targets {missing[:3]} are not among the class names")
    classes = label_embeddings(model, classnames, templates)
    logits = image_embeds.float() @ classes.t()
    accuracy = topk_accuracy(logits, [index[t] for t in targets], ks=(1, 5))
    result = {"zero_shot_top1": accuracy[1], "zero_shot_top5": accuracy[5]}
    if parts:
        predicted = [classnames[i].split() for i in logits.argmax(dim=1).tolist()]
        truth = [t.split() for t in targets]
        if any(len(words) != len(parts) for words in [*predicted, *truth]):
            raise InputError(f"zero-shot parts {list(parts)}: every class name needs {len(parts)} words")
        for k, part in enumerate(parts):
            hits = sum(p[k] == t[k] for p, t in zip(predicted, truth, strict=True))
            result[f"zero_shot_{part}"] = hits / len(truth)
        result.update(_part_similarity(classes.float(), [name.split() for name in classnames], parts))
    return result


def _part_similarity(classes: torch.Tensor, words: list[list[str]], parts: Sequence[str]) -> dict[str, float]:
    """Mean cosine between the class embeddings (unit rows) of every pair that differs in one part only."""
    cosine = classes @ classes.t()
    pairs: dict[str, list[float]] = {part: [] for part in parts}
    for i in range(len(words)):
        for j in range(i + 1, len(words)):
            differs = [a != b for a, b in zip(words[i], words[j], strict=True)]
            if sum(differs) == 1:
                pairs[parts[differs.index(True)]].append(cosine[i, j].item())
    return {f"text_similarity_{part}": sum(values) / len(values) for part, values in pairs.items() if values}


def retrieval_recall(
    model, image_embeds: torch.Tensor, captions: Sequence[Sequence[str]], ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """Recall@K both ways; image ``i`` is described by every caption in ``captions[i]``."""
    flat = [caption for group in captions for caption in group]
    owners = [i for i, group in enumerate(captions) for _ in group]
    similarity = image_embeds.float() @ embed_texts(model, flat).t()
    result = image_text_retrieval(similarity, owners, ks).as_dict()
    return {k: v for k, v in result.items() if "R@" in k}
