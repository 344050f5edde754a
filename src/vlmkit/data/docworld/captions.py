"""A one-line description of a page, from its fields: what a person would say the document is.

It gives DocWorld records ``captions``, so the LLaVA align stage (which learns from captions) runs on
documents as it does on ShapesWorld, and a caption model learns to name a page's kind and its parties.
"""

from __future__ import annotations

from collections.abc import Mapping


def caption(kind: str, fields: Mapping[str, str]) -> str:
    if kind == "invoice":
        return f"an invoice from {fields['seller']} to {fields['customer']}"
    if kind == "receipt":
        return f"a receipt from {fields['shop']}"
    if kind == "letter":
        return f"a letter from {fields['sender']} to {fields['recipient']}"
    if kind in ("form", "table"):
        return f"a {kind}: {fields['title']}"
    raise ValueError(f"no caption rule for DocWorld kind {kind!r}")
