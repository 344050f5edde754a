"""A clip in a chat: a ``video_url`` content part (a base64 ``data:video/...`` URL, a vlmkit extension) becomes
the frames ``processing.video`` samples, shown to the model as ``tasks.video`` shows them (each frame an image
introduced by its time, ``processing.video_input.video_prompt``), so a model trained on clips is asked as it
was trained, and a moment in its answer ("1.25 to 1.75") is read back with ``parse_moment``.

What a clip may cost: its bytes are within the body limit (the guard's 413, as any body); its duration within
``max_video_seconds`` (400 ``video_too_long``, from the header, before a frame is decoded); its frames (the
server's ``video_frames``, or the part's own ``frames``) within ``max_images`` (400 ``too_many_frames``), each
frame within ``max_image_pixels`` and shrunk towards the model's input side while it is converted. The bytes
wait in a temporary file while PyAV reads them (it opens paths), removed as soon as the frames are out.
"""

from __future__ import annotations

import asyncio
import importlib.util
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from vlmkit.errors import InputError
from vlmkit.processing.video import FrameSampling, VideoLimits, probe, read_video
from vlmkit.processing.video_input import parse_moment, video_prompt
from vlmkit.serving.errors import ApiError
from vlmkit.serving.images import decode_data_url
from vlmkit.serving.limits import ServerLimits
from vlmkit.serving.openai_schema import VideoPart
from vlmkit.serving.state import Deadline

if TYPE_CHECKING:
    from vlmkit.serving.grounding import GroundService


@dataclass(frozen=True)
class ClipRequest:
    """A video part, undecoded: the turn it belongs to, its URL, how many frames it asks for, its field."""

    turn: int
    url: str
    frames: int | None
    param: str


@dataclass(frozen=True)
class Clip:
    """The frames a model sees of a clip (in time order) and the clip's length in seconds."""

    times: list[float]
    images: list[Image.Image]
    duration: float

    def moment(self, answer: str) -> dict[str, float] | None:
        """The moment an answer names, with the clip's duration (for a timeline), or None."""
        found = parse_moment(answer)
        return None if found is None else {"start": found[0], "end": found[1], "duration": self.duration}


def available() -> bool:
    """Whether this server can decode clips (PyAV is installed: ``vlmkit[video]``)."""
    return importlib.util.find_spec("av") is not None


def clip_request(part: VideoPart, turn: int, param: str, found: ClipRequest | None) -> ClipRequest:
    """The clip of a user message's video part; one per request (its frames already fill a context)."""
    if found is not None:
        raise ApiError(400, "at most one video_url part per request", param=param, code="too_many_videos")
    return ClipRequest(turn, part.video_url.url, part.video_url.frames, f"{param}.video_url.url")


def _bad(message: str, param: str, code: str = "invalid_video") -> ApiError:
    return ApiError(400, message, param=param, code=code)


def load_clip(asked: ClipRequest, limits: ServerLimits, max_side: int | None) -> Clip:
    """The clip's sampled frames, decoded within ``limits`` (call off the event loop)."""
    frames = asked.frames or limits.video_frames
    if frames > limits.max_images:
        message = f"a video gives at most {limits.max_images} frames here (--max-images), asked {frames}"
        raise _bad(message, asked.param, "too_many_frames")
    if not asked.url.startswith("data:video/"):
        raise _bad("a video must come as a base64 'data:video/<type>;base64,...' URL", asked.param)
    data = decode_data_url(asked.url, asked.param)
    video = VideoLimits(max_seconds=limits.max_video_seconds, max_pixels=limits.max_image_pixels, max_side=max_side)
    with tempfile.TemporaryDirectory(prefix="vlmkit-video-") as folder:
        path = Path(folder) / "clip"
        path.write_bytes(data)
        try:
            info = probe(path, VideoLimits(max_seconds=None, max_pixels=video.max_pixels))
            if info.duration is not None and info.duration > limits.max_video_seconds:
                raise _bad(
                    f"the video lasts {info.duration:.1f} s; this server takes at most {limits.max_video_seconds:g} s",
                    asked.param,
                    "video_too_long",
                )
            sampled = read_video(path, FrameSampling(frames=frames), video)
        except InputError as error:
            raise _bad(str(error).replace(str(path), "video"), asked.param) from None
    duration = info.duration if info.duration is not None else sampled[-1].time
    return Clip([frame.time for frame in sampled], [frame.image for frame in sampled], duration)


async def with_clip(
    turns: list[dict[str, str]], asked: ClipRequest, limits: ServerLimits, deadline: Deadline, max_side: int | None
) -> Clip:
    """Decode the clip within the request's deadline and write its frames into its turn, before the text."""
    clip: Clip = await deadline.wait(asyncio.to_thread(load_clip, asked, limits, max_side))
    turns[asked.turn]["content"] = video_prompt(clip.times, turns[asked.turn]["content"])
    return clip


def reply_fields(
    grounding: GroundService | None, image_url: str | None, limits: ServerLimits, clip: Clip | None, text: str
) -> dict[str, Any]:
    """What a chat reply carries besides its text (vlmkit extensions on the message): ``objects`` it writes
    in location tokens about the request's (last) image, and the ``moment`` it names in a clip."""
    fields: dict[str, Any] = {}
    if grounding is not None and image_url is not None:
        objects = grounding.objects_in(text, image_url, limits)
        if objects:
            fields["objects"] = objects
    if clip is not None:
        moment = clip.moment(text)
        if moment is not None:
            fields["moment"] = moment
    return fields
