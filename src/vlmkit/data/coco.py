"""COCO annotation files -> canonical records.

COCO keeps images and annotations in two lists joined by ``image_id``; the canonical format wants
one record per image. Both readers therefore build the image records first and then attach each
annotation to its image, reporting annotations whose image or category does not exist instead of
dropping them quietly. Field names follow the COCO spec: ``images[].{id, file_name, width, height}``,
``annotations[].{image_id, caption}`` for captions, ``annotations[].{image_id, category_id, bbox
(x, y, width, height), segmentation, iscrowd}`` and ``categories[].{id, name}`` for instances.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from vlmkit.data.records import ObjectAnnotation, OnError, ProblemLog, ReadResult, Record
from vlmkit.errors import InputError


def _load(path: str | os.PathLike[str], required: tuple[str, ...]) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError as error:
        raise InputError(f"{path}: COCO annotation file not found") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a valid JSON file ({error})") from error
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a COCO JSON object at top level")
    for key in required:
        if not isinstance(data.get(key), list):
            raise InputError(f"{path}: {key}: expected a list (is this a COCO annotation file?)")
    return data


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _image_records(data: dict[str, Any], image_dir: str, log: ProblemLog) -> dict[int, Record]:
    """One record per COCO image, keyed by id, with size and id kept in ``meta`` for evaluation."""
    records: dict[int, Record] = {}
    for index, image in enumerate(data["images"]):
        where = f"images[{index}]"
        if not isinstance(image, dict) or not _is_int(image.get("id")):
            log.add(where, "id", "expected an object with an integer id")
            continue
        if not isinstance(image.get("file_name"), str) or not image["file_name"]:
            log.add(where, "file_name", "expected a non-empty string")
            continue
        if image["id"] in records:
            log.add(where, "id", f"duplicate image id {image['id']}")
            continue
        meta = {"coco_id": image["id"]}
        meta.update({key: image[key] for key in ("width", "height") if key in image})
        path = str(PurePosixPath(image_dir) / image["file_name"]) if image_dir else image["file_name"]
        records[image["id"]] = Record(image=path, meta=meta)
    return records


def _annotations(
    data: dict[str, Any], records: dict[int, Record], log: ProblemLog
) -> Iterator[tuple[str, dict[str, Any], Record]]:
    """Yield (where, annotation, record) for every annotation whose image exists."""
    for index, annotation in enumerate(data["annotations"]):
        where = f"annotations[{index}]"
        if not isinstance(annotation, dict):
            log.add(where, None, "expected an object")
            continue
        image_id = annotation.get("image_id")
        if not _is_int(image_id) or image_id not in records:
            log.add(where, "image_id", f"{image_id!r} is not the id of any entry in images")
            continue
        yield where, annotation, records[image_id]


def read_coco_captions(path: str | os.PathLike[str], *, image_dir: str = "", on_error: OnError = "raise") -> ReadResult:
    """Read ``captions_*.json``: each image's captions, in file order, whitespace-stripped.

    ``image_dir`` is prefixed to ``file_name`` (e.g. ``"val2017"``) so the records can live in the
    COCO root next to the image folders. Images without any caption are kept with ``captions=[]``.
    """
    data = _load(path, ("images", "annotations"))
    log = ProblemLog(path, on_error)
    records = _image_records(data, image_dir, log)
    for record in records.values():
        record.captions = []
    for where, annotation, record in _annotations(data, records, log):
        caption = annotation.get("caption")
        if not isinstance(caption, str) or not caption.strip():
            log.add(where, "caption", "expected a non-empty string")
            continue
        record.captions.append(caption.strip())
    return ReadResult(list(records.values()), log.finish())


def _categories(data: dict[str, Any], log: ProblemLog) -> dict[int, str]:
    names: dict[int, str] = {}
    for index, category in enumerate(data["categories"]):
        if not isinstance(category, dict) or not _is_int(category.get("id")):
            log.add(f"categories[{index}]", "id", "expected an object with an integer id")
        elif not isinstance(category.get("name"), str):
            log.add(f"categories[{index}]", "name", "expected a string")
        else:
            names[category["id"]] = category["name"]
    return names


def _xywh_to_xyxy(bbox: Any) -> list[float] | None:
    if not isinstance(bbox, list) or len(bbox) != 4:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox):
        return None
    x, y, width, height = bbox
    if width < 0 or height < 0:
        return None
    return [x, y, x + width, y + height]


def read_coco_instances(
    path: str | os.PathLike[str], *, image_dir: str = "", on_error: OnError = "raise"
) -> ReadResult:
    """Read ``instances_*.json``: per image, objects labelled with category names.

    Boxes go from COCO's [x, y, width, height] to [x0, y0, x1, y1]; ``segmentation`` (polygons or
    RLE) is kept verbatim as ``mask``; ``iscrowd`` and the annotation id (``coco_id``) are kept as
    extra object keys so COCO-style evaluation can still match them. Images without annotations are
    kept with ``objects=[]`` (they are the negatives of a detection set).
    """
    data = _load(path, ("images", "annotations", "categories"))
    log = ProblemLog(path, on_error)
    records = _image_records(data, image_dir, log)
    categories = _categories(data, log)
    for record in records.values():
        record.objects = []
    for where, annotation, record in _annotations(data, records, log):
        category_id = annotation.get("category_id")
        label = categories.get(category_id) if _is_int(category_id) else None
        if label is None:
            log.add(where, "category_id", f"{category_id!r} is not the id of any entry in categories")
            continue
        box = _xywh_to_xyxy(annotation.get("bbox"))
        if box is None:
            log.add(
                where, "bbox", f"expected [x, y, width, height] with width, height >= 0, got {annotation.get('bbox')!r}"
            )
            continue
        extra = {"coco_id": annotation["id"]} if "id" in annotation else {}
        if "iscrowd" in annotation:
            extra["iscrowd"] = annotation["iscrowd"]
        mask = annotation.get("segmentation") or None
        if mask is not None and not isinstance(mask, (list, dict)):
            log.add(where, "segmentation", "expected polygons (list) or RLE (object)")
            continue
        record.objects.append(ObjectAnnotation(label=label, box=box, mask=mask, extra=extra))
    return ReadResult(list(records.values()), log.finish())
