"""Questions, captions and moments about a video clip, with a generative VLM that takes several images.

A clip reaches the model as the frames ``processing.video`` samples (8 uniform by default), each one an image
of the prompt introduced by its time (``processing.video_input.video_prompt``: "frame at 0.5s: <image>"), so
the model can say when something happens and ``ground_video`` can read the moment back out of its answer.
Each frame costs the model its ``tokens_per_image``; pooling frame tokens (``pool_frame_tokens``) happens
inside a model that is configured for it, not here. A model whose processor takes videos (``videos``: Qwen2-VL)
reads the frames as one video instead (``ask_as_video``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vlmkit.errors import InputError
from vlmkit.models import Qwen2VLModel, VisionLanguageModel
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.video import Frame, FrameSampling, VideoLimits, read_video
from vlmkit.processing.video_input import grounding_prompt, parse_moment, video_prompt
from vlmkit.tasks.chat import chat_encoder, jinja_template_of, respond

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
    """The model's answer to ``text`` about already decoded ``frames`` (in time order); a model whose processor
    takes videos reads them as one video (``ask_as_video``)."""
    if hasattr(model.image_processor, "videos"):
        return ask_as_video(model, frames, text, config)  # type: ignore[arg-type]
    return ask_clips(model, [(frames, text)], config)[0]


def ask_as_video(
    model: Qwen2VLModel, frames: Sequence[Frame], question: str, config: GenerationConfig | None = None
) -> str:
    """The answer to ``question`` about ``frames`` read as one video: the checkpoint's template renders a video part,
    whose pad token is repeated once per merged patch of the clip's grid (temporal patches of two frames).

    For Qwen2.5-VL, ``second_per_grid_ts`` is the time one temporal patch spans: ``temporal_patch_size`` frames
    at the frames' mean spacing (1 s for a single frame), as transformers' processor derives it from the fps."""
    template, tokenizer, processor = jinja_template_of(model), model.tokenizer, model.image_processor
    if not frames or template is None or tokenizer is None or processor is None:
        raise InputError("a video needs at least one frame, and the model its tokenizer, processor and chat template")
    inputs = processor.videos([[frame.image for frame in frames]])
    spacing = (frames[-1].time - frames[0].time) / (len(frames) - 1) if len(frames) > 1 else 1.0
    seconds = [processor.temporal_patch_size * spacing]
    message = {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}
    ids = tokenizer.tokenizer.encode(template.render([message], True), add_special_tokens=False).ids
    tokens = model.config
    ids = processor.expand(ids, tokens.image_token_id, None, tokens.video_token_id, inputs["video_grid_thw"])
    out = model.generate([ids], config, **inputs, second_per_grid_ts=seconds, tokenizer=tokenizer)[0]
    return tokenizer.decode(out)


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
