"""Questions to an index: text -> images and pages (by embedding, and by BM25 over page texts where the
index has them: ``fusion``), image -> images (near duplicates), zero-shot tagging, and listing the items
that carry a tag.

``Searcher`` holds an open store and the model that built it; the module functions open one for a
single call. Queries are embedded by the index's own model unless another is named, and naming
another is an error (the store compares it with the manifest), since scores across models mean
nothing. Listing by tag (``search_tags``) reads only the index's database and loads no model.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import TracebackType

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from vlmkit.errors import InputError
from vlmkit.processing.images import ImageSource
from vlmkit.search.fusion import check_mode, text_hits
from vlmkit.search.hits import hits_of
from vlmkit.search.manifest import check_model, read_manifest
from vlmkit.search.metadata import Filters, Metadata
from vlmkit.search.models import canonical_model_id, load_search_model
from vlmkit.search.store import DATABASE, Hit, SearchStore
from vlmkit.tasks.classify import DEFAULT_TEMPLATES, label_embeddings
from vlmkit.tasks.embed import embed_images, embed_texts

TAG_BATCH = 4096
DEFAULT_THRESHOLD = 0.5
# "None of these": generic descriptions every label competes with, phrased through the same templates as
# the labels, so a photo that shows none of the labels goes to them instead of to the least bad label.
BACKGROUND = ("thing", "object", "picture", "scene", "background", "texture", "pattern", "surface", "shape", "text")


def tag_probabilities(
    model: nn.Module, vectors: torch.Tensor, classes: torch.Tensor, background: torch.Tensor
) -> torch.Tensor:
    """``(rows, labels)``: each row's probability of each label in one softmax over the model's logits for
    the labels and the background together; what a row's label probabilities leave is "none of these"."""
    logits = model.similarity(vectors, torch.cat([classes, background])).float()
    return logits.softmax(dim=-1)[:, : len(classes)]


@contextmanager
def _database(index_dir: str | os.PathLike[str]) -> Iterator[Metadata]:
    """A reading connection to the index's database (readers take no lock)."""
    read_manifest(index_dir)  # a clear error when the directory is no index
    meta = Metadata.open(Path(index_dir) / DATABASE)
    try:
        yield meta
    finally:
        meta.close()


def _tagged(meta: Metadata, tags: Sequence[str], k: int, min_score: float | None, filters: Filters | None) -> list[Hit]:
    if k < 1:
        raise InputError(f"k must be >= 1; got {k}")
    filters = filters or Filters()
    wanted = tuple(dict.fromkeys(t.strip() for t in [*filters.tags, *tags] if t.strip()))
    if not wanted:
        raise InputError("no tag given; name at least one, e.g. --tag cat")
    filters = replace(filters, tags=wanted)
    best = meta.best_tagged(filters, k)
    return hits_of(best, meta.rows([i for i, _ in best]), k, min_score)


