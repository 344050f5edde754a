"""Questions to an index: text -> images, image -> images (near duplicates), and zero-shot tagging.

``Searcher`` holds an open store and the model that built it; the module functions open one for a
single call. Queries are embedded by the index's own model unless another is named, and naming
another is an error (the store compares it with the manifest), since scores across models mean
nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from vlmkit.errors import InputError
from vlmkit.processing.images import ImageSource
from vlmkit.search.manifest import read_manifest
from vlmkit.search.metadata import Filters
from vlmkit.search.models import load_search_model
from vlmkit.search.store import Hit, SearchStore
from vlmkit.tasks.classify import DEFAULT_TEMPLATES, label_embeddings
from vlmkit.tasks.embed import embed_images, embed_texts

TAG_BATCH = 4096


class Searcher:
    """An index opened for queries with its model. Close it (or use ``with``) when done."""

    def __init__(self, store: SearchStore, model: nn.Module) -> None:
        self.store = store
        self.model = model

    @classmethod
    def open(
        cls, index_dir: str | os.PathLike[str], model: str | nn.Module | None = None, model_id: str | None = None
    ) -> Searcher:
        """Open ``index_dir``; ``model`` defaults to the one its manifest names."""
        built_with = read_manifest(index_dir)["model_id"]
        loaded, resolved = load_search_model(model, model_id, default=built_with)
        return cls(SearchStore.open(index_dir, model_id=resolved), loaded)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Searcher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def text(
        self,
        queries: str | Sequence[str],
        k: int = 10,
        *,
        min_score: float | None = None,
        filters: Filters | None = None,
    ) -> list[list[Hit]]:
        """The best ``k`` items per text query, best first."""
        texts = [queries] if isinstance(queries, str) else list(queries)
        if not texts or not all(t.strip() for t in texts):
            raise InputError("empty text query; give at least one non-empty query")
        return self.store.search(embed_texts(self.model, texts).numpy(), k, min_score=min_score, filters=filters)

    def image(
        self,
        images: Sequence[ImageSource],
        k: int = 10,
        *,
        min_score: float | None = None,
        filters: Filters | None = None,
    ) -> list[list[Hit]]:
        """The best ``k`` items per query image; ``min_score`` near 1 keeps only near duplicates."""
        vectors = embed_images(self.model, list(images)).numpy()
        return self.store.search(vectors, k, min_score=min_score, filters=filters)

    @torch.inference_mode()
    def tag(
        self,
        labels: Sequence[str],
        *,
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        threshold: float = 0.3,
        progress: bool = True,
    ) -> dict[str, dict[str, float]]:
        """Zero-shot tags for every indexed file, stored in the index and returned by path.

        Each item's probabilities over ``labels`` come from the model's own head (softmax for CLIP
        and ConSE, sigmoid for SigLIP); a label is a tag when its probability reaches ``threshold``.
        A video's tag scores are the maximum over its frames. Tags replace the previous ones.
        """
        classes = label_embeddings(self.model, labels, templates).to(self.model.device)
        names = [label.strip() for label in labels]
        paths = sorted(self.store.known_files())
        tags: dict[str, dict[str, float]] = {}
        for start in tqdm(range(0, len(paths), TAG_BATCH), desc="tagging", unit="batch", disable=not progress):
            chunk = paths[start : start + TAG_BATCH]
            stored = self.store.vectors_for(chunk)
            for path in chunk:
                vectors = torch.from_numpy(np.ascontiguousarray(stored[path])).to(classes.device, classes.dtype)
                logits = self.model.similarity(vectors, classes).float()
                best = self.model.probabilities(logits).amax(dim=0)
                tags[path] = {
                    n: round(float(p), 4) for n, p in zip(names, best.tolist(), strict=True) if p >= threshold
                }
            self.store.set_tags(chunk, [tags[path] for path in chunk])
            self.store.commit()
        return tags


def search_text(
    index_dir: str | os.PathLike[str],
    query: str,
    k: int = 10,
    *,
    model: str | nn.Module | None = None,
    min_score: float | None = None,
    filters: Filters | None = None,
) -> list[Hit]:
    """The best ``k`` items of the index for a text query."""
    with Searcher.open(index_dir, model) as searcher:
        return searcher.text(query, k, min_score=min_score, filters=filters)[0]


def search_image(
    index_dir: str | os.PathLike[str],
    image: ImageSource,
    k: int = 10,
    *,
    model: str | nn.Module | None = None,
    min_score: float | None = None,
    filters: Filters | None = None,
) -> list[Hit]:
    """The best ``k`` items of the index for a query image (a path, bytes or PIL image)."""
    if isinstance(image, (str, Path)) and not Path(image).is_file():
        raise InputError(f"{image}: query image not found")
    with Searcher.open(index_dir, model) as searcher:
        return searcher.image([image], k, min_score=min_score, filters=filters)[0]


def tag_collection(
    index_dir: str | os.PathLike[str],
    labels: Sequence[str],
    *,
    model: str | nn.Module | None = None,
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    threshold: float = 0.3,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Tag every file of the index with the ``labels`` it matches (see ``Searcher.tag``)."""
    with Searcher.open(index_dir, model) as searcher:
        return searcher.tag(labels, templates=templates, threshold=threshold, progress=progress)
