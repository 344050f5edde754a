"""Video decoding and frame sampling (``vlmkit.processing.video``): frames per second and peak memory.

Makes a real-size clip (640x360, 60 s at 30 fps, H.264 when PyAV has libx264, moving content so every frame
costs what a camera's does), then times each way of reading it in a fresh child process, so each peak RSS is
that reading's own:

- ``raw``: PyAV's decode loop alone, no conversion (the ceiling any reader of this file has here);
- ``every``: every frame decoded and converted to RGB, none kept (what indexing every frame costs);
- ``uniform32``: a VLM's input, 32 frames spread over the clip (``FrameSampling("uniform", 32)``);
- ``fps1``: one frame a second with a budget of 64 (``FrameSampling("fps", 64, fps=1)``: 60 frames).

Throughput is source frames (1800) over wall seconds; the ratio to ``raw`` is machine-independent. Peak RSS
is the child's whole peak; "of it, reading" subtracts what the imports alone had reached (torch is most of it).

    nice -n 10 .venv/bin/python benchmarks/video_decode.py
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WIDTH, HEIGHT, FPS, SECONDS = 640, 360, 30, 60
MODES = ("raw", "every", "uniform32", "fps1")


def make_clip(path: Path) -> str:
    """Write the test clip frame by frame (never all frames in memory); returns the codec used."""
    import av

    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (HEIGHT, WIDTH * 2, 3), dtype=np.uint8)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        if codec == "libx264":
            stream.codec_context.options = {"preset": "veryfast", "crf": "23"}
        for index in range(FPS * SECONDS):
            shift = (index * 4) % WIDTH  # the texture pans; a bright disc circles over it
            pixels = texture[:, shift : shift + WIDTH].copy()
            cx, cy = WIDTH / 2 + 200 * np.cos(index / 20), HEIGHT / 2 + 120 * np.sin(index / 20)
            pixels[(xs - cx) ** 2 + (ys - cy) ** 2 < 40**2] = (250, 220, 40)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())
    return codec


def read(path: str, mode: str) -> dict[str, float]:
    """Read ``path`` one way (in this process): frames kept, seconds, and this process's peak RSS before reading
    (the imports: Python, torch through vlmkit, PyAV) and after, in MB."""
    import av

    from vlmkit.processing.video import FrameSampling, decode_frames, read_video

    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes; Python, torch, PyAV
    start = time.perf_counter()
    if mode == "raw":
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            kept = sum(1 for _ in container.decode(stream))
    elif mode == "every":
        kept = sum(1 for _ in decode_frames(path, (i / FPS for i in range(FPS * SECONDS))))
    else:
        sampling = FrameSampling("uniform", 32) if mode == "uniform32" else FrameSampling("fps", 64, fps=1.0)
        kept = len(read_video(path, sampling))
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"kept": kept, "seconds": seconds, "peak_rss_mb": peak_mb, "base_rss_mb": base_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--read", nargs=2, metavar=("PATH", "MODE"), help=argparse.SUPPRESS)  # the child's job
    parser.add_argument("--repeats", type=int, default=3, help="runs of each mode (the median is reported)")
    args = parser.parse_args()
    if args.read:
        print(json.dumps(read(*args.read)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        start = time.perf_counter()
        codec = make_clip(path)
        made, size = time.perf_counter() - start, path.stat().st_size / 1e6
        print(f"clip: {WIDTH}x{HEIGHT}, {SECONDS} s at {FPS} fps, {codec}, {size:.1f} MB, made in {made:.0f} s")
        results = {}
        for mode in MODES:
            runs = []
            for _ in range(args.repeats):
                child = [sys.executable, __file__, "--read", str(path), mode]
                runs.append(json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout))
            runs.sort(key=lambda run: run["seconds"])
            worst = max(runs, key=lambda run: run["peak_rss_mb"])
            results[mode] = runs[len(runs) // 2] | {key: worst[key] for key in ("peak_rss_mb", "base_rss_mb")}
        raw = results["raw"]["seconds"]
        total = FPS * SECONDS
        header = f"{'mode':<10} {'frames out':>10} {'seconds':>8} {'source fps':>10} {'vs raw':>7}"
        print(f"{header} {'peak RSS':>9} {'of it, reading':>15}")
        for mode, run in results.items():
            rate, ratio = total / run["seconds"], raw / run["seconds"]
            row = f"{mode:<10} {run['kept']:>10} {run['seconds']:>8.2f} {rate:>10.0f} {ratio:>7.2f}"
            print(f"{row} {run['peak_rss_mb']:>6.0f} MB {run['peak_rss_mb'] - run['base_rss_mb']:>12.0f} MB")


if __name__ == "__main__":
    main()
