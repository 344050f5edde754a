"""Real fonts, sized by cap height, from the DejaVu family that matplotlib ships.

DejaVu is free, covers every character the word lists use, and comes with matplotlib, so no font has to be
downloaded or found on the system (which would make pages differ from machine to machine). Fonts are sized
by cap height, the height of "H", because that is what makes small print readable or not, whatever the face.
Text is laid out with Pillow's basic layout engine rather than Raqm: it needs no HarfBuzz, and the bytes
then do not depend on which HarfBuzz a machine has.
"""

from __future__ import annotations

import functools
from pathlib import Path

from PIL import ImageFont

from vlmkit.errors import ConfigError

FAMILIES: dict[str, dict[str, str]] = {
    "sans": {"regular": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf", "italic": "DejaVuSans-Oblique.ttf"},
    "serif": {"regular": "DejaVuSerif.ttf", "bold": "DejaVuSerif-Bold.ttf", "italic": "DejaVuSerif-Italic.ttf"},
    "mono": {
        "regular": "DejaVuSansMono.ttf",
        "bold": "DejaVuSansMono-Bold.ttf",
        "italic": "DejaVuSansMono-Oblique.ttf",
    },
}
"""Family -> style -> file in matplotlib's ``fonts/ttf`` folder."""

Font = ImageFont.FreeTypeFont


@functools.cache
def font_dir() -> Path:
    """matplotlib's TrueType folder, or one line saying how to install the extra that brings it."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(
            "DocWorld draws with the DejaVu fonts matplotlib ships, and matplotlib is not installed; "
            "install it with: pip install 'vlmkit[docs]'"
        ) from None
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    missing = sorted({name for styles in FAMILIES.values() for name in styles.values()} - _names(folder))
    if missing:
        raise ConfigError(f"{folder}: matplotlib's font folder lacks {missing}; reinstall matplotlib")
    return folder


def _names(folder: Path) -> set[str]:
    return {path.name for path in folder.glob("*.ttf")}


@functools.lru_cache(maxsize=512)
def _load(name: str, size: int) -> Font:
    return ImageFont.truetype(str(font_dir() / name), size, layout_engine=ImageFont.Layout.BASIC)


@functools.cache
def _cap_ratio(name: str) -> float:
    """Cap height per pixel of font size (0.73 for every DejaVu face, measured rather than assumed)."""
    top = _load(name, 100).getbbox("H", anchor="ls")[1]
    return -top / 100


def font(family: str, style: str, cap_height: float) -> Font:
    """The ``family`` face in ``style`` (regular, bold, italic) whose capitals are ``cap_height`` pixels tall."""
    name = FAMILIES[family][style]
    return _load(name, max(4, round(cap_height / _cap_ratio(name))))
