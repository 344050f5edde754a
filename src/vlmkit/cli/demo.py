"""``vlmkit demo``: the whole loop on embedded data, in minutes on a laptop CPU.

Generate ShapesWorld, train a tiny CLIP on it, then show zero-shot classification and text-to-image
retrieval on held-out images, with the measured metrics and a picture of the results.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="generate ShapesWorld, train a tiny CLIP, show what it learned")
    demo.add_argument("--out", type=Path, default=Path("demo_out"))
    demo.add_argument("--train-images", type=int, default=5000)
    demo.add_argument("--test-images", type=int, default=500)
    demo.add_argument("--steps", type=int, default=300)
    demo.add_argument("--batch-size", type=int, default=128)
    demo.add_argument("--vlm-steps", type=int, default=200, help="instruction-tuning steps of the VLM (0: skip it)")
    demo.set_defaults(handler=run_demo)


def _stage(message: str) -> None:
    print(f"\n== {message}", flush=True)


def _train_config(steps: int, batch_size: int, lr: float, logs: int):
    from vlmkit.training.trainer import TrainConfig

    warmup, log_every = max(1, steps // 10), max(1, steps // logs)
    return TrainConfig(steps=steps, batch_size=batch_size, lr=lr, warmup_steps=warmup, log_every=log_every, keep_last=1)


def _run(recipe, out: Path):
    """A demo stage, resumed where an earlier demo left it."""
    from vlmkit.training.run import run

    return run(recipe, out, device="cpu", resume=(out / "checkpoints").exists())


def run_demo(args: argparse.Namespace) -> int:
    from vlmkit.data.records import RecordDataset
    from vlmkit.data.shapesworld import ShapesWorldConfig, generate_split
    from vlmkit.training.metrics import plot_metrics
    from vlmkit.training.recipes import ClipRecipe

    start = time.perf_counter()
    data = args.out / "shapesworld"
    config = ShapesWorldConfig(image_size=64)
    for split, count in (("train", args.train_images), ("test", args.test_images)):
        if not (data / split / "records.jsonl").exists():
            _stage(f"generating {count} ShapesWorld {split} images")
            generate_split(data / split, config, split, count, seed=0)
    run_dir = args.out / "clip_run"
    train = _train_config(args.steps, args.batch_size, 1e-3, logs=20)
    recipe = ClipRecipe(
        data=str(data / "train"), eval_data=str(data / "test"), image_size=64, eval_images=args.test_images, train=train
    )
    _stage(f"training a tiny CLIP for {args.steps} steps of {args.batch_size} (run dir {run_dir})")
    result = _run(recipe, run_dir)
    model = result.model.eval()

    test = RecordDataset(data / "test")
    labels = [r.labels.get(recipe.label_key) for r in [*RecordDataset(data / "train"), *test] if r.labels]
    classnames = sorted({label for label in labels if label})
    _stage(f"held-out metrics on {args.test_images} test images (zero-shot over {len(classnames)} classes)")
    print(json.dumps({k: round(v, 4) for k, v in result.metrics.items()}, indent=2))
    pictures = [
        _retrieval_picture(model, test, args.out / "retrieval.png"),
        _zero_shot_picture(model, test, classnames, recipe.templates, args.out / "zero_shot.png"),
        plot_metrics(run_dir),
    ]
    if args.vlm_steps:
        pictures.append(_vlm_stages(args, data, run_dir, test))
    _stage(f"done in {time.perf_counter() - start:.0f} s; look at: " + ", ".join(map(str, pictures)))
    return 0


def _vlm_stages(args: argparse.Namespace, data: Path, clip_run: Path, test) -> Path:
    """lm -> align -> instruct on the same data, then answers and captions next to the ground truth."""
    from vlmkit.training.recipes import AlignRecipe, InstructRecipe, LmRecipe

    def stage(recipe_class, steps: int, batch: int, lr: float, **settings) -> Path:
        out = args.out / f"{recipe_class.name}_run"
        recipe = recipe_class(data=str(data / "train"), train=_train_config(steps, batch, lr, logs=10), **settings)
        _stage(f"{recipe_class.name}: {steps} steps of {batch} (run dir {out})")
        return _run(recipe, out).model_dir  # type: ignore[return-value]

    lm = stage(LmRecipe, max(20, args.vlm_steps // 2), 32, 3e-3)
    # The demo's decoder is minutes old and cannot yet route image tokens on its own: align trains it too.
    align_parts = dict(vision_from=str(clip_run), decoder_from=str(lm), train_decoder=True)
    align = stage(AlignRecipe, max(10, args.vlm_steps // 3), 64, 1e-3, **align_parts)
    vlm_dir = stage(InstructRecipe, args.vlm_steps, 32, 1e-3, init_from=str(align))
    return _answers_picture(vlm_dir, test, args.out / "vlm_answers.png")


def _answers_picture(vlm_dir: Path, test, out: Path) -> Path:
    from vlmkit.checkpoints import from_pretrained
    from vlmkit.tasks.caption import caption
    from vlmkit.tasks.chat import ask
    from vlmkit.visualize import Row, Tile, result_sheet, save_png

    vlm = from_pretrained(vlm_dir)
    records = test.records[:6]
    paths = [test.image_path(r) for r in records]
    captions = caption(vlm, paths)
    rows = []
    for path, record, text in zip(paths, records, captions, strict=True):
        tiles = [Tile(path, f"caption: {text}")]
        for qa in (record.qa or [])[:3]:
            answer = ask(vlm, path, qa.question)
            tiles.append(Tile(path, f"{qa.question} -> {answer} (truth: {qa.answer})", highlight=answer == qa.answer))
        rows.append(Row(f"truth: {record.captions[0]}", tiles))
    save_png(result_sheet(rows, caption_lines=4), out)
    print(f"VLM answers and captions on held-out images (right answers framed in green): {out}")
    return out


def _retrieval_picture(model, test, out: Path) -> Path:
    from vlmkit.tasks import embed_images, embed_texts, retrieve
    from vlmkit.visualize import Row, Tile, result_sheet, save_png

    records = test.records[:200]
    paths = [test.image_path(r) for r in records]
    queries = [records[i].captions[0] for i in (0, 1, 2, 3)]
    hits = retrieve(embed_texts(model, queries), embed_images(model, paths), k=5)
    rows = [
        Row(f"query: {query}", [Tile(paths[h.index], f"{h.score:.2f}", highlight=h.index == q) for h in row])
        for q, (query, row) in enumerate(zip(queries, hits, strict=True))
    ]
    save_png(result_sheet(rows), out)
    print(f"text -> image retrieval over {len(paths)} test images (correct image framed in green): {out}")
    return out


def _zero_shot_picture(model, test, classnames, templates, out: Path) -> Path:
    from vlmkit.tasks import classify
    from vlmkit.visualize import Row, Tile, result_sheet, save_png

    records = test.records[:8]
    paths = [test.image_path(r) for r in records]
    with torch.inference_mode():
        predictions = classify(model, paths, classnames, templates=templates, top_k=1)
    tiles = [
        Tile(
            path,
            f"{p[0].label} ({p[0].probability:.2f}); truth: {r.labels['color_shape']}",
            highlight=p[0].label == r.labels["color_shape"],
        )
        for path, p, r in zip(paths, predictions, records, strict=True)
    ]
    save_png(result_sheet([Row("zero-shot: the largest object's colour and shape", tiles)]), out)
    return out
