"""DocWorld: synthetic document pages (receipts, invoices, forms, letters, tables) with exact ground truth.

Pages are drawn from a seed with real fonts, optionally put through a simulated scan (skew, blur, uneven
lighting, noise, JPEG), and annotated from the drawing itself: every word's box in the final image (the
``vlmkit.documents`` schema), key-value fields, table cells, and DocVQA-style questions whose answers are
printed on the page. Module map: config (knobs), fonts (DejaVu faces by cap height), vocab (word lists),
values (names, dates, amounts as printed), canvas (drawing that keeps word boxes; reading order), layout
(style, wrapping, what a kind returns), receipt / invoice / form / letter / table (the five kinds),
degrade (the scan, and the boxes through it), page (one page end to end), generate (folders, workers).
"""

from vlmkit.data.docworld.config import GENERATOR, GENERATOR_VERSION, KINDS, SPLITS, DocWorldConfig
from vlmkit.data.docworld.degrade import Scan
from vlmkit.data.docworld.generate import CONFIG_FILE, generate_split
from vlmkit.data.docworld.page import make_page

__all__ = [
    "CONFIG_FILE",
    "GENERATOR",
    "GENERATOR_VERSION",
    "KINDS",
    "SPLITS",
    "DocWorldConfig",
    "Scan",
    "generate_split",
    "make_page",
]