class Searcher:
    """An index opened for queries with its model. Close it (or use ``with``) when done."""

    def __init__(self, store: SearchStore, model: nn.Module) -> None:
        self.store = store
        self.model = model

    @classmethod
    def open(
        cls,
        index_dir: str | os.PathLike[str],
        model: str | nn.Module | None = None,
        model_id: str | None = None,
        device: str = "cpu",
    ) -> Searcher:
        """Open ``index_dir``; ``model`` defaults to the one its manifest names (loaded on ``device``)."""
        built_with = read_manifest(index_dir)["model_id"]
        loaded, resolved = load_search_model(model, model_id, default=built_with, device=device)
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
        mode: str = "hybrid",
    ) -> list[list[Hit]]:
        """The best ``k`` items per text query, best first; ``mode`` as in ``fusion`` (``hybrid``: BM25 over
        the texts fused with the embeddings, or the embeddings alone where the index holds no text)."""
        texts = [queries] if isinstance(queries, str) else list(queries)
        if not texts or not all(t.strip() for t in texts):
            raise InputError("empty text query; give at least one non-empty query")
        check_mode(mode)
        vectors = embed_texts(self.model, texts).numpy() if mode != "text" else [None] * len(texts)
        options = {"mode": mode, "min_score": min_score, "filters": filters}
        return [text_hits(self.store, text, vector, k, **options) for text, vector in zip(texts, vectors, strict=True)]

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

    def tagged(
        self, tags: Sequence[str], k: int = 10, *, min_score: float | None = None, filters: Filters | None = None
    ) -> list[Hit]:
        """The best ``k`` files carrying every tag in ``tags`` (see ``search_tags``)."""
        with _database(self.store.directory) as meta:
            return _tagged(meta, tags, k, min_score, filters)

    def stored_tags(self) -> dict[str, dict[str, float]]:
        """Every indexed path with the tags stored for it now (empty when never tagged)."""
        with _database(self.store.directory) as meta:
            return meta.tags_by_path()

    @torch.inference_mode()
    def tag(
        self,
        labels: Sequence[str],
        *,
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        threshold: float = DEFAULT_THRESHOLD,
        background: Sequence[str] = BACKGROUND,
        progress: bool = True,
    ) -> dict[str, dict[str, float]]:
        """Zero-shot tags for every indexed file, stored in the index and returned by path.

        The rule: each label, and each ``background`` word not among the labels ("thing", "texture",
        "text", ...), is embedded through ``templates``; an item's scores are one softmax over the model's
        logits for all of them together, and a label's score is its share. A label therefore scores high
        only when it beats the other labels *and* every generic description, and a photo that matches
        none of the labels leaves its probability on the background ("none of these") and gets no tag.
        A label is a tag when its score reaches ``threshold``: 0.9 keeps only labels the model gives
        at least 90% of the probability. Scores across labels of one item sum to at most 1, so with a
        threshold above 0.5 an image gets at most one tag. A video's scores are the maximum over its
        frames. Tags replace the previous ones of every file.
        """
        if not 0.0 <= threshold <= 1.0:
            raise InputError(f"threshold must be a probability between 0 and 1; got {threshold}")
        names = list(dict.fromkeys(label.strip() for label in labels))
        if not names or not all(names):
            raise InputError("the label list is empty or has an empty label; give at least one label")
        chosen = {name.casefold() for name in names}
        rest = [word for word in background if word.strip().casefold() not in chosen]
        embedded = label_embeddings(self.model, [*names, *rest], templates).to(self.model.device)
        classes, others = embedded[: len(names)], embedded[len(names) :]
        paths = sorted(self.store.known_files())
        tags: dict[str, dict[str, float]] = {}
        for start in tqdm(range(0, len(paths), TAG_BATCH), desc="tagging", unit="batch", disable=not progress):
            chunk = paths[start : start + TAG_BATCH]
            stored = self.store.vectors_for(chunk)
            for path in chunk:
                vectors = torch.from_numpy(np.ascontiguousarray(stored[path])).to(classes.device, classes.dtype)
                best = tag_probabilities(self.model, vectors, classes, others).amax(dim=0)
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
    mode: str = "hybrid",
) -> list[Hit]:
    """The best ``k`` items of the index for a text query (``mode``: see ``Searcher.text``)."""
    with Searcher.open(index_dir, model) as searcher:
        return searcher.text(query, k, min_score=min_score, filters=filters, mode=mode)[0]


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
    threshold: float = DEFAULT_THRESHOLD,
    progress: bool = True,
    device: str = "cpu",
) -> dict[str, dict[str, float]]:
    """Tag every file of the index with the ``labels`` it matches (see ``Searcher.tag``)."""
    with Searcher.open(index_dir, model, device=device) as searcher:
        return searcher.tag(labels, templates=templates, threshold=threshold, progress=progress)


def search_tags(
    index_dir: str | os.PathLike[str],
    tags: Sequence[str],
    k: int = 10,
    *,
    model: str | None = None,
    min_score: float | None = None,
    filters: Filters | None = None,
) -> list[Hit]:
    """The best ``k`` files of the index carrying every tag in ``tags`` (and passing ``filters``), one
    hit per file, best first by tag score: a hit's ``score`` is the file's lowest score among ``tags``,
    and ``min_score`` applies to it. Loads no model; ``model``, when given, must be the index's."""
    if model is not None:
        check_model(Path(index_dir), read_manifest(index_dir), canonical_model_id(model))
    with _database(index_dir) as meta:
        return _tagged(meta, tags, k, min_score, filters)
