"""PP-OCRv4 through onnxruntime: DB text detection, then CTC recognition of each detected line.

Detection uses ``rapidocr-onnxruntime``'s detector (its pre- and post-processing of the DB probability map
are the reference ones). Recognition is run here on the same ONNX model because the words need what
rapidocr's output drops: the CTC frame of every character. From the frames come the word boxes and the
spaces the model leaves out on small English text (PP-OCRv4's dictionary is mostly Chinese; it often
emits "ofgrey" for "of grey"): a gap between two characters much wider than the line's usual character
pitch is a space. Facts used: the recogniser takes BGR crops 48 px high, normalised to [-1, 1], width
padded to at least 320; its output has one frame per 8 input columns, class 0 is the CTC blank, then the
dictionary stored in the model's ``character`` metadata, then a space.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
from PIL import Image

from vlmkit.documents.types import Line, Word
from vlmkit.errors import ConfigError

REC_HEIGHT = 48
REC_MIN_WIDTH = 320
FRAME_COLUMNS = 8  # input columns per output frame
BATCH = 8
# a character gap this many times the line's median pitch (and at least MIN_SPACE_FRAMES) is a space
SPACE_PITCH = 1.9
MIN_SPACE_FRAMES = 4


def _rapidocr_root() -> Path:
    try:
        import rapidocr_onnxruntime
    except ImportError:
        raise ConfigError(
            "the ppocr engine needs rapidocr-onnxruntime, which is not installed; "
            "install it with: pip install 'vlmkit[docs]'"
        ) from None
    return Path(rapidocr_onnxruntime.__file__).parent


def _quad_crop(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """The text line inside ``quad`` (4 corners clockwise from top-left), warped upright."""
    import cv2

    width = int(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[2] - quad[3])))
    height = int(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2])))
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    return cv2.warpPerspective(
        image, matrix, (max(width, 1), max(height, 1)), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC
    )


def _is_space(previous: tuple[str, int, float], char: tuple[str, int, float], pitch: float) -> bool:
    """A space the recogniser left out between two letters: a gap much wider than the line's pitch, or a
    sentence break (``background.These``) or a comma before a word (``Here,the``); ``np.zeros`` and ``1,000``
    stay whole."""
    gap = char[1] - previous[1]
    if gap >= MIN_SPACE_FRAMES and gap > SPACE_PITCH * pitch:
        return True
    after_stop = previous[0] in ".!?;:" and char[0].isupper()
    return after_stop or (previous[0] == "," and char[0].isalpha())


def _split_words(chars: list[tuple[str, int, float]]) -> list[list[tuple[str, int, float]]]:
    """Characters (text, frame, probability) grouped into words at emitted spaces and at missing ones."""
    pitch = _pitch(chars)
    words: list[list[tuple[str, int, float]]] = [[]]
    for previous, char in zip([None, *chars], chars, strict=False):
        if char[0] == " ":
            words.append([])
            continue
        if previous is not None and previous[0] != " " and _is_space(previous, char, pitch):
            words.append([])
        words[-1].append(char)
    return [word for word in words if word]


class PPOCREngine:
    """PP-OCRv4 (mobile det + rec) on CPU; one instance holds both ONNX sessions."""

    name = "ppocr"

    def __init__(self, threads: int | None = None) -> None:
        root = _rapidocr_root()
        import onnxruntime
        from rapidocr_onnxruntime.ch_ppocr_det import TextDetector
        from rapidocr_onnxruntime.utils import read_yaml

        config = read_yaml(root / "config.yaml")
        # PaddleOCR's own detection defaults rather than rapidocr's: no dilation of the probability map (it
        # merges the tightly spaced lines of a book page, and the merged region is then dropped) and the
        # longest side scaled to 960 / 1500 / 2000 by page size.
        detector_config = {
            **config["Det"],
            "model_path": str(root / config["Det"]["model_path"]),
            "use_dilation": False,
            "limit_type": "max",
        }
        if threads:
            detector_config["intra_op_num_threads"] = threads
        self.detector = TextDetector(detector_config)
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.recogniser = onnxruntime.InferenceSession(
            str(root / config["Rec"]["model_path"]), options, providers=["CPUExecutionProvider"]
        )
        dictionary = self.recogniser.get_modelmeta().custom_metadata_map["character"].splitlines()
        self.classes = ["", *dictionary, " "]

    def read(self, image: Image.Image) -> list[Line]:
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        quads, _ = self.detector(bgr)
        if quads is None or len(quads) == 0:
            return []
        crops = [_quad_crop(bgr, quad) for quad in quads]
        lines = []
        for quad, crop, chars in zip(quads, crops, self._recognise(crops), strict=True):
            line = self._line(quad, crop, chars)
            if line is not None:
                lines.append(line)
        return lines

    def _recognise(self, crops: list[np.ndarray]) -> list[list[tuple[str, int, float]]]:
        """Each crop's characters as (text, CTC frame, probability); a frame covers FRAME_COLUMNS resized columns."""
        import cv2

        widths = [max(1, math.ceil(REC_HEIGHT * c.shape[1] / max(c.shape[0], 1))) for c in crops]
        order = np.argsort(widths)  # similar widths share a batch: less padding
        results: list[list[tuple[str, int, float]]] = [[] for _ in crops]
        for start in range(0, len(crops), BATCH):
            members = order[start : start + BATCH]
            width = max(REC_MIN_WIDTH, *(widths[i] for i in members))
            batch = np.zeros((len(members), 3, REC_HEIGHT, width), np.float32)
            for row, index in enumerate(members):
                resized = cv2.resize(crops[index], (widths[index], REC_HEIGHT)).astype(np.float32)
                batch[row, :, :, : widths[index]] = resized.transpose(2, 0, 1) / 127.5 - 1.0
            probabilities = self.recogniser.run(None, {self.recogniser.get_inputs()[0].name: batch})[0]
            for row, index in enumerate(members):
                results[index] = self._decode(probabilities[row])
        return results

    def _decode(self, frames: np.ndarray) -> list[tuple[str, int, float]]:
        """Greedy CTC: the best class per frame, repeats merged, blanks dropped."""
        best = frames.argmax(axis=1)
        keep = best != 0
        keep[1:] &= best[1:] != best[:-1]
        return [(self.classes[best[t]], int(t), float(frames[t, best[t]])) for t in np.flatnonzero(keep)]

    def _line(self, quad: np.ndarray, crop: np.ndarray, chars: list[tuple[str, int, float]]) -> Line | None:
        """A Line whose word boxes are the characters' column spans mapped onto the quad's axis-aligned box."""
        if not chars:
            return None
        x0, y0 = float(quad[:, 0].min()), float(quad[:, 1].min())
        x1, y1 = float(quad[:, 0].max()), float(quad[:, 1].max())
        resized_width = max(1, math.ceil(REC_HEIGHT * crop.shape[1] / max(crop.shape[0], 1)))
        # page pixels per frame: frames -> resized columns -> crop columns -> the quad's horizontal extent
        per_frame = FRAME_COLUMNS * (crop.shape[1] / resized_width) * ((x1 - x0) / max(crop.shape[1], 1))
        half = _pitch(chars) * per_frame / 2
        result = []
        for word in _split_words(chars):
            left = max(x0, x0 + (word[0][1] + 0.5) * per_frame - half)
            right = min(x1, x0 + (word[-1][1] + 0.5) * per_frame + half)
            text = "".join(c for c, _, _ in word)
            confidence = float(np.mean([p for _, _, p in word]))
            result.append(Word(text, (left, y0, right, y1), confidence))
        return Line(tuple(result))


def _pitch(chars: list[tuple[str, int, float]]) -> float:
    """The line's median distance between neighbouring letters in frames (about a character's width)."""
    steps = [b[1] - a[1] for a, b in itertools.pairwise(chars) if a[0] != " " and b[0] != " "]
    return float(np.median(steps)) if steps else 2.0
