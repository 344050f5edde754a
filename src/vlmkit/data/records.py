"""The canonical dataset record and the ``records.jsonl`` file that holds one per line.

Every reader in ``vlmkit.data`` (COCO, caption folders, WebDataset) converts to this one shape, so
training, evaluation and search read a single format. Validation happens once, here, with messages
that name ``file:line: field``: a bad record found mid-training wastes hours, one found at load time
wastes seconds. Keys this schema does not know are carried through untouched, so a dataset written
by a newer tool survives a round trip through an older one.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any, Literal, NamedTuple, TypeVar

from vlmkit.errors import InputError
from vlmkit.files import atomic_open

logger = logging.getLogger(__name__)

RECORDS_FILE = "records.jsonl"
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})

OnError = Literal["raise", "skip"]
T = TypeVar("T")


class RecordError(InputError):
    """A record breaks the schema; ``field`` is the path to the culprit, e.g. ``objects[2].box``."""

    def __init__(self, field: str | None, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)


# ---- field checks: each returns the value or raises RecordError naming the field ----


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise RecordError(name, f"expected a string, got {type(value).__name__}")
    return value


def _text_list(value: Any, name: str) -> list[str]:
    if not isinstance(value, list):
        raise RecordError(name, f"expected a list of strings, got {type(value).__name__}")
    return [_text(item, f"{name}[{i}]") for i, item in enumerate(value)]


def _json_object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RecordError(name, f"expected an object, got {type(value).__name__}")
    return dict(value)


def _text_dict(value: Any, name: str) -> dict[str, str]:
    return {key: _text(item, f"{name}.{key}") for key, item in _json_object(value, name).items()}


def _image_path(value: Any, name: str) -> str:
    path = _text(value, name)
    if not path:
        raise RecordError(name, "expected a relative image path, got an empty string")
    if path.startswith(("/", "\\")) or (":" in path and PureWindowsPath(path).drive):
        raise RecordError(name, f"expected a path relative to the dataset folder, got {path!r}")
    if ".." in path.replace("\\", "/").split("/"):
        raise RecordError(name, f"image path must stay inside the dataset folder, got {path!r}")
    return path


def _box(value: Any, name: str) -> list[float]:
    if not isinstance(value, list) or len(value) != 4:
        raise RecordError(name, f"expected [x0, y0, x1, y1] in pixels, got {value!r}")
    for coord in value:
        if isinstance(coord, bool) or not isinstance(coord, (int, float)) or not math.isfinite(coord):
            raise RecordError(name, f"expected 4 finite numbers, got {value!r}")
    x0, y0, x1, y1 = value
    if x1 < x0 or y1 < y0:
        raise RecordError(name, f"expected x0 <= x1 and y0 <= y1, got {value!r}")
    return list(value)


def _mask(value: Any, name: str) -> Any:
    """Masks are COCO polygons (a list) or RLE (an object); their contents are the reader's business."""
    if not isinstance(value, (list, dict)):
        raise RecordError(name, f"expected polygons (list) or RLE (object), got {type(value).__name__}")
    return value


def _take(
    data: Mapping[str, Any], prefix: str, key: str, check: Callable[[Any, str], T], required: bool = False
) -> T | None:
    if key not in data:
        if required:
            raise RecordError(prefix + key, "missing required key")
        return None
    return check(data[key], prefix + key)


def _extra(data: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in known}


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}


def _object_list(value: Any, name: str, parse: Callable[[Any, str], T]) -> list[T]:
    if not isinstance(value, list):
        raise RecordError(name, f"expected a list of objects, got {type(value).__name__}")
    return [parse(item, f"{name}[{i}]") for i, item in enumerate(value)]


# ---- the record ----


@dataclass
class QA:
    """One question about an image. ``choices`` makes it multiple choice; ``type`` groups results."""

    question: str
    answer: str
    choices: list[str] | None = None
    type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    _KEYS = frozenset({"question", "answer", "choices", "type"})

    @classmethod
    def from_dict(cls, data: Any, name: str = "qa") -> QA:
        data = _json_object(data, name)
        prefix = f"{name}."
        return cls(
            question=_take(data, prefix, "question", _text, required=True),
            answer=_take(data, prefix, "answer", _text, required=True),
            choices=_take(data, prefix, "choices", _text_list),
            type=_take(data, prefix, "type", _text),
            extra=_extra(data, cls._KEYS),
        )

    def to_dict(self) -> dict[str, Any]:
        known = {"question": self.question, "answer": self.answer, "choices": self.choices, "type": self.type}
        return {**_drop_none(known), **self.extra}


@dataclass
class ObjectAnnotation:
    """A labelled region: ``box`` is [x0, y0, x1, y1] in pixels of the stored image."""

    label: str
    box: list[float]
    mask: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    _KEYS = frozenset({"label", "box", "mask"})

    @classmethod
    def from_dict(cls, data: Any, name: str = "objects") -> ObjectAnnotation:
        data = _json_object(data, name)
        prefix = f"{name}."
        return cls(
            label=_take(data, prefix, "label", _text, required=True),
            box=_take(data, prefix, "box", _box, required=True),
            mask=_take(data, prefix, "mask", _mask),
            extra=_extra(data, cls._KEYS),
        )

    def to_dict(self) -> dict[str, Any]:
        return {**_drop_none({"label": self.label, "box": list(self.box), "mask": self.mask}), **self.extra}


