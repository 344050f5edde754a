"""Questions, captions and moments about a video clip, with a generative VLM that takes several images.

A clip reaches the model as the frames ``processing.video`` samples (8 uniform by default), each one an image
of the prompt introduced by its time (``processing.video_input.video_prompt``: "frame at 0.5s: <image>"), so
the model can say when something happens and ``ground_video`` can read the moment back out of its answer.
Each frame costs the model its ``tokens_per_image``; pooling frame tokens (``pool_frame_tokens``) happens
inside a model that is configured for it, not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vlmkit.models import Qwen2VLModel, VisionLanguageModel
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.video import Frame, FrameSampling, VideoLimits, read_video
from vlmkit.processing.video_input import grounding_prompt, parse_moment, video_prompt
from vlmkit.tasks import qwen2_vl
from vlmkit.tasks.chat import chat_encoder, respond

VIDEO_CAPTION_PROMPT = "Describe what happens in the video."


def ask_clips(
    model: VisionLanguageModel,
    questions: Sequence[tuple[Sequence[Frame], str]],
    config: GenerationConfig | None = None,
    batch_size: int = 8,
) -> list[str]:
    """The model's answer to each ``(frames, text)``: already decoded frames (in time order) and a question
    about them, ``batch_size`` prompts at a time (evaluation asks hundreds)."""
    encoder = chat_encoder(model)
    answers: list[str] = []
    for start in range(0, len(questions), batch_size):
        chunk = questions[start : start + batch_size]
        prompts = [
            encoder.encode(
                [{"role": "user", "content": video_prompt([frame.time for frame in frames], text)}],
                add_generation_prompt=True,
            ).input_ids
            for frames, text in chunk
        ]
        answers += respond(model, prompts, [frame.image for frames, _ in chunk for frame in frames], config)
    return answers


def ask_frames(
    model: VisionLanguageModel | Qwen2VLModel,
    frames: Sequence[Frame],
    text: str,
    config: GenerationConfig | None = None,
) -> str:
    """The model's answer to ``text`` about already decoded ``frames`` (in time order); a Qwen2-VL model reads
    them as one video (``vlmkit.tasks.qwen2_vl``)."""
    if isinstance(model, Qwen2VLModel):
        return qwen2_vl.ask_frames(model, frames, text, config)
    return ask_clips(model, [(frames, text)], config)[0]


def ask_video(
    model: VisionLanguageModel,
    path: str | Path,
    question: str,
    sampling: FrameSampling | None = None,
    limits: VideoLimits | None = None,
    config: GenerationConfig | None = None,
) -> str:
    """The model's answer to ``question`` about the clip at ``path``."""
    return ask_frames(model, read_video(path, sampling, limits), question, config)


def caption_video(
    model: VisionLanguageModel,
    path: str | Path,
    prompt: str = VIDEO_CAPTION_PROMPT,
    sampling: FrameSampling | None = None,
    limits: VideoLimits | None = None,
    config: GenerationConfig | None = None,
) -> str:
    """What happens in the clip, in the model's words."""
    return ask_frames(model, read_video(path, sampling, limits), prompt, config)


def ground_video(
    model: VisionLanguageModel,
    path: str | Path,
    query: str,
    sampling: FrameSampling | None = None,
    limits: VideoLimits | None = None,
    config: GenerationConfig | None = None,
) -> tuple[tuple[float, float] | None, str]:
    """The moment (start, end seconds) the model gives for ``query``, or None if its answer holds none, and
    the answer itself."""
    answer = ask_frames(model, read_video(path, sampling, limits), grounding_prompt(query), config)
    return parse_moment(answer), answer
