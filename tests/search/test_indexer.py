"""The indexer: incremental updates, unreadable files, videos, and resuming after a SIGKILL.

These use a tiny random dual encoder: they check what gets embedded and stored, not what it means.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from testkit import tiny_model
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.search.indexer import index_folder
from vlmkit.search.store import SearchStore
from vlmkit.tasks import embed_images

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_model")
    save_pretrained(tiny_model(), directory)
    return directory


def photo(name: str) -> Image.Image:
    from skimage import data

    image = Image.fromarray(getattr(data, name)()).convert("RGB")
    image.thumbnail((96, 96))
    return image


def write_photos(folder: Path, names=PHOTOS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        photo(name).save(folder / f"{name}.jpg", quality=90)


def assert_index_matches(index_dir: Path, model_dir: Path, files: list[Path]) -> None:
    """The index holds exactly ``files``, once each, with their current facts and fresh embeddings."""
    model = from_pretrained(model_dir)
    with SearchStore.open(index_dir) as store:
        known = store.known_files()
        assert sorted(known) == sorted(f.resolve().as_posix() for f in files)
        assert len(store) == len(files)
        stored = store.vectors_for(sorted(known))
    expected = embed_images(model, sorted(files, key=lambda f: f.resolve().as_posix())).numpy()
    for path, vector in zip(sorted(known), expected, strict=True):
        state = known[path]
        assert (state.size, state.mtime) == (os.stat(path).st_size, os.stat(path).st_mtime)
        np.testing.assert_allclose(stored[path][0], vector, atol=1e-5)


def test_incremental_reindex(tmp_path, model_dir):
    folder, index_dir = tmp_path / "photos", tmp_path / "index"
    write_photos(folder)
    (folder / "sub").mkdir()
    photo("horse").save(folder / "sub" / "horse.png")
    first = index_folder(folder, index_dir, str(model_dir), workers=1, batch_size=2, progress=False)
    assert (first.added, first.failed) == (6, [])

    photo("coffee").save(folder / "new.jpg")  # added
    photo("rocket").rotate(90).save(folder / "chelsea.jpg")  # changed content
    (folder / "camera.jpg").unlink()  # deleted
    later = time.time() + 5
    os.utime(folder / "astronaut.jpg", (later, later))  # touched: same bytes, new mtime
    second = index_folder(folder, index_dir, str(model_dir), workers=1, batch_size=2, progress=False)
    assert (second.added, second.updated, second.reused, second.removed, second.unchanged) == (1, 2, 1, 1, 3)

    third = index_folder(folder, index_dir, str(model_dir), workers=0, progress=False)
    assert (third.added, third.updated, third.removed, third.unchanged) == (0, 0, 0, 6)
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert_index_matches(index_dir, model_dir, files)


def test_unreadable_files_are_listed_not_fatal(tmp_path, model_dir):
    folder, index_dir = tmp_path / "photos", tmp_path / "index"
    write_photos(folder, ["chelsea", "coffee"])
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.jpg").write_text("hello")
    jpeg = (folder / "coffee.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    report = index_folder(folder, index_dir, str(model_dir), workers=1, progress=False)
    assert report.added == 2
    assert sorted(Path(path).name for path, _ in report.failed) == ["empty.png", "text.jpg", "truncated.jpg"]
    assert all(Path(path).name in reason for path, reason in report.failed)

    (folder / "coffee.jpg").write_bytes(b"corrupted now")  # an indexed file that became unreadable
    again = index_folder(folder, index_dir, str(model_dir), workers=0, progress=False)
    assert again.removed == 1
    with SearchStore.open(index_dir) as store:
        assert [Path(p).name for p in store.known_files()] == ["chelsea.jpg"]


def test_video_frames_are_indexed_with_timestamps(tmp_path, model_dir):
    av = pytest.importorskip("av")
    folder, index_dir = tmp_path / "clips", tmp_path / "index"
    folder.mkdir()
    with av.open(str(folder / "clip.mp4"), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for i in range(30):  # 3 s: chelsea for 1.5 s, then the rocket
            image = photo("chelsea" if i < 15 else "rocket").resize((96, 64))
            container.mux(stream.encode(av.VideoFrame.from_image(image)))
        container.mux(stream.encode())
    report = index_folder(folder, index_dir, str(model_dir), workers=1, video_every=1.0, progress=False)
    assert (report.added, report.items, report.failed) == (1, 3, [])
    path = (folder / "clip.mp4").resolve().as_posix()
    with SearchStore.open(index_dir) as store:
        frames = store.vectors_for([path])[path]
        hits = store.search(frames[:1], k=3)[0]
    assert sorted(hit.frame_time for hit in hits) == [0.0, 1.0, 2.0]
    assert all(hit.path == path for hit in hits)


KILLED_RUN = """
import sys, time
from vlmkit.search.indexer import index_folder

