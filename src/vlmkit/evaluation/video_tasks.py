"""A generative VLM on a clip folder (VideoWorld's layout): video QA, temporal grounding and captions.

Each clip is decoded once, through the one decoder and sampler (``processing.video``, 8 uniform frames:
what ``vlmkit ask clip.mp4`` and the ``video`` training recipe use), and asked in batches through
``tasks.video.ask_clips``, so a model is scored on exactly the prompts it answers at inference. Answers are
greedy. The scores are ``evaluation.video``'s: exact-match QA per type, grounding mIoU and R@1 at IoU 0.3 /
0.5 / 0.7 (an answer with no readable moment scores IoU 0, and ``unparsed`` counts them), caption CIDEr-D.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vlmkit.data.records import Record, RecordDataset
from vlmkit.errors import InputError
from vlmkit.evaluation.video import caption_scores, grounding_scores, video_qa_accuracy
from vlmkit.models import VisionLanguageModel
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.video import Frame, FrameSampling, read_video
from vlmkit.processing.video_input import grounding_prompt, parse_moment
from vlmkit.tasks.video import VIDEO_CAPTION_PROMPT, ask_clips

ANSWER = GenerationConfig(max_new_tokens=8)
MOMENT = GenerationConfig(max_new_tokens=16)
CAPTION = GenerationConfig(max_new_tokens=48)
EXAMPLES = 5


def is_video_record(record: Record) -> bool:
    return isinstance(record.extra.get("video"), str)


def video_path(root: str | Path, record: Record) -> Path:
    """The clip a record names by its ``video`` key, relative to the dataset folder."""
    video = record.extra.get("video")
    if not isinstance(video, str) or not video:
        raise InputError(f"{root}/records.jsonl: record {record.image!r}: expected a `video` path to the clip")
    return Path(root) / video


def moments(root: str | Path, record: Record) -> list[tuple[str, float, float]]:
    """A record's grounding queries as ``(query, start, end)``, checked: VideoWorld's ``grounding`` key."""
    items = record.extra.get("grounding", [])
    where = f"{root}/records.jsonl: record {record.image!r}: grounding"
    if not isinstance(items, list):
        raise InputError(f"{where}: expected a list of {{query, start, end}}")
    out = []
    for index, item in enumerate(items):
        try:
            query, start, end = item["query"], float(item["start"]), float(item["end"])
        except (TypeError, KeyError, ValueError):
            raise InputError(f"{where}[{index}]: expected {{query, start, end (seconds)}}, got {item!r}") from None
        if not isinstance(query, str) or not 0 <= start <= end:
            raise InputError(f"{where}[{index}]: expected a text query and 0 <= start <= end, got {item!r}")
        out.append((query, start, end))
    return out


def video_tasks(
    model: VisionLanguageModel,
    dataset: RecordDataset,
    records: Sequence[Record],
    batch_size: int = 16,
    sampling: FrameSampling | None = None,
    still: bool = False,
) -> dict[str, Callable[[], dict[str, Any]]]:
    """``video_qa``, ``video_grounding`` and ``video_captioning`` over ``records`` (each skipped when no
    record has what it needs); the clips are decoded on first use and shared by the three.

    ``still`` shows every sampled frame as the clip's first (times kept): the clip without motion or change.
    A model that scores the same both ways does not use time (``benchmarks/video_still.py``)."""
    clips: list[list[Frame]] = []

    def frames() -> list[list[Frame]]:
        if not clips:
            clips.extend(read_video(video_path(dataset.root, r), sampling) for r in records)
            if still:
                clips[:] = [[Frame(f.time, clip[0].image) for f in clip] for clip in clips]
        return clips

    def qa() -> dict[str, Any]:
        asked = [(i, q) for i, r in enumerate(records) for q in r.qa or []]
        if not asked:
            return {"skipped": "no clip has questions"}
        answers = ask_clips(model, [(frames()[i], q.question) for i, q in asked], ANSWER, batch_size)
        result = video_qa_accuracy(answers, [q.answer for _, q in asked], [q.type or "all" for _, q in asked])
        examples = [
            {"question": q.question, "answer": q.answer, "prediction": a}
            for (_, q), a in zip(asked, answers, strict=True)
        ]
        return {
            "accuracy": result.accuracy,
            "count": result.count,
            "per_type": result.per_type,
            "examples": examples[:EXAMPLES],
        }

    def grounding() -> dict[str, Any]:
        asked = [(i, m) for i, r in enumerate(records) for m in moments(dataset.root, r)]
        if not asked:
            return {"skipped": "no clip has grounding queries"}
        answers = ask_clips(model, [(frames()[i], grounding_prompt(m[0])) for i, m in asked], MOMENT, batch_size)
        predicted = [parse_moment(answer) for answer in answers]
        result = grounding_scores(predicted, [(m[1], m[2]) for _, m in asked])
        examples = [
            {"query": m[0], "moment": [m[1], m[2]], "prediction": a} for (_, m), a in zip(asked, answers, strict=True)
        ]
        return {
            "miou": result.miou,
            **{f"r1@{t:g}": value for t, value in result.recall.items()},
            "unparsed": sum(p is None for p in predicted) / len(predicted),
            "count": result.count,
            "examples": examples[:EXAMPLES],
        }

    def captioning() -> dict[str, Any]:
        captioned = [i for i, r in enumerate(records) if r.captions]
        if not captioned:
            return {"skipped": "no clip has captions"}
        hypotheses = ask_clips(model, [(frames()[i], VIDEO_CAPTION_PROMPT) for i in captioned], CAPTION, batch_size)
        scores = caption_scores(hypotheses, [records[i].captions or [] for i in captioned])
        examples = [
            {"references": records[i].captions, "caption": h} for i, h in zip(captioned, hypotheses, strict=True)
        ]
        return {"cider": scores.cider, "bleu4": scores.bleu4, "count": len(captioned), "examples": examples[:EXAMPLES]}

    return {"video_qa": qa, "video_grounding": grounding, "video_captioning": captioning}
