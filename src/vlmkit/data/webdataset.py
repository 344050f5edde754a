"""WebDataset tar shards, read and written with the standard library's ``tarfile``.

A shard is a plain tar whose members are grouped into samples by key: ``000042.jpg``,
``000042.json`` and ``000042.txt`` form one sample (key = member path up to the first dot of its
file name; a sample's members are contiguous). Big datasets live in this form because reading a few
large files sequentially is far faster than opening millions of small ones, so shards are read as a
stream, one member at a time, never extracted.

vlmkit writes each sample as the image plus ``json`` holding the full canonical record (so a round
trip keeps everything, including the original relative image path) and, for tools that read only
``txt``, the first caption. Foreign shards (image + ``txt`` and/or ``json``) read too: a ``json``
without ``image`` gets the member name, a ``txt`` fills ``captions`` when the ``json`` has none.
"""

from __future__ import annotations

import glob
import io
import json
import os
import re
import tarfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import Any

from vlmkit.data.records import IMAGE_EXTENSIONS, OnError, ProblemLog, Record, RecordError
from vlmkit.errors import InputError
from vlmkit.files import atomic_open
from vlmkit.progress import progress as progress_bar

_IMAGE_EXTS = tuple(ext.lstrip(".") for ext in sorted(IMAGE_EXTENSIONS))
_END_OF_ARCHIVE = 2 * tarfile.BLOCKSIZE


@dataclass(frozen=True)
class WebDatasetSample:
    """One sample of a shard: its key, the canonical record and the undecoded image bytes."""

    key: str
    record: Record
    image_bytes: bytes
    shard: str


ShardSpec = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


_BRACES = re.compile(r"\{([^{}]*)\}")


def expand_braces(pattern: str) -> list[str]:
    """WebDataset's shard notation: ``train-{000000..000009}.tar`` (a zero-padded range) or ``{a,b}``."""
    match = _BRACES.search(pattern)
    if match is None:
        return [pattern]
    head, body, tail = pattern[: match.start()], match.group(1), pattern[match.end() :]
    if ".." in body:
        first, _, last = body.partition("..")
        if not (first.isdigit() and last.isdigit()) or int(first) > int(last):
            raise InputError(f"{pattern}: expected a range such as {{000000..000009}}, got {{{body}}}")
        width = len(first) if first.startswith("0") else 0
        options = [str(n).zfill(width) for n in range(int(first), int(last) + 1)]
    else:
        options = body.split(",")
    return [name for option in options for name in expand_braces(head + option + tail)]


def expand_shards(spec: ShardSpec) -> list[Path]:
    """Shard paths from a folder (its ``*.tar*``), a glob or brace pattern, one path, or a list of these."""
    if not isinstance(spec, (str, os.PathLike)):
        paths = [path for item in spec for path in expand_shards(item)]
        if not paths:
            raise InputError("no shards given (empty list)")
        return paths
    text = os.fspath(spec)
    if _BRACES.search(text):
        return expand_shards(expand_braces(text))
    if Path(text).is_dir():
        paths = sorted(Path(text).glob("*.tar*"))
    elif glob.has_magic(text):
        paths = sorted(Path(p) for p in glob.glob(text))
    else:
        paths = [Path(text)]
    if not paths:
        raise InputError(f"{text}: no shards match")
    for path in paths:
        if not path.is_file():
            raise InputError(f"{path}: shard not found")
    return paths


def _split_name(name: str) -> tuple[str, str]:
    """``a/b/0001.seg.png`` -> (``a/b/0001``, ``seg.png``): the WebDataset key/extension rule."""
    path = PurePosixPath(name)
    stem, _, ext = path.name.partition(".")
    return str(path.with_name(stem)) if str(path.parent) != "." else stem, ext.lower()


