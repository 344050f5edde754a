"""Grounding metrics (AP against pycocotools with labels as text and score-less detections, referring
accuracy, mIoU / cIoU by hand) and the grounding protocol on a ShapesWorld split with scripted answers."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

import vlmkit.tasks.ground as ground
from grounding_kit import GridCodec, grounding_vlm, script
from vlmkit.data.records import RecordDataset
from vlmkit.data.shapesworld.masks import rle_decode
from vlmkit.errors import InputError
from vlmkit.evaluation.detection import detection_ap, grounding_tasks, mask_scores, referring_accuracy
from vlmkit.processing.locations import format_object, format_objects
from vlmkit.processing.masks import mask_crop
from vlmkit.tasks.ground import GroundedObject
from vlmkit.tasks.segment import MaskCodec

LABELS = ("red star", "blue circle", "green cross")


def _fixture(seed: int):
    """Images with labelled boxes, and detections that jitter, miss, duplicate and invent some."""
    rng = np.random.default_rng(seed)
    truth, predictions = [], []
    for _ in range(12):
        image, found = [], []
        for _ in range(rng.integers(1, 5)):
            x0, y0 = rng.uniform(0, 50, size=2)
            box = [x0, y0, x0 + rng.uniform(4, 14), y0 + rng.uniform(4, 14)]
            label = str(rng.choice(LABELS))
            image.append((label, box))
            if rng.random() < 0.8:
                jitter = np.asarray(box) + rng.normal(0, 1.5, size=4)
                jitter[2:] = np.maximum(jitter[2:], jitter[:2] + 0.5)
                found.append(GroundedObject(label if rng.random() < 0.85 else str(rng.choice(LABELS)), tuple(jitter)))
        if rng.random() < 0.5:
            found.append(GroundedObject(str(rng.choice(LABELS)), (1.0, 1.0, 9.0, 9.0)))
        truth.append(image)
        predictions.append(found)
    return truth, predictions


def _pycocotools(truth, predictions, scores) -> np.ndarray:
    coco_module = pytest.importorskip("pycocotools.coco")
    cocoeval_module = pytest.importorskip("pycocotools.cocoeval")
    ids = {name: i + 1 for i, name in enumerate(LABELS)}
    annotations, results = [], []
    for image_id, (image, found) in enumerate(zip(truth, predictions, strict=True), start=1):
        for label, (x0, y0, x1, y1) in image:
            annotations.append(
                {"id": len(annotations) + 1, "image_id": image_id, "category_id": ids[label],
                 "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0}
            )  # fmt: skip
        for item in found:
            x0, y0, x1, y1 = item.box
            results.append(
                {"image_id": image_id, "category_id": ids[item.label], "bbox": [x0, y0, x1 - x0, y1 - y0],
                 "score": scores(item)}
            )  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        coco = coco_module.COCO()
        coco.dataset = {
            "images": [{"id": i} for i in range(1, len(truth) + 1)],
            "annotations": annotations,
            "categories": [{"id": i} for i in ids.values()],
        }
        coco.createIndex()
        evaluator = cocoeval_module.COCOeval(coco, coco.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


@pytest.mark.parametrize("seed", [0, 1])
def test_detection_ap_agrees_with_pycocotools(seed):
    truth, predictions = _fixture(seed)
    # without scores (what greedy decoding gives): every detection counts as 1.0
    stats = _pycocotools(truth, predictions, lambda item: 1.0)
    result = detection_ap(truth, predictions)
    assert (result.ap, result.ap50, result.ap75) == pytest.approx(tuple(stats[:3]), abs=1e-3)
    assert 0.1 < result.ap50 < 1.0
    assert set(result.per_category) == set(LABELS)
    # with scores
    rng = np.random.default_rng(seed)
    scored = [[GroundedObject(o.label, o.box, score=float(rng.random())) for o in image] for image in predictions]
    stats = _pycocotools(truth, scored, lambda item: item.score)
    result = detection_ap(truth, scored)
    assert (result.ap, result.ap50, result.ap75) == pytest.approx(tuple(stats[:3]), abs=1e-3)


def test_referring_accuracy_counts_iou_at_least_a_half():
    truth = [(0, 0, 10, 10), (0, 0, 10, 10), (0, 0, 10, 10), (0, 0, 10, 10)]
    predicted = [(0, 0, 10, 10), (0, 0, 10, 5), (0, 0, 10, 4.9), None]  # IoU 1, 0.5, 0.49, none
    assert referring_accuracy(predicted, truth) == 0.5
    with pytest.raises(InputError, match="one box or None"):
        referring_accuracy(predicted[:2], truth)


def test_miou_and_ciou_by_hand():
    big = np.zeros((10, 10), dtype=bool)
    big[:, :8] = True  # 80 px
    small = np.zeros((10, 10), dtype=bool)
    small[:2, :2] = True  # 4 px
    half_big = big.copy()
    half_big[:, 4:] = False  # 40 px inside big
    scores = mask_scores([half_big, None], [big, small])
    assert scores.miou == pytest.approx((0.5 + 0.0) / 2)
    assert scores.ciou == pytest.approx(40 / (80 + 4))
    with pytest.raises(InputError, match="shape"):
        mask_scores([np.zeros((3, 3), bool)], [big])


def test_grounding_protocol_on_shapesworld_with_a_perfect_and_a_silent_model(shapes_dataset, monkeypatch):
    dataset = RecordDataset(shapes_dataset / "val")
    records = dataset.records[:6]
    by_image = {str(dataset.image_path(r)): r for r in records}
    codec = GridCodec()
    model = grounding_vlm()
    current: list[str] = []
    original = ground.load_image

    def remember(image):  # ground_many loads each image before asking: note which one is asked
        current.append(str(image))
        return original(image)

    monkeypatch.setattr(ground, "load_image", remember)

    def perfect(prompt: str) -> str:
        record = by_image[current.pop(0)]
        size = record.objects[0].mask["size"]
        objects = record.objects
        if "detect every" not in prompt and "detect" in prompt and " ; " not in prompt.split("detect", 1)[1]:
            asked = prompt.split("detect", 1)[1].split("\n")[0].strip()
            objects = [o for o in objects if asked in o.extra["refexp"]] or objects
        if "segment" in prompt:
            asked = prompt.split("segment", 1)[1].split("\n")[0].strip()
            (target,) = [o for o in objects if asked in o.extra["refexp"]]
            codes = codec.encode(torch.from_numpy(mask_crop(rle_decode(target.mask), target.box))[None])[0].tolist()
            return format_object(target.label, target.box, size[1], size[0], codes)
        return format_objects([format_object(o.label, o.box, size[1], size[0]) for o in objects])

    script(monkeypatch, ground, perfect)
    tasks = grounding_tasks(model, dataset, records, batch_size=4, mask_tokenizer=codec)
    assert set(tasks) == {"detection_all", "detection_labelled", "referring", "segmentation"}
    results = {name: run() for name, run in tasks.items()}
    assert results["detection_all"]["ap50"] == pytest.approx(1.0)
    assert results["detection_labelled"]["ap"] > 0.9  # a box's bins round back to its pixels
    assert results["referring"]["accuracy"] == 1.0
    assert results["referring"]["expressions"] == sum(len(r.objects) for r in records)
    assert results["segmentation"]["miou"] > 0.5  # the 4x4 stand-in codec is coarse, but in the right place
    assert results["detection_all"]["unparsed_rate"] == 0.0

    script(monkeypatch, ground, lambda prompt: (current.pop(0), "garbage <loc0001>")[1])
    silent = {name: run() for name, run in grounding_tasks(model, dataset, records, 4, codec).items()}
    assert silent["detection_all"]["ap"] == 0.0 and silent["detection_all"]["unparsed_rate"] == 1.0
    assert silent["referring"]["accuracy"] == 0.0
    assert silent["segmentation"]["miou"] == 0.0


def test_the_stand_in_codec_has_the_mask_tokenizer_interface():
    codec: MaskCodec = GridCodec()
    masks = np.zeros((2, 64, 64), dtype=np.float32)
    masks[0, :32] = 1
    codes = codec.encode(torch.from_numpy(masks))
    assert codes.shape == (2, 16) and codes.dtype == torch.long and int(codes.max()) <= 127
    assert (codec.decode(codes).numpy() == masks).all()


def test_eval_adds_grounding_for_models_with_location_tokens(shapes_dataset):
    from tiny_vlm import tiny_vlm
    from vlmkit.evaluation.generative import generative_tasks

    dataset = RecordDataset(shapes_dataset / "val")
    grounding = {"detection_all", "detection_labelled", "referring"}
    assert grounding <= set(generative_tasks(grounding_vlm(), dataset, dataset.records[:2], 2))
    assert not grounding & set(generative_tasks(tiny_vlm(), dataset, dataset.records[:2], 2))