def pause(report):
    print("committed", report.added, flush=True)
    time.sleep(0.4)

index_folder(sys.argv[1], sys.argv[2], sys.argv[3], batch_size=2, workers=0, progress=False, on_commit=pause)
"""


def test_sigkill_mid_run_resumes_to_a_correct_index(tmp_path, model_dir):
    folder, index_dir = tmp_path / "photos", tmp_path / "index"
    for copy in range(4):  # 20 files, 10 batches of 2
        (folder / str(copy)).mkdir(parents=True)
        for name in PHOTOS:
            photo(name).rotate(copy * 7).save(folder / str(copy) / f"{name}.jpg")
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(folder), str(index_dir), str(model_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    commits = 0
    for line in process.stdout:
        commits += line.startswith("committed")
        if commits == 3:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    with SearchStore.open(index_dir) as store:
        done = len(store.known_files())
    assert 6 <= done < 20  # committed batches survived; the run did not finish

    resumed = index_folder(folder, index_dir, str(model_dir), workers=1, progress=False)
    assert resumed.unchanged == done and resumed.added == 20 - done  # nothing committed was redone
    assert_index_matches(index_dir, model_dir, sorted(folder.rglob("*.jpg")))


def _png_with_ztxt_bomb(path: Path) -> None:
    """A valid 8x8 PNG with a zTXt chunk that inflates past Pillow's MAX_TEXT_CHUNK: ValueError at open."""
    import io
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, "PNG")
    png = buffer.getvalue()
    text = chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"a" * (2 << 20)))
    path.write_bytes(png[:33] + text + png[33:])  # right after the 33-byte signature + IHDR


def test_a_file_pillow_chokes_on_is_skipped_not_fatal(tmp_path, model_dir, capsys, monkeypatch):
    from vlmkit.cli import main

    folder, index_dir = tmp_path / "photos", tmp_path / "index"
    write_photos(folder, ["chelsea", "coffee"])
    _png_with_ztxt_bomb(folder / "bomb.png")
    command = ["index", str(folder), "--index", str(index_dir), "--model", str(model_dir), "--no-progress"]
    for _ in range(2):  # the re-run meets the same file and skips it again
        assert main([*command, "--workers", "1"]) == 0
        out = capsys.readouterr().out
        assert "1 failed" in out and "bomb.png: " in out and "Decompressed data too large" in out
    assert "2 added" not in out
    with SearchStore.open(index_dir) as store:
        assert sorted(Path(p).name for p in store.known_files()) == ["chelsea.jpg", "coffee.jpg"]

    import vlmkit.search.reader as reader

    def broken_plugin(*args, **kwargs):
        raise SyntaxError("broken PNG file")  # what some Pillow plugins raise for a bad header

    monkeypatch.setattr(reader, "load_image", broken_plugin)
    (folder / "late.jpg").write_bytes((folder / "chelsea.jpg").read_bytes()[::-1])
    report = index_folder(folder, index_dir, str(model_dir), workers=0, progress=False)
    reasons = dict(report.failed)
    assert reasons[(folder / "late.jpg").resolve().as_posix()].endswith("cannot decode (SyntaxError: broken PNG file)")