def _sample(key: str, parts: dict[str, bytes], shard: str, log: ProblemLog) -> WebDatasetSample | None:
    image_ext = next((ext for ext in _IMAGE_EXTS if ext in parts), None)
    if image_ext is None:
        log.add(key, None, f"no image member (found: {', '.join(sorted(parts)) or 'nothing'})")
        return None
    data: dict[str, Any] = {}
    if "json" in parts:
        try:
            parsed = json.loads(parts["json"].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            log.add(key, "json", f"invalid JSON ({error})")
            return None
        if not isinstance(parsed, dict):
            log.add(key, "json", f"expected an object, got {type(parsed).__name__}")
            return None
        data = parsed
    data.setdefault("image", f"{key}.{image_ext}")
    if "txt" in parts and "captions" not in data:
        try:
            caption = parts["txt"].decode("utf-8").strip()
        except UnicodeDecodeError as error:
            log.add(key, "txt", f"not UTF-8 text ({error.reason})")
            return None
        data["captions"] = [caption] if caption else []
    try:
        record = Record.from_dict(data)
    except RecordError as error:
        log.add(key, error.field, error.reason)
        return None
    return WebDatasetSample(key=key, record=record, image_bytes=parts[image_ext], shard=shard)


def _read_shard(path: Path, log: ProblemLog) -> Iterator[WebDatasetSample]:
    key: str | None = None
    parts: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                member_key, ext = _split_name(member.name)
                if member_key != key:
                    if key is not None and (sample := _sample(key, parts, str(path), log)):
                        yield sample
                    key, parts = member_key, {}
                handle = tar.extractfile(member)
                parts[ext] = handle.read() if handle else b""
            end = tar.offset
        # tarfile stops quietly when a plain tar is cut at a header; the missing end-of-archive
        # blocks give that truncation away.
        if path.suffix == ".tar" and path.stat().st_size < end + _END_OF_ARCHIVE:
            raise tarfile.ReadError("end-of-archive marker missing")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        log.add(key or "start", None, f"truncated or corrupt tar ({error}); rest of shard skipped")
        return
    if key is not None and (sample := _sample(key, parts, str(path), log)):
        yield sample


def iter_webdataset(shards: ShardSpec, *, on_error: OnError = "raise") -> Iterator[WebDatasetSample]:
    """Stream the samples of ``shards`` in order, one shard open at a time.

    With ``on_error="skip"`` a bad sample is dropped and a damaged shard is read up to the damage;
    each shard's problems are logged as a warning when it ends. (A sample seen just before the
    damage is held back, since its members may be incomplete.)
    """
    for path in expand_shards(shards):
        log = ProblemLog(path, on_error)
        yield from _read_shard(path, log)
        log.finish()


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """Fixed metadata (mtime 0, no owner) so the same records always give byte-identical shards."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _image_ext(record: Record) -> str:
    ext = PurePosixPath(record.image).suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise InputError(f"{record.image}: cannot store in a shard, expected one of {sorted(IMAGE_EXTENSIONS)}")
    return ext.lstrip(".")


def write_webdataset(
    records: Iterable[Record],
    dataset_dir: str | os.PathLike[str],
    out_pattern: str,
    max_per_shard: int = 10_000,
    *,
    progress: bool = False,
) -> list[Path]:
    """Pack ``records`` and their images (relative to ``dataset_dir``) into shards; returns their paths.

    ``out_pattern`` takes the shard number with %-formatting, e.g. ``"shards/train-%06d.tar"``.
    Sample keys are the global record index (``000000042``), unique across shards. Each shard is
    written to a temporary file and renamed when complete, so an interrupted run leaves only whole
    shards behind.
    """
    if max_per_shard < 1:
        raise InputError(f"max_per_shard: expected a positive integer, got {max_per_shard}")
    try:
        if out_pattern % 0 == out_pattern % 1:
            raise TypeError
    except TypeError as error:
        raise InputError(f"{out_pattern}: expected a %-pattern for the shard number, e.g. data-%06d.tar") from error
    root = Path(dataset_dir)
    stream = iter(progress_bar(records, desc="writing shards", unit="record", disable=not progress))
    written: list[Path] = []
    index = 0
    while chunk := list(islice(stream, max_per_shard)):
        path = Path(out_pattern % len(written))
        with atomic_open(path, "wb") as handle, tarfile.open(fileobj=handle, mode="w") as tar:
            for record in chunk:
                key = f"{index:09d}"
                image = root / record.image
                try:
                    image_bytes = image.read_bytes()
                except FileNotFoundError as error:
                    raise InputError(f"{image}: image named by record {index} not found") from error
                _add_member(tar, f"{key}.{_image_ext(record)}", image_bytes)
                _add_member(tar, f"{key}.json", json.dumps(record.to_dict(), ensure_ascii=False).encode())
                if record.captions:
                    _add_member(tar, f"{key}.txt", record.captions[0].encode())
                index += 1
        written.append(path)
    return written
