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

The frozen tokens come from ``training.vision_cache``, so a model from the pipeline reuses its cached tokens.

    .venv/bin/python benchmarks/vlm_readout.py --model align/model --data sw10k --only color --single-object
    .venv/bin/python benchmarks/vlm_readout.py --model align/model --data sw10k --only color --single-object \\
        --fresh-decoder
    .venv/bin/python benchmarks/vlm_readout.py --model align/model --data sw10k --only color --fresh-decoder \
        --text-scene
    .venv/bin/python benchmarks/vlm_readout.py --model align/model --data sw10k --only color --text-scene \
        --decoder-from vlmkit:minilm
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import random
import time

import torch
from torch import nn

from linear_probe import linear_probe_accuracy
from vlmkit.checkpoints import from_pretrained
from vlmkit.data.records import QA, Record, RecordDataset
from vlmkit.data.sources import decode_all
from vlmkit.models import VisionLanguageModel
from vlmkit.processing.chat import IMAGE_TOKEN, ChatEncoder, pad_right
from vlmkit.tasks.chat import chat_encoder
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


def question_rows(encoder: ChatEncoder, qas: list[QA], scene: str | None) -> list[tuple[list[int], list[int]]]:
    """One single-turn conversation per question, the image (or the ``scene`` text) first, as the recipes
    build them."""
    rows = []
    for qa in qas:
        messages = [
            {"role": "user", "content": f"{scene or IMAGE_TOKEN}\n{qa.question}"},
            {"role": "assistant", "content": qa.answer},
        ]
        encoded = encoder.encode(messages)
        rows.append((encoded.input_ids, encoded.labels))
    return rows


def text_scene(record: Record, tokens: torch.Tensor | None) -> str | None:
    """The record's canonical caption when there are no image tokens to read."""
    return (record.captions or [""])[0] if tokens is None else None


def answer_accuracy(
    model: VisionLanguageModel, encoder: ChatEncoder, records: list[Record], tokens: torch.Tensor | None
) -> dict[str, float]:
    """Teacher-forced exact match of every answer token, per type; ``@1`` marks single-object images."""
    rows, kinds, images = [], [], []
    for index, record in enumerate(records):
        for qa in record.qa or []:
            rows += question_rows(encoder, [qa], text_scene(record, tokens))
            kinds.append(qa.type + ("@1" if len(record.objects or []) == 1 else ""))
            images.append(index)
    hits: collections.Counter[str] = collections.Counter()
    totals: collections.Counter[str] = collections.Counter(kinds)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(rows), 128):
            ids, labels = pad_right(rows[start : start + 128], encoder.tokenizer.pad_id)
            batch_tokens = None if tokens is None else tokens[images[start : start + 128]]
            logits = model(ids, vision_tokens=batch_tokens, labels=labels).logits  # labels: a prefix-LM's blocks
            targets = labels[:, 1:]
            exact = ((logits[:, :-1].argmax(-1) == targets) | (targets == -100)).all(1)
            for kind, ok in zip(kinds[start : start + 128], exact.tolist(), strict=True):
                hits[kind] += ok
    model.train()
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
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
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
    reader = "text scene" if args.text_scene else "VLM"
    started = time.perf_counter()
    model.train()
    for step in range(1, args.steps + 1):
        items = [rng.randrange(len(records)) for _ in range(args.batch_size)]
        rows = []
        for item in items:
            qas = [qa for qa in records[item].qa or [] if args.only in (None, qa.type)] or records[item].qa or []
            rows += question_rows(encoder, [rng.choice(qas)], text_scene(records[item], tokens))
        ids, labels = pad_right(rows, tokenizer.pad_id)
        batch_tokens = None if tokens is None else tokens[items]
        loss = model(ids, labels=labels, vision_tokens=batch_tokens, return_logits=False).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        if step % max(1, args.eval_every or args.steps // 2) == 0:
            accuracy = answer_accuracy(model, encoder, *val)
            shown = {k: f"{v:.1f}" for k, v in accuracy.items() if args.only is None or k.startswith(args.only)}
            print(f"{reader} step {step}: loss {loss.item():.3f}, val answer accuracy % {shown}", flush=True)
    print(f"{reader} training: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
