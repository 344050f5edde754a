"""Reading order: lines grouped into rows by vertical overlap, rows top to bottom, left to right in a row.

This is the order of receipts, forms, invoices and single-column pages (a form's label and its value, found as
two boxes, read as one row). Multi-column prose would need column detection first; it is not done here.
"""

from __future__ import annotations

from vlmkit.documents.types import Line

ROW_OVERLAP = 0.5  # of the shorter line's height


def reading_order(lines: list[Line]) -> list[Line]:
    rows: list[list[Line]] = []
    for line in sorted(lines, key=lambda item: (item.box[1] + item.box[3]) / 2):
        top, bottom = line.box[1], line.box[3]
        if rows:
            row_top = min(other.box[1] for other in rows[-1])
            row_bottom = max(other.box[3] for other in rows[-1])
            shorter = min(bottom - top, row_bottom - row_top)
            if min(bottom, row_bottom) - max(top, row_top) >= ROW_OVERLAP * max(shorter, 1e-6):
                rows[-1].append(line)
                continue
        rows.append([line])
    return [line for row in rows for line in sorted(row, key=lambda item: item.box[0])]