@dataclass
class Record:
    """One image and everything known about it.

    Optional fields are ``None`` when the key is absent, so "no captions key" and "an empty caption
    list" stay distinct through ``from_dict``/``to_dict`` and a round trip is exact.
    """

    image: str
    captions: list[str] | None = None
    qa: list[QA] | None = None
    objects: list[ObjectAnnotation] | None = None
    labels: dict[str, str] | None = None
    meta: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    _KEYS = frozenset({"image", "captions", "qa", "objects", "labels", "meta"})

    @classmethod
    def from_dict(cls, data: Any) -> Record:
        """Validate and build; raises ``RecordError`` naming the first bad field."""
        if not isinstance(data, dict):
            raise RecordError(None, f"expected a JSON object per record, got {type(data).__name__}")
        return cls(
            image=_take(data, "", "image", _image_path, required=True),
            captions=_take(data, "", "captions", _text_list),
            qa=_take(data, "", "qa", lambda v, n: _object_list(v, n, QA.from_dict)),
            objects=_take(data, "", "objects", lambda v, n: _object_list(v, n, ObjectAnnotation.from_dict)),
            labels=_take(data, "", "labels", _text_dict),
            meta=_take(data, "", "meta", _json_object),
            extra=_extra(data, cls._KEYS),
        )

    def to_dict(self) -> dict[str, Any]:
        known = {
            "image": self.image,
            "captions": None if self.captions is None else list(self.captions),
            "qa": None if self.qa is None else [qa.to_dict() for qa in self.qa],
            "objects": None if self.objects is None else [obj.to_dict() for obj in self.objects],
            "labels": None if self.labels is None else dict(self.labels),
            "meta": None if self.meta is None else dict(self.meta),
        }
        return {**_drop_none(known), **self.extra}


# ---- problems: raise at the first, or skip and count, never silently ----


@dataclass(frozen=True)
class RecordProblem:
    """Where a bad record is: ``source`` file, ``location`` in it (a line number, ``annotations[3]``,
    a tar member key), the ``field`` at fault when known, and why."""

    source: str
    location: str
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.location}"
        return f"{where}: {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"


class ProblemLog:
    """The one policy for bad input shared by every reader.

    ``on_error="raise"`` stops at the first problem with an ``InputError`` naming it. ``"skip"``
    keeps going, collects each problem in ``problems`` and logs a warning with the count when the
    reader calls ``finish`` — large scraped datasets always hold a few bad items, and dropping them
    must be visible, not silent.
    """

    def __init__(self, source: str | os.PathLike[str], on_error: OnError) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.source = str(source)
        self.on_error = on_error
        self.problems: list[RecordProblem] = []

    def add(self, location: str | int, field: str | None, reason: str) -> None:
        problem = RecordProblem(self.source, str(location), field, reason)
        if self.on_error == "raise":
            raise InputError(str(problem))
        self.problems.append(problem)

    def finish(self) -> list[RecordProblem]:
        if self.problems:
            logger.warning("%s: skipped %d bad item(s); first: %s", self.source, len(self.problems), self.problems[0])
        return self.problems


class ReadResult(NamedTuple):
    """What a reader returns: the good records and, with ``on_error="skip"``, what it dropped."""

    records: list[Record]
    problems: list[RecordProblem]


# ---- reading and writing records.jsonl ----


def _records_file(source: str | os.PathLike[str]) -> Path:
    path = Path(source)
    if path.is_dir():
        path = path / RECORDS_FILE
    if not path.is_file():
        raise InputError(f"{path}: records file not found (expected a dataset folder or a .jsonl file)")
    return path


def read_records(
    source: str | os.PathLike[str], *, on_error: OnError = "raise", check_images: bool = False
) -> ReadResult:
    """Read and validate a dataset folder (its ``records.jsonl``) or a JSONL file.

    Image paths are relative to the folder holding the JSONL file; ``check_images=True`` also
    checks each named image exists (one ``stat`` per record, so off by default for huge sets).
    """
    path = _records_file(source)
    root = path.parent
    log = ProblemLog(path, on_error)
    records: list[Record] = []
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                log.add(line_number, None, f"not UTF-8 text ({error.reason} at byte {error.start})")
                continue
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as error:
                log.add(line_number, None, f"invalid JSON ({error.msg} at column {error.colno})")
                continue
            try:
                record = Record.from_dict(data)
            except RecordError as error:
                log.add(line_number, error.field, error.reason)
                continue
            if check_images and not (root / record.image).is_file():
                log.add(line_number, "image", f"file not found: {root / record.image}")
                continue
            records.append(record)
    return ReadResult(records, log.finish())


def write_records(
    dataset_dir: str | os.PathLike[str],
    records: Iterable[Record | Mapping[str, Any]],
    *,
    filename: str = RECORDS_FILE,
) -> Path:
    """Write ``records`` as JSONL into ``dataset_dir``, atomically; dicts are validated first.

    The images are not copied: records name them relative to ``dataset_dir``, so convert into the
    folder that already holds them (e.g. the COCO root).
    """
    path = Path(dataset_dir) / filename
    with atomic_open(path, "w") as handle:
        for index, item in enumerate(records):
            try:
                record = item if isinstance(item, Record) else Record.from_dict(dict(item))
            except RecordError as error:
                raise InputError(f"records[{index}]: {error}") from error
            handle.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
    return path


class RecordDataset:
    """A dataset folder opened for reading: its records, in order, and where their images live."""

    def __init__(
        self, source: str | os.PathLike[str], *, on_error: OnError = "raise", check_images: bool = False
    ) -> None:
        self.records_file = _records_file(source)
        self.root = self.records_file.parent
        self.records, self.problems = read_records(self.records_file, on_error=on_error, check_images=check_images)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Record:
        return self.records[index]

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def image_path(self, record: Record | int) -> Path:
        if isinstance(record, int):
            record = self.records[record]
        return self.root / record.image

    def __repr__(self) -> str:
        return f"RecordDataset({str(self.root)!r}, {len(self)} records)"
