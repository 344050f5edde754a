"""Embed a collection of images, documents and videos into a ``SearchStore``: reader -> mapper -> writer.

- **Reader** (``reader``, in worker processes of a torch ``DataLoader``): hash each file, decode it (a
  video into sampled frames, a PDF into pages with their text, from its text layer or by OCR) and
  preprocess it into pixels. Reading runs ahead of the model by ``prefetch`` files per worker, so it
  hides behind inference instead of adding to it.
- **Mapper** (this process): run the model on batches of frames and pages from many files.
- **Writer**: add each batch, vectors and texts, to the store and commit it. A commit is all-or-nothing
  (SQLite), so a crash or Ctrl-C loses at most the batch in flight and never corrupts the index.

Incremental: ``plan_update`` compares a scan with what the store knows. A file whose size and mtime
match its stored row is skipped without being read; otherwise it is hashed, and when its content hash still
matches (a ``touch``, a copy that lost its mtime) its stored rows are kept with the new mtime
(``Metadata.touch``): it is not decoded, OCR'd or embedded again. Other files are decoded and embedded.
Indexed files under the scanned root that are gone are removed.
A re-run after a crash therefore redoes only files that were not committed.

Unreadable files never stop a run: whatever a decoder raises on one file (Pillow's ``ValueError`` for
an oversized text chunk, ``SyntaxError`` for a broken header, PyAV's errors, an encrypted PDF, ...) is
that file's failure, counted and listed in the ``IndexReport`` (and a formerly indexed file that became
unreadable is dropped from the index).
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from vlmkit.documents.engines import DEFAULT_ENGINE, get_engine
from vlmkit.documents.pages import DEFAULT_MAX_PAGES
from vlmkit.errors import ConfigError, InputError
from vlmkit.processing.images import DEFAULT_MAX_PIXELS, ImagePreprocessor
from vlmkit.progress import progress as progress_bar
from vlmkit.search.manifest import read_manifest
from vlmkit.search.metadata import FileState
from vlmkit.search.models import load_search_model
from vlmkit.search.reader import MISSING_OCR, MISSING_PDFIUM, Decoded, FileReader, ReadOptions, is_pdf
from vlmkit.search.scan import SourceFile, plan_update, scan_folder, scan_records
from vlmkit.search.store import SearchStore
from vlmkit.search.video import MISSING_PYAV, is_video


@dataclass
class IndexReport:
    """What a run did. ``failed`` lists ``(path, reason)`` of every file that could not be indexed."""

    scanned: int = 0
    unchanged: int = 0
    added: int = 0
    updated: int = 0
    reused: int = 0  # changed mtime, same content: stored rows kept, nothing decoded, OCR'd or embedded
    removed: int = 0
    items: int = 0  # rows written: one per image, one per sampled video frame, one per document page
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        rate = (self.added + self.updated) / self.seconds if self.seconds else 0.0
        return (
            f"{self.scanned} files scanned: {self.added} added, {self.updated} updated ({self.reused} reused), "
            f"{self.removed} removed, {self.unchanged} unchanged, {len(self.failed)} failed; "
            f"{self.items} items written in {self.seconds:.1f} s ({rate:.1f} files/s)"
        )


def _single_thread_worker(_: int) -> None:
    torch.set_num_threads(1)  # workers decode; the main process owns the cores for the model


def _unbatched(item: Decoded) -> Decoded:
    return item


# ------------------------------------------------------------------------------------ mapper, writer


class _Writer:
    """Embeds decoded files in batches and commits each batch to the store."""

    def __init__(
        self,
        store: SearchStore,
        model: nn.Module,
        known: dict[str, FileState],
        report: IndexReport,
        batch_size: int,
        on_commit: Callable[[IndexReport], None] | None,
    ) -> None:
        self.store, self.model, self.known, self.report = store, model, known, report
        self.batch_size = batch_size
        self.on_commit = on_commit
        self.pending: list[Decoded] = []
        self.frames = 0

    def put(self, item: Decoded) -> None:
        if item.unchanged:
            self.store.metadata.touch(item.file.path, item.file.size, item.file.mtime)
            self.report.updated += 1
            self.report.reused += 1
            return
        if item.error is not None:
            self.report.failed.append((item.file.path, item.error))
            if item.file.path in self.known:  # its old content is no longer there to find
                self.store.remove([item.file.path])
                self.report.removed += 1
            return
        self.pending.append(item)
        self.frames += len(item.items)
        if self.frames >= self.batch_size:
            self.flush()

    @torch.inference_mode()
    def _embed(self, items: list[Decoded]) -> list[np.ndarray]:
        if not items:
            return []
        pixels = torch.cat([item.pixels for item in items])  # type: ignore[misc]
        dtype = self.model.logit_scale.dtype
        vectors = torch.cat(
            [
                self.model.encode_image(chunk.to(self.model.device, dtype)).float().cpu()
                for chunk in pixels.split(self.batch_size)
            ]
        ).numpy()
        return list(np.split(vectors, np.cumsum([len(item.items) for item in items])[:-1]))

    def flush(self) -> None:
        for item, vectors in zip(self.pending, self._embed(self.pending), strict=True):
            path = item.file.path
            if path in self.known:
                self.store.remove([path])
                self.report.updated += 1
            else:
                self.report.added += 1
            self.store.add(item.items, vectors)
            self.report.items += len(item.items)
        self.store.commit(save_index=False)  # SQLite is the truth; the faiss file is saved at the end
        self.pending, self.frames = [], 0
        if self.on_commit is not None:
            self.on_commit(self.report)


# ---------------------------------------------------------------------------------------------- run


def default_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def index_files(
    files: Sequence[SourceFile],
    index_dir: str | os.PathLike[str],
    model: str | nn.Module | None = None,
    *,
    model_id: str | None = None,
    scope: str | None = None,
    batch_size: int = 32,
    workers: int | None = None,
    prefetch: int = 4,
    video_every: float = 2.0,
    max_frames: int | None = 600,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ocr: bool = False,
    max_pages: int = DEFAULT_MAX_PAGES,
    engine: str = DEFAULT_ENGINE,
    progress: bool = True,
    on_commit: Callable[[IndexReport], None] | None = None,
    failed: Iterable[tuple[str, str]] = (),
    device: str = "cpu",
) -> IndexReport:
    """Bring the index at ``index_dir`` up to date with ``files`` (see the module docstring).

    ``model`` is a model id (a directory, hub id or ``vlmkit:NAME``; default: the one the index was
    built with, or the offline default for a new index) or a loaded model, which then needs
    ``model_id`` naming it for the manifest. ``scope`` is the folder the scan covered: indexed files
    under it that the scan did not find are removed. ``ocr`` reads the text of images too (documents are
    always read), with the OCR ``engine`` (``ppocr`` or ``tesseract``); ``max_pages`` caps a document's pages.
    ``on_commit`` is called after every committed batch with the report so far.
    """
    started = time.perf_counter()
    options = ReadOptions(video_every, max_frames, max_pixels, ocr, max_pages, engine)
    if ocr and engine == "ppocr" and not _installed("rapidocr_onnxruntime"):
        raise ConfigError(MISSING_OCR)
    if ocr:
        get_engine(engine)  # a missing Tesseract is one clear error here, not one per file
    index_dir = Path(index_dir)
    existing = read_manifest(index_dir)["model_id"] if (index_dir / "manifest.json").exists() else None
    model, model_id = load_search_model(model, model_id, default=existing, device=device)
    processor = getattr(model, "image_processor", None)
    if processor is None:
        raise InputError(f"model {model_id} has no image processor; it cannot embed images")
    if existing is None and not (index_dir / "manifest.json").exists():  # (another run may have made it since)
        store = SearchStore.create(index_dir, model_id, int(model.config.embed_dim))
    else:
        store = SearchStore.open(index_dir, model_id=model_id)
    report = IndexReport(scanned=len(files), failed=list(failed))
    try:
        store.lock_for_writing()  # before reading what is indexed: one writer at a time
        known = store.known_files()
        todo, gone = plan_update(files, known, scope)
        report.unchanged = len(files) - len(todo)
        store.remove(gone)
        report.removed = len(gone)
        store.commit(save_index=False)
        for needs, module, reason in ((is_video, "av", MISSING_PYAV), (is_pdf, "pypdfium2", MISSING_PDFIUM)):
            if not _installed(module) and any(needs(f.path) for f in todo):
                report.failed += [(f.path, reason) for f in todo if needs(f.path)]
                todo = [f for f in todo if not needs(f.path)]
        _run(todo, store, model, processor, known, report, batch_size, workers, prefetch, options, progress, on_commit)
        store.commit()
    finally:
        store.close()
    report.seconds = time.perf_counter() - started
    return report


def _run(
    todo: list[SourceFile],
    store: SearchStore,
    model: nn.Module,
    processor: ImagePreprocessor,
    known: dict[str, FileState],
    report: IndexReport,
    batch_size: int,
    workers: int | None,
    prefetch: int,
    options: ReadOptions,
    progress: bool,
    on_commit: Callable[[IndexReport], None] | None,
) -> None:
    if not todo:
        return
    workers = default_workers() if workers is None else workers
    reader = FileReader(todo, processor, options, {path: state.sha256 for path, state in known.items()})
    loader = DataLoader(
        reader,
        batch_size=None,
        num_workers=workers,
        collate_fn=_unbatched,
        prefetch_factor=prefetch if workers else None,
        worker_init_fn=_single_thread_worker if workers else None,
    )
    writer = _Writer(store, model, known, report, batch_size, on_commit)
    with progress_bar(total=len(todo), desc="indexing", unit="file", disable=not progress, smoothing=0.1) as bar:
        for item in loader:
            writer.put(item)
            bar.update(1)
            if report.failed:
                bar.set_postfix(failed=len(report.failed), refresh=False)
        writer.flush()


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def index_folder(
    folder: str | os.PathLike[str], index_dir: str | os.PathLike[str], model: str | nn.Module | None = None, **options
) -> IndexReport:
    """Index every image, document and video under ``folder`` (incrementally); options as ``index_files``."""
    root = Path(folder).resolve()
    return index_files(scan_folder(root), index_dir, model, scope=root.as_posix(), **options)


def index_dataset(
    records: str | os.PathLike[str],
    index_dir: str | os.PathLike[str],
    model: str | nn.Module | None = None,
    **options,
) -> IndexReport:
    """Index the images a dataset's ``records.jsonl`` names; images no longer named are removed."""
    files, missing = scan_records(records)
    path = Path(records)
    root = (path if path.is_dir() else path.parent).resolve()
    return index_files(files, index_dir, model, scope=root.as_posix(), failed=missing, **options)
