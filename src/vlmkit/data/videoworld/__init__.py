"""VideoWorld: temporal ShapesWorld, short clips whose events have exact times and exact words.

ShapesWorld objects on ShapesWorld backgrounds move, appear, disappear and change colour, one event after
another; each clip is written as an MP4 (PyAV) and as its frames, with events (what happened, from when to
when, in seconds), captions, temporal questions (direction, order, count, when, change) and grounding
queries (a sentence -> its start and end seconds). A ``compositional`` split holds (colour, shape) pairs
the other splits never show. Module map: config (knobs), script (objects and events), frames (pixels),
language (clauses, captions, questions, grounding), encode (MP4), example (one clip end to end), generate
(folders, workers).
"""

from vlmkit.data.videoworld.config import EVENT_KINDS, GENERATOR_VERSION, SPLITS, VideoWorldConfig
from vlmkit.data.videoworld.encode import encode_mp4, resolve_codec
from vlmkit.data.videoworld.example import make_example
from vlmkit.data.videoworld.generate import CONFIG_FILE, generate_split, regenerate

__all__ = [
    "CONFIG_FILE",
    "EVENT_KINDS",
    "GENERATOR_VERSION",
    "SPLITS",
    "VideoWorldConfig",
    "encode_mp4",
    "generate_split",
    "make_example",
    "regenerate",
    "resolve_codec",
]
