"""``/v1/search``: nearest images and pages in a ``SearchStore`` to a query, with small thumbnails.

A text query over an index holding texts (PDF pages, OCR'd images) ranks as ``vlmkit search`` does: BM25
over the texts fused with the embedding ranking (``search.fusion``); its hits carry their ``page`` and the
best matching ``line`` with its ``box`` (page pixels), for the client to quote and draw.

The store is read by one request at a time (its SQLite connection and faiss index are not meant for
concurrent use), off the event loop. Thumbnails are JPEG data URLs so the page can show results
without the server exposing a file route; they are cached by path, as the same images come back
for query after query. Paths in the index are used as written when absolute, else taken relative
to ``images_root``; the server reads only files the index names.

Hits name their files relative to the index root, so that answers do not map the server's disks:
a relative path as the index holds it, an absolute one relative to ``images_root`` when inside it,
else relative to the folder all the index's absolute paths share. ``absolute_paths`` (the operator's
choice) gives absolute paths instead.
"""

from __future__ import annotations

import base64
import functools
import io
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from vlmkit.errors import VlmkitError
from vlmkit.processing.images import load_image
from vlmkit.search.fusion import text_hits
from vlmkit.search.report import page_image
from vlmkit.search.store import SearchStore

THUMBNAIL_SIDE = 160
THUMBNAIL_CACHE = 1024


class SearchService:
    """A ``SearchStore`` queried with vectors from the model its manifest names (``model_id``)."""

    def __init__(
        self, store: SearchStore, images_root: Path | None, max_pixels: int, *, absolute_paths: bool = False
    ) -> None:
        self.store = store
        self.images_root = images_root
        self.max_pixels = max_pixels
        self.absolute_paths = absolute_paths
        self._lock = threading.Lock()
        self._index_root: str | None = None
        self.thumbnail = functools.lru_cache(maxsize=THUMBNAIL_CACHE)(self._thumbnail)

    def search(
        self, query: np.ndarray, k: int, min_score: float | None, thumbnails: bool, text: str | None = None
    ) -> list[dict[str, Any]]:
        """The best ``k`` hits for the query's embedding (and ``text``, the query itself when it is a text) as
        JSON-ready dicts (call from a worker thread, not the event loop)."""
        vector = np.asarray(query, dtype=np.float32)[None]
        with self._lock:
            if text is None:
                hits = self.store.search(vector, k, min_score=min_score)[0]
            else:
                hits = text_hits(self.store, text, vector, k, min_score=min_score)
            shown = {hit.path: self.shown_path(hit.path) for hit in hits}
        return [
            {
                "id": hit.id,
                "score": hit.score,
                "path": shown[hit.path],
                "frame_time": hit.frame_time,
                "width": hit.width,
                "height": hit.height,
                "tags": hit.tags,
                "page": hit.page,
                "line": hit.line,
                "box": list(hit.box) if hit.box is not None else None,
                "thumbnail": self.thumbnail(hit.path, hit.page) if thumbnails else None,
            }
            for hit in hits
        ]

    def shown_path(self, path: str) -> str:
        """How a hit names its file: ``path`` relative to the index root, or absolute if so configured."""
        file = self._file(path)
        if self.absolute_paths:
            return file.as_posix()
        if not Path(path).is_absolute():
            return path
        if self.images_root is not None and file.is_relative_to(self.images_root):
            return file.relative_to(self.images_root).as_posix()
        if self._index_root is None:  # once, under the lock: the folder every absolute path lies in
            folders = [os.path.dirname(p) for p in self.store.known_files() if Path(p).is_absolute()]
            self._index_root = os.path.commonpath(folders) if folders else "/"
        return os.path.relpath(file, self._index_root) if file.is_relative_to(self._index_root) else file.name

    def _file(self, path: str) -> Path:
        file = Path(path)
        if not file.is_absolute() and self.images_root is not None:
            file = self.images_root / file
        return file

    def _thumbnail(self, path: str, page: int | None) -> str | None:
        """A JPEG data URL of the image (or document page) at ``path``, at most ``THUMBNAIL_SIDE`` px a side;
        None if unreadable."""
        try:
            if page is None:
                image = load_image(self._file(path), max_pixels=self.max_pixels, min_side=THUMBNAIL_SIDE)
            else:
                image = page_image(self._file(path), page, max_pixels=self.max_pixels)
        except VlmkitError:
            return None
        image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
