"""PP-OCRv4 through onnxruntime: DB text detection, then CTC recognition of each detected line.

Detection uses ``rapidocr-onnxruntime``'s detector (its pre- and post-processing of the DB probability map
are the reference ones). Recognition is run here on the same ONNX model because the words need what
rapidocr's output drops: the CTC frame of every character. The frames place each character in the line's
crop; the crop's ink shows the gaps between them, so the words get tight boxes and the spaces the model
leaves out come back (PP-OCRv4's dictionary is mostly Chinese; it reads "Invoicenumber4471" and
"ofgrey" as often as not). Facts used: the recogniser takes BGR crops 48 px high, normalised to [-1, 1], width
padded to at least 320; its output has one frame per 8 input columns, class 0 is the CTC blank, then the
dictionary stored in the model's ``character`` metadata, then a space.
"""

from __future__ import annotations

import itertools
import math
import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image

from vlmkit.documents.types import Line, Word
from vlmkit.errors import ConfigError

REC_HEIGHT = 48
REC_MIN_WIDTH = 320
FRAME_COLUMNS = 8  # input columns per output frame
BATCH = 8
# A line's gaps in the ink between letters fall in two groups, letter gaps and word gaps, whose sizes depend
# on the font (DejaVu leaves ~0.15 crop heights between letters, a book face ~0.05; a word space is
# ~0.2-0.5). The split is the widest jump in the sorted gaps, if it is a jump of SPACE_JUMP or more to a gap of
# at least SPACE_HEIGHTS crop heights; a line whose model emitted all its spaces has no such jump.
SPACE_HEIGHTS = 0.17
SPACE_JUMP = 1.45
NARROW = frozenset(".,:;'\"-/()%")
NARROW_FACTOR = 1.3


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


Char = tuple[str, float, float]  # text, column in the crop, probability


def _resized_width(crop: np.ndarray) -> int:
    """The crop's width once scaled to the recogniser's height, its aspect kept."""
    return max(1, math.ceil(REC_HEIGHT * crop.shape[1] / max(crop.shape[0], 1)))


def ink_columns(crop: np.ndarray) -> np.ndarray:
    """Which columns of a line crop hold ink: a pixel darker than halfway between ink and paper."""
    grey = crop.mean(axis=2) if crop.ndim == 3 else crop.astype(np.float32)
    ink, paper = np.percentile(grey, 5), np.percentile(grey, 95)
    if paper - ink < 30:  # no contrast: nothing to separate
        return np.ones(grey.shape[1], bool)
    return (grey < (ink + paper) / 2).any(axis=0)


def _blank_run(inked: np.ndarray, start: float, stop: float) -> tuple[int, float]:
    """The longest run of ink-free columns strictly between two character centres: (length, its middle)."""
    best, middle, run = 0, (start + stop) / 2, 0
    for column in range(int(start) + 1, min(int(stop), len(inked))):
        run = 0 if inked[column] else run + 1
        if run > best:
            best, middle = run, column - (run - 1) / 2
    return best, middle


def _is_break(previous: Char, char: Char) -> bool:
    """A sentence break (``background.These``) or a comma before a word (``Here,the``); ``np.zeros`` and
    ``1,000`` stay whole."""
    after_stop = previous[0] in ".!?;:" and char[0].isupper()
    return after_stop or (previous[0] == "," and char[0].isalpha())


def _narrow_pair(previous: Char, char: Char) -> bool:
    """Neighbours whose ink gap overstates the space between them: punctuation is narrow, and so is a
    monospaced face's ``1``, so ``28.99`` and ``11,805`` show wide gaps inside one word. Such pairs are left
    out when the line's space width is found (a wide enough gap still splits them)."""
    both_digits = previous[0].isdigit() and char[0].isdigit()
    return both_digits or previous[0] in NARROW or char[0] in NARROW


