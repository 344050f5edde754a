"""The text a dataset record carries for its page: a ``document`` in ``Document.to_dict()`` form (DocWorld's
ground truth, or what ``vlmkit read --json`` printed), read back as lines in reading order."""

from __future__ import annotations

from vlmkit.data.records import Record
from vlmkit.documents.types import Document
from vlmkit.errors import InputError


def page_lines(record: Record) -> list[str]:
    document = record.extra.get("document")
    if not isinstance(document, dict):
        raise InputError(f"{record.image}: the record has no `document` (its page's text, as DocWorld writes it)")
    return [line.text for page in Document.from_dict(document).pages for line in page.lines]


def page_text(record: Record) -> str:
    """The page's text in reading order, a line per line: what reading the page (``<OCR>``) should give."""
    return "\n".join(page_lines(record))
