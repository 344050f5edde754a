"""RefCOCO, RefCOCO+ and RefCOCOg (the ``refer`` release) -> canonical records with referring expressions.

The release ships, per dataset, a COCO ``instances.json`` and a list of *refs*: each names one COCO
annotation (``ann_id``) of one image (``image_id``), its ``split`` (``train``, ``val``, ``testA``, ...) and
its ``sentences`` (``[{"sent": ..., "raw": ..., "sent_id": ..., "tokens": [...]}]``); its ``file_name`` is
a per-ref name and is ignored, as the release's own README says. The refs come as a Python pickle
(``refs(unc).p``), which vlmkit never unpickles; convert the file once, yourself, to JSON::

    python -c "import json, pickle; json.dump(pickle.load(open('refs(unc).p', 'rb')), open('refs.json', 'w'))"

The reader keeps one record per image with a ref in the chosen split: the image's COCO objects (boxes and
masks, as ``data.coco`` reads them), each referred object carrying its ``expression`` list and ``ref_id``
(``data.grounding`` turns those into referring-expression turns, ``evaluation.detection`` scores them).
"""

from __future__ import annotations

import json
import os
from typing import Any

from vlmkit.data.coco import read_coco_instances
from vlmkit.data.records import OnError, ProblemLog, ReadResult
from vlmkit.errors import InputError


def _load_refs(path: str | os.PathLike[str]) -> list[Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            refs = json.load(handle)
    except FileNotFoundError as error:
        raise InputError(f"{path}: refs file not found") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        hint = " (a refs(*).p pickle? convert it to JSON first; see vlmkit.data.refcoco)"
        raise InputError(f"{path}: not a valid JSON file{hint} ({error})") from error
    if not isinstance(refs, list):
        raise InputError(f"{path}: expected a JSON list of refs at top level")
    return refs


def _sentences(ref: dict[str, Any]) -> list[str] | None:
    sentences = ref.get("sentences")
    if not isinstance(sentences, list):
        return None
    texts = [s.get("sent") or s.get("raw") for s in sentences if isinstance(s, dict)]
    found = [text.strip() for text in texts if isinstance(text, str) and text.strip()]
    return found or None


def read_refcoco(
    refs_path: str | os.PathLike[str],
    instances_path: str | os.PathLike[str],
    *,
    split: str | None = None,
    image_dir: str = "",
    on_error: OnError = "raise",
) -> ReadResult:
    """Records of the images with a ref in ``split`` (every split when None), their objects from
    ``instances_path`` and each referred object's expressions; ``image_dir`` is prefixed to COCO's
    ``file_name``. A ref whose image or annotation is not in the instances file is a problem, reported."""
    refs = _load_refs(refs_path)
    coco = read_coco_instances(instances_path, image_dir=image_dir, on_error=on_error)
    log = ProblemLog(refs_path, on_error)
    by_image = {record.meta["coco_id"]: record for record in coco.records}
    objects = {
        (record.meta["coco_id"], item.extra["coco_id"]): item
        for record in coco.records
        for item in record.objects or []
        if "coco_id" in item.extra
    }
    kept: dict[int, None] = {}
    for index, ref in enumerate(refs):
        where = f"refs[{index}]"
        if not isinstance(ref, dict):
            log.add(where, None, "expected an object")
            continue
        if split is not None and ref.get("split") != split:
            continue
        image_id, ann_id = ref.get("image_id"), ref.get("ann_id")
        if image_id not in by_image:
            log.add(where, "image_id", f"{image_id!r} is not an image of {instances_path}")
            continue
        item = objects.get((image_id, ann_id))
        if item is None:
            log.add(where, "ann_id", f"{ann_id!r} is not an annotation of image {image_id} in {instances_path}")
            continue
        sentences = _sentences(ref)
        if sentences is None:
            log.add(where, "sentences", "expected a list of {sent: text} with at least one non-empty text")
            continue
        item.extra["expression"] = [*item.extra.get("expression", []), *sentences]
        item.extra.setdefault("ref_id", ref.get("ref_id"))
        kept[image_id] = None
    records = [by_image[image_id] for image_id in kept]
    if split is not None and not records and not log.problems:
        raise InputError(f"{refs_path}: no ref has split {split!r}")
    return ReadResult(records, [*coco.problems, *log.finish()])
