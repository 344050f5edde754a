"""Does the VLM's decoder read what its frozen image encoder knows? A diagnostic for ShapesWorld VQA.

The ImageNet-CNN pipeline answers colour questions at chance although the CNN's tokens carry colour. This
script measures the gap under the easiest signal there is:

- **probe**: a linear classifier on the mean of an image's frozen tokens, trained on single-object training
  images to name the object's colour and shape. It is what the tokens make readable in a few hundred steps.
- **VLM**: the model fine-tuned on one question per conversation (``--only TYPE`` keeps one question type,
  ``--single-object`` keeps single-object images), the decoder as it comes from ``--model`` or freshly
  initialised (``--fresh-decoder``, projector too). It prints teacher-forced exact-match answer accuracy on
  validation images, per question type, split into single-object (``color@1``) and multi-object images.
- **text scene** (``--text-scene``): the same training, but the decoder alone reads the scene as text: the
  record's canonical caption, which names every object by size, colour and shape in order, is written before
  the question in place of the image. It measures what the decoder learns to look up in its context in the
  same number of steps when perception is perfect.
- **curriculum** (``--curriculum-steps N``): the training images grow in scene size over N steps (one object
  first; ``training.curriculum``, as ``--curriculum objects`` in the recipes). The scene text and the scoring
  are the library's (``data.recall``, ``training.answer_match``).
- ``--out DIR`` writes each evaluation as a line of ``DIR/metrics.jsonl`` and the curves as ``DIR/metrics.png``.

The frozen tokens come from ``training.vision_cache``, so a model from the pipeline reuses its cached tokens.

    .venv/bin/python benchmarks/vlm_readout.py --model align/model --data sw10k --only color --single-object
    .venv/bin/python benchmarks/vlm_readout.py --model align/model --data sw10k --only color --single-object \\
        --fresh-decoder
    .venv/bin/python benchmarks/vlm_readout.py --model align/model --data sw10k --only color --fresh-decoder \
        --text-scene
    .venv/bin/python benchmarks/vlm_readout.py --model align/model --data sw10k --only color --text-scene \
        --decoder-from vlmkit:minilm
    .venv/bin/python benchmarks/vlm_readout.py --model align/model --data sw10k --only color \
        --decoder-from vlmkit:minilm --lr 3e-4 --projector-lr 1e-3 --curriculum-steps 150 --out readout
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import random
import time
from pathlib import Path

import torch
from torch import nn

from linear_probe import linear_probe_accuracy
from vlmkit.checkpoints import from_pretrained
from vlmkit.data.recall import Messages, question_messages, scene_text
from vlmkit.data.records import QA, Record, RecordDataset
from vlmkit.data.sources import decode_all
from vlmkit.models import VisionLanguageModel
from vlmkit.processing.chat import IMAGE_TOKEN, ChatEncoder, pad_right
from vlmkit.tasks.chat import chat_encoder
from vlmkit.training.answer_match import exact_answers
from vlmkit.training.curriculum import ObjectCurriculum
from vlmkit.training.metrics import plot_metrics
from vlmkit.training.optim import warmup_cosine_schedule
from vlmkit.training.vision_cache import frozen_vision_tokens


def split_tokens(
    model: VisionLanguageModel, folder: str, limit: int | None, text_scene: bool
) -> tuple[list[Record], torch.Tensor | None]:
    """A split's records with questions, and their frozen vision tokens (none for a text scene)."""
    dataset = RecordDataset(folder)
    records = [r for r in dataset.records if r.qa][:limit]
    if text_scene:
        return records, None
    paths = [str(dataset.image_path(r)) for r in records]
    pixels = decode_all(model.image_processor, zip(paths, paths, strict=True), len(paths))  # type: ignore[arg-type]
    return records, frozen_vision_tokens(model, pixels)


def single_object(records: list[Record]) -> list[int]:
    return [i for i, r in enumerate(records) if len(r.objects or []) == 1]


def object_attribute(record: Record, attribute: str) -> str:
    """A ShapesWorld object's ``color`` or ``shape``, kept among its extra annotation fields."""
    return str(record.objects[0].extra[attribute])  # type: ignore[index]


def probe(train: tuple[list[Record], torch.Tensor], val: tuple[list[Record], torch.Tensor], steps: int) -> None:
    """Linear read-out of the single object's colour and shape from its image's mean frozen token."""
    (train_records, train_tokens), (val_records, val_tokens) = train, val
    keep, held = single_object(train_records), single_object(val_records)
    x, x_val = train_tokens[keep].float().mean(1), val_tokens[held].float().mean(1)
    for attribute in ("color", "shape"):
        y = [object_attribute(train_records[i], attribute) for i in keep]
        y_val = [object_attribute(val_records[i], attribute) for i in held]
        accuracy = linear_probe_accuracy(x, y, x_val, y_val, steps, batch_size=32)
        print(f"probe {attribute}@1: {accuracy:.1f}% of {len(y_val)} single-object val images ({steps} steps)")


def question_chat(qa: QA, scene: str | None) -> Messages:
    """A single-turn conversation about one question, the image (or the ``scene`` text) first, as the recipes
    build them."""
    return question_messages(scene or IMAGE_TOKEN, [(qa.question, qa.answer)])


def text_scene(record: Record, tokens: torch.Tensor | None) -> str | None:
    """The record's canonical caption when there are no image tokens to read."""
    return scene_text(record) if tokens is None else None