def _split_words(chars: list[Char], inked: np.ndarray, height: float) -> list[tuple[list[Char], float, float]]:
    """Characters grouped into words, each with its column span. A word ends at an emitted space, at a
    sentence break, or where the ink between two letters leaves a gap wide for this line (the recogniser
    often drops spaces: PP-OCRv4's dictionary is mostly Chinese)."""
    letters = [char for char in chars if char[0] != " "]
    spaced = [index > 0 and chars[index - 1][0] == " " for index, char in enumerate(chars) if char[0] != " "]
    gaps = [_blank_run(inked, a[1], b[1]) for a, b in itertools.pairwise(letters)]
    narrow = [_narrow_pair(a, b) for a, b in itertools.pairwise(letters)]
    space = _space_width(sorted(gap for (gap, _), skip in zip(gaps, narrow, strict=True) if not skip), height)
    words: list[tuple[list[Char], float, float]] = []
    current, left = letters[:1], 0.0
    for index, char in enumerate(letters[1:], start=1):
        gap, middle = gaps[index - 1]
        if spaced[index] or gap >= space or _is_break(letters[index - 1], char):
            words.append((current, left, middle))
            current, left = [], middle
        current.append(char)
    if current:
        words.append((current, left, float(len(inked))))
    return words


def _space_width(gaps: list[int], height: float) -> float:
    """The narrowest gap that is a space in this line (``inf``: none is), from its sorted letter gaps."""
    best, width = SPACE_JUMP, math.inf
    for below, gap in itertools.pairwise(gaps):
        jump = gap / max(below, 0.5)
        if gap >= SPACE_HEIGHTS * height and jump >= best:
            best, width = jump, float(gap)
    return width


def _ink_span(inked: np.ndarray, left: float, right: float) -> tuple[float, float]:
    """The first and last inked column in [left, right) (the span itself when it has no ink)."""
    low = int(left)
    columns = np.flatnonzero(inked[low : max(low + 1, math.ceil(right))])
    if columns.size == 0:
        return left, right
    return float(low + columns[0]), float(low + columns[-1] + 1)


class PPOCREngine:
    """PP-OCRv4 (mobile det + rec) on CPU; one instance holds both ONNX sessions."""

    name = "ppocr"

    def __init__(self) -> None:
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
        self.detector = TextDetector(detector_config)
        self.recogniser = onnxruntime.InferenceSession(
            str(root / config["Rec"]["model_path"]), providers=["CPUExecutionProvider"]
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

        widths = [_resized_width(crop) for crop in crops]
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
        # NFKC: the dictionary's full-width forms ("（", "："), frequent in its Chinese training data, as ASCII
        return [
            (unicodedata.normalize("NFKC", self.classes[best[t]]), int(t), float(frames[t, best[t]]))
            for t in np.flatnonzero(keep)
        ]

    def _line(self, quad: np.ndarray, crop: np.ndarray, frames: list[tuple[str, int, float]]) -> Line | None:
        """A Line of words whose boxes are their inked column spans, mapped onto the quad's axis-aligned box."""
        if not frames:
            return None
        height, width = crop.shape[:2]
        per_frame = FRAME_COLUMNS * width / _resized_width(crop)  # crop columns per CTC frame
        chars = [(text, (t + 0.5) * per_frame, p) for text, t, p in frames]
        inked = ink_columns(crop)
        x0, y0 = float(quad[:, 0].min()), float(quad[:, 1].min())
        x1, y1 = float(quad[:, 0].max()), float(quad[:, 1].max())
        along = (x1 - x0) / max(width, 1)  # page pixels per crop column
        words = []
        for letters, left, right in _split_words(chars, inked, height):
            start, stop = _ink_span(inked, left, right)
            text = "".join(c for c, _, _ in letters)
            confidence = float(np.mean([p for _, _, p in letters]))
            words.append(Word(text, (x0 + start * along, y0, x0 + stop * along, y1), confidence))
        return Line(tuple(words))
