"""The one video decoder: which frames each sampling picks, scaling on decode, and one line for every bad file."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import pytest

from vlmkit.data.videoworld import encode_mp4
from vlmkit.errors import ConfigError, InputError
from vlmkit.processing.video import FrameSampling, VideoLimits, decode_frames, probe, read_video, sample_times

av = pytest.importorskip("av")

FPS, COUNT = 8, 16  # a 2 s clip; frame i is flat grey at level 12 * i, so a decoded frame names its index


def _frames(count: int = COUNT, side: int = 32) -> list[np.ndarray]:
    return [np.full((side, side, 3), 12 * i % 240, np.uint8) for i in range(count)]


def _index(image) -> int:
    return round(float(np.asarray(image, dtype=np.float64).mean()) / 12)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    path.write_bytes(encode_mp4(_frames(), FPS, "libx264" if "libx264" in av.codecs_available else "mpeg4"))
    return path


def test_probe_reads_the_header(clip: Path) -> None:
    info = probe(clip)
    assert (info.duration, info.fps, info.width, info.height) == (2.0, 8.0, 32, 32)


def test_uniform_sampling_takes_the_middle_frame_of_equal_parts(clip: Path) -> None:
    frames = read_video(clip, FrameSampling("uniform", frames=4))
    assert [f.time for f in frames] == [0.25, 0.75, 1.25, 1.75]  # frames 2, 6, 10, 14 of 16
    assert [_index(f.image) for f in frames] == [2, 6, 10, 14]
    assert len(read_video(clip, FrameSampling("uniform", frames=64))) == COUNT  # never more frames than exist


def test_fps_sampling_and_its_frame_budget(clip: Path) -> None:
    every_half_second = read_video(clip, FrameSampling("fps", frames=8, fps=2.0))
    assert [f.time for f in every_half_second] == [0.0, 0.5, 1.0, 1.5]
    assert [_index(f.image) for f in every_half_second] == [0, 4, 8, 12]
    budget = read_video(clip, FrameSampling("fps", frames=3, fps=2.0))  # 4 wanted, 3 allowed: uniform with 3
    assert [_index(f.image) for f in budget] == [2, 8, 13]


def test_sample_times_without_a_known_rate() -> None:
    from vlmkit.processing.video import VideoInfo

    info = VideoInfo("x.webm", 10.0, 0.0, 8, 8, "vp9")
    assert sample_times(info, FrameSampling("uniform", frames=2)) == [2.5, 7.5]


def test_endless_targets_stream_until_the_file_ends(clip: Path) -> None:
    frames = list(decode_frames(clip, (k * 0.6 for k in itertools.count())))
    assert [f.time for f in frames] == [0.0, 0.625, 1.25, 1.875]  # the first frame at or after each time


def test_large_frames_are_scaled_down_while_decoded(clip: Path) -> None:
    frames = read_video(clip, FrameSampling(frames=2), VideoLimits(max_side=16))
    assert [f.image.size for f in frames] == [(16, 16), (16, 16)]


def test_bad_sampling_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="mode"):
        FrameSampling("random")
    with pytest.raises(ConfigError, match="frames"):
        FrameSampling(frames=0)


def _one_line(error: pytest.ExceptionInfo[InputError], path: Path) -> str:
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


def test_a_file_that_is_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_bytes(b"certainly not a video " * 50)
    with pytest.raises(InputError, match="not a readable video") as error:
        read_video(path)
    _one_line(error, path)
    with pytest.raises(InputError, match="no such file"):
        read_video(tmp_path / "missing.mp4")


def test_a_file_cut_short_before_its_index(clip: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.mp4"
    path.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # the index (moov) is at the end
    with pytest.raises(InputError, match="cut short") as error:
        read_video(path)
    _one_line(error, path)


def test_a_file_cut_short_after_its_index(tmp_path: Path) -> None:
    whole = tmp_path / "whole.mp4"
    with av.open(str(whole), "w", options={"movflags": "faststart"}) as container:  # the index first
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for pixels in _frames(40):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())
    path = tmp_path / "cut_late.mp4"
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert probe(path).duration == 5.0  # the header still promises 5 s
    with pytest.raises(InputError, match="frames stop at") as error:
        read_video(path, FrameSampling(frames=8))
    _one_line(error, path)


def test_a_codec_this_ffmpeg_cannot_decode(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for pixels in _frames(4):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())
    path = tmp_path / "odd.avi"
    path.write_bytes(buffer.getvalue().replace(b"FMP4", b"QQQQ"))  # a FourCC no decoder claims
    with pytest.raises(InputError, match="codec is not one this FFmpeg") as error:
        read_video(path)
    _one_line(error, path)


def test_a_clip_longer_than_the_limit_and_frames_too_large(clip: Path) -> None:
    with pytest.raises(InputError, match=r"lasts 2.0 s; the limit is 1.5 s") as error:
        read_video(clip, limits=VideoLimits(max_seconds=1.5))
    _one_line(error, clip)
    with pytest.raises(InputError, match="32x32 = 1024 pixels; the limit is 1000"):
        read_video(clip, limits=VideoLimits(max_pixels=1000))


def test_a_file_without_video(tmp_path: Path) -> None:
    path = tmp_path / "sound.wav"
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(InputError, match="has no video stream"):
        read_video(path)
