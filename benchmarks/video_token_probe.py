"""Do a VLM's frozen frame tokens hold the answers of temporal questions? A logistic probe of VideoWorld clips.

Each clip's 8 frames go through the vision tower exactly as ``vlmkit train video`` feeds them
(``training.recipes.video``: the same sampled frames, ``--frame-size`` resizing, the tokens before the
projector), and a scikit-learn logistic regression on standardised features is fit on the training clips for
labels read from the records' exact ``events``: the direction of a clip's one ``move``, the colour of its one
``recolor``, the shape of its one ``appear`` (clips with none or several such events have no label). Each is
read from three feature sets: none (the majority class), the first frame's tokens, and the last frame's
tokens minus the first's. A probe well above the first frame on the difference means the change is
linearly in the tokens the decoder sees, so a decoder that does not answer fails to read it.

    vlmkit data video --out videoworld --n 2000 --split all --n-test 200 --n-compositional 200
    .venv/bin/python benchmarks/video_token_probe.py RUN/model videoworld/train videoworld/test \\
        videoworld/compositional --frame-size 128
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vlmkit.checkpoints import from_pretrained
from vlmkit.data.records import Record
from vlmkit.models import VisionLanguageModel
from vlmkit.training.recipes.video import clip_frames, resize_frames
from vlmkit.training.vision_cache import frozen_vision_tokens

TARGETS: dict[str, tuple[str, Callable[[dict], str]]] = {
    "direction of the one move": ("move", lambda event: event["direction"]),
    "colour it turns to": ("recolor", lambda event: event["to"]),
    "shape that appears": ("appear", lambda event: event["object"].split()[-1]),  # "object" is "colour shape"
}
FEATURES = ("majority", "first frame", "last - first")


def clip_tokens(model: VisionLanguageModel, folder: str) -> tuple[list[Record], torch.Tensor]:
    """A clip folder's records and their frames' tower tokens ``(clips, frames, tokens, width)``, computed (and
    cached) as ``VideoBatches`` computes a frozen tower's."""
    records, _, pixels = clip_frames(folder, model.image_processor)  # type: ignore[arg-type]
    tokens = frozen_vision_tokens(model, pixels.flatten(0, 1))
    return records, tokens.unflatten(0, pixels.shape[:2])


def feature_sets(tokens: torch.Tensor) -> dict[str, np.ndarray | None]:
    """Each clip's features by set (``FEATURES``): none, the first frame's tokens, the last frame's minus the
    first's, flattened."""
    first, last = tokens[:, 0].float(), tokens[:, -1].float()
    return {
        "majority": None,
        "first frame": first.flatten(1).numpy(),
        "last - first": (last - first).flatten(1).numpy(),
    }


def labels(records: list[Record], kind: str, read: Callable[[dict], str]) -> list[str | None]:
    """Each clip's label for a target: ``read`` of its one event of ``kind``, None unless there is exactly one."""
    found = []
    for record in records:
        events = [e for e in record.extra.get("events") or [] if e.get("kind") == kind]
        found.append(read(events[0]) if len(events) == 1 else None)
    return found


def probe_accuracy(
    x: np.ndarray | None, y: list[str | None], x_test: np.ndarray | None, y_test: list[str | None]
) -> float:
    """Accuracy on the labelled test clips of a logistic regression fit on the labelled training clips, features
    standardised by the training set's (a CNN's channels differ in scale by orders of magnitude); with no
    features, or a single training class, the training set's commonest label for every clip."""
    keep, keep_test = [i for i, v in enumerate(y) if v is not None], [i for i, v in enumerate(y_test) if v is not None]
    y, y_test = [y[i] for i in keep], [y_test[i] for i in keep_test]
    if x is None or x_test is None or len(set(y)) < 2:
        majority = Counter(y).most_common(1)[0][0]
        return float(np.mean([label == majority for label in y_test]))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(x[keep], y)
    return float(probe.score(x_test[keep_test], y_test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a VLM (e.g. a `vlmkit train video` run's model, or its --from)")
    parser.add_argument("train", help="the clip folder the probes are fit on (`vlmkit data video`)")
    parser.add_argument("splits", nargs="+", help="clip folders to score (test, compositional)")
    parser.add_argument("--frame-size", type=int, default=128, help="as `train video --frame-size` (0: the model's)")
    args = parser.parse_args()
    model = from_pretrained(args.model).eval()
    if args.frame_size:
        resize_frames(model, args.frame_size)
    started = time.process_time()
    train, train_tokens = clip_tokens(model, args.train)
    splits = {folder: clip_tokens(model, folder) for folder in args.splits}
    shape = tuple(train_tokens.shape[1:])
    clips = f"{len(train)} + {sum(len(r) for r, _ in splits.values())} clips"
    print(f"frame tokens {shape} of {clips} in {time.process_time() - started:.0f} CPU s")
    train_x = feature_sets(train_tokens)
    for folder, (records, tokens) in splits.items():
        test_x = feature_sets(tokens)
        print(f"\n{folder}\n{'target':<28} {'train/test':>11}" + "".join(f" {name:>12}" for name in FEATURES))
        for target, (kind, read) in TARGETS.items():
            y, y_test = labels(train, kind, read), labels(records, kind, read)
            counts = f"{len(y) - y.count(None):>5}/{len(y_test) - y_test.count(None):<5}"
            if y.count(None) == len(y) or y_test.count(None) == len(y_test):
                print(f"{target:<28} {counts} (no labelled clips)")
                continue
            row = [probe_accuracy(train_x[name], y, test_x[name], y_test) for name in FEATURES]
            print(f"{target:<28} {counts}" + "".join(f" {accuracy:12.3f}" for accuracy in row))


if __name__ == "__main__":
    main()