def answer_accuracy(
    model: VisionLanguageModel,
    encoder: ChatEncoder,
    records: list[Record],
    tokens: torch.Tensor | None,
    only: str | None = None,
) -> dict[str, float]:
    """Teacher-forced exact match of every answer token, per type (``only``: that type alone); ``@1`` marks
    single-object images."""
    chats, kinds, images = [], [], []
    for index, record in enumerate(records):
        for qa in (qa for qa in record.qa or [] if only in (None, qa.type)):
            chats.append(question_chat(qa, text_scene(record, tokens)))
            kinds.append(str(qa.type) + ("@1" if len(record.objects or []) == 1 else ""))
            images.append(index)
    exact = exact_answers(model, encoder, chats, None if tokens is None else tokens[images])
    hits: collections.Counter[str] = collections.Counter()
    totals: collections.Counter[str] = collections.Counter(kinds)
    for kind, ok in zip(kinds, exact, strict=True):
        hits[kind] += ok
    return {kind: 100 * hits[kind] / totals[kind] for kind in sorted(totals)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a VLM directory (e.g. the align stage's model/)")
    parser.add_argument("--data", required=True, help="a ShapesWorld folder with train/ and val/")
    parser.add_argument("--only", default=None, help="train on this question type only (color, shape, ...)")
    parser.add_argument("--single-object", action="store_true", help="train on single-object images only")
    parser.add_argument("--fresh-decoder", action="store_true", help="re-initialise the decoder and projector")
    parser.add_argument("--decoder-from", default=None, help="a decoder to use instead (e.g. vlmkit:minilm)")
    parser.add_argument(
        "--text-scene", action="store_true", help="give the decoder the scene as text (its canonical caption)"
    )
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--projector-lr", type=float, default=None, help="the projector's lr (default: --lr)")
    parser.add_argument("--eval-images", type=int, default=150)
    parser.add_argument("--eval-every", type=int, default=None, help="steps between evaluations (default: half)")
    parser.add_argument("--curriculum-steps", type=int, default=0, help="grow scenes from one object over N steps")
    parser.add_argument("--out", type=Path, default=None, help="a folder for metrics.jsonl and metrics.png")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.curriculum_steps and args.single_object:
        raise SystemExit("--curriculum-steps: grows scenes from one object, which --single-object keeps")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = from_pretrained(args.model)
    if not isinstance(model, VisionLanguageModel) or model.tokenizer is None:
        raise SystemExit(f"{args.model}: expected a VLM with a tokenizer")
    if args.decoder_from:
        decoder = from_pretrained(args.decoder_from).train()
        projector = dataclasses.replace(model.config.projector)
        model = VisionLanguageModel.from_parts(model.vision, decoder, projector, image_processor=model.image_processor)
    tokenizer = model.tokenizer
    encoder = chat_encoder(model)
    train = split_tokens(model, f"{args.data}/train", None, args.text_scene)
    val = split_tokens(model, f"{args.data}/val", args.eval_images, args.text_scene)
    if not args.text_scene:
        probe(train, val, args.steps)  # type: ignore[arg-type]

    if args.fresh_decoder:
        model.decoder.reset_parameters()
        for module in model.projector.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()
    model.vision.requires_grad_(False)
    records, tokens = train
    if args.single_object:
        keep = single_object(records)
        records, tokens = [records[i] for i in keep], None if tokens is None else tokens[keep]
    params = [p for p in model.parameters() if p.requires_grad]
    projector = list(model.projector.parameters())
    in_projector = {id(p) for p in projector}
    groups = [
        {"params": [p for p in params if id(p) not in in_projector]},
        {"params": projector, "lr": args.projector_lr or args.lr},
    ]
    optimizer = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1)
    schedule = warmup_cosine_schedule(optimizer, args.steps // 10, args.steps)
    rng = random.Random(0)
    curriculum = ObjectCurriculum.of_records(records, args.curriculum_steps, 0) if args.curriculum_steps else None
    log = None
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        log = (args.out / "metrics.jsonl").open("w", encoding="utf-8")
    reader = "text scene" if args.text_scene else "VLM"
    started = time.perf_counter()
    model.train()
    for step in range(1, args.steps + 1):
        if curriculum is None:
            items = [rng.randrange(len(records)) for _ in range(args.batch_size)]
        else:
            items = curriculum.items(step - 1, args.batch_size, 0, 1)
        rows = []
        for item in items:
            qas = [qa for qa in records[item].qa or [] if args.only in (None, qa.type)] or records[item].qa or []
            encoded = encoder.encode(question_chat(rng.choice(qas), text_scene(records[item], tokens)))
            rows.append((encoded.input_ids, encoded.labels))
        ids, labels = pad_right(rows, tokenizer.pad_id)
        batch_tokens = None if tokens is None else tokens[items]
        loss = model(ids, labels=labels, vision_tokens=batch_tokens, return_logits=False).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        if step % max(1, args.eval_every or args.steps // 2) == 0:
            accuracy = answer_accuracy(model, encoder, *val, only=args.only)
            shown = {k: f"{v:.1f}" for k, v in accuracy.items()}
            print(f"{reader} step {step}: loss {loss.item():.3f}, val answer accuracy % {shown}", flush=True)
            if log is not None:
                line = {"step": step, "loss": loss.item(), **{f"eval/{k}": v for k, v in accuracy.items()}}
                log.write(json.dumps(line) + "\n")
                log.flush()
    print(f"{reader} training: {time.perf_counter() - started:.0f} s (process CPU {time.process_time():.0f} s)")
    if log is not None:
        log.close()
        print(f"curves: {plot_metrics(args.out)}")


if __name__ == "__main__":
    main()
