"""Invoices: seller header beside the invoice details, a bill-to block, a line-item table, totals, terms.

The seller's address lines and the invoice details (number, dates) share baselines row by row, so reading
order (by baseline, then left to right) alternates between them, as a row-by-row reader would; when the two
blocks would not fit side by side, the details follow the address instead. The item
table has one shaded header row and one line per cell.
"""

from __future__ import annotations

from itertools import zip_longest

import numpy as np

from vlmkit.data.docworld import values, vocab
from vlmkit.data.docworld.canvas import Canvas, Table
from vlmkit.data.docworld.config import DocWorldConfig
from vlmkit.data.docworld.fonts import Font
from vlmkit.data.docworld.layout import A4, Drawn, Style, key_value

TAX_RATES = (0, 5, 10, 19, 20)
COLUMNS = ("Description", "Qty", "Unit price", "Amount")
COLUMN_RIGHTS = (None, 0.56, 0.74, None)
"""Right edges of the numeric columns as fractions of the width (the amount column ends at the margin)."""


def draw(rng: np.random.Generator, style: Style, config: DocWorldConfig) -> Drawn:
    width = config.page_width
    margin = round(width * 0.07)
    right = width - margin
    canvas = Canvas(width, round(width * A4), style.ink)
    body, bold = style.font(), style.font(style="bold")
    pitch = style.pitch()
    page = Drawn(canvas)

    seller = values.pick(rng, vocab.COMPANIES)
    number = values.number(rng, values.pick(rng, ("INV-", "INV", "")), int(rng.integers(4, 7)))
    date_style = values.pick(rng, values.DATE_FORMATS)
    issued = values.day(rng)
    due = values.date_text(issued.fromordinal(issued.toordinal() + int(rng.integers(7, 61))), date_style)
    issued_text = values.date_text(issued, date_style)

    y = margin + style.cap * 2
    canvas.write(margin, y, seller, style.font(1.4, "bold"))
    canvas.write(right, y, "INVOICE", style.font(2.0, "bold"), "right")
    y += style.pitch(1.6)
    seller_lines = [values.street(rng), values.city_line(rng)[1], f"Phone {values.phone(rng)}"]
    seller_lines.append(f"VAT no. {values.number(rng, '', 9)}")
    details = [("Invoice number:", number), ("Invoice date:", issued_text), ("Due date:", due)]
    gap = style.cap * 1.5
    widest = max(canvas.measure(label, body) + gap + canvas.measure(value, body) for label, value in details)
    label_x = min(width * 0.5, right - widest)
    beside = margin + max(canvas.measure(text, body) for text in seller_lines) + gap <= label_x
    rows = (
        zip_longest(seller_lines, details)
        if beside
        else [*((t, None) for t in seller_lines), *((None, d) for d in details)]
    )
    for left, detail in rows:
        if left:
            canvas.write(margin, y, left, body)
        if detail:
            key_value(canvas, (label_x, right, y), detail[0], detail[1], (body, body), "right")
        y += pitch
    y += pitch * 0.8

    first, last = values.person(rng)
    customer = f"{first} {last}"
    canvas.write(margin, y, "Bill to:", bold)
    y += pitch
    title = values.pick(rng, vocab.TITLES)
    bill_to = (f"{title} {customer}", values.pick(rng, vocab.COMPANIES), values.street(rng), values.city_line(rng)[1])
    for text in bill_to:
        canvas.write(margin, y, text, body)
        y += pitch
    y += pitch

    table, subtotal, lookups = _items(rng, canvas, style, y, margin, right)
    page.tables.append(table)
    y += style.pitch(1.1) * (len(lookups) + 1) + pitch * 0.3
    rate = values.pick(rng, TAX_RATES)
    tax = round(subtotal * rate / 100)
    total = values.money(subtotal + tax)
    for label, value, font in (
        ("Subtotal", values.money(subtotal), body),
        (f"Tax ({rate}%)", values.money(tax), body),
        ("Total due", total, bold),
    ):
        key_value(canvas, (width * 0.5, right, y), label, value, (font, font), "right")
        y += pitch
    y += pitch
    terms = values.pick(rng, vocab.PAYMENT_TERMS)
    account = values.digits(rng, (4, 4, 4, 2))
    canvas.write(margin, y, f"Payment terms: {terms}", body)
    canvas.write(margin, y + pitch, f"Account number: {account}", body)
    canvas.write(margin, y + pitch * 2, "Thank you for your business", body)

    page.fields = {
        "seller": seller,
        "customer": customer,
        "invoice number": number,
        "invoice date": issued_text,
        "due date": due,
        "subtotal": values.money(subtotal),
        "tax": values.money(tax),
        "total": total,
        "payment terms": terms,
        "account number": account,
    }
    description, quantity, unit, amount = lookups[int(rng.integers(len(lookups)))]
    lookup = values.pick(
        rng,
        (
            (f"What is the amount for {description}?", amount),
            (f"What is the quantity of {description}?", quantity),
            (f"What is the unit price of {description}?", unit),
        ),
    )
    page.questions = [
        ("What is the invoice number?", number, "invoice number"),
        ("What is the total due?", total, "total"),
        ("When is the payment due?", due, "due date"),
        ("What is the date of the invoice?", issued_text, "date"),
        ("Who is the invoice billed to?", customer, "customer"),
        ("Which company issued the invoice?", seller, "seller"),
        ("What is the account number for payment?", account, "account number"),
        (*lookup, "table lookup"),
    ]
    return page


def _items(
    rng: np.random.Generator, canvas: Canvas, style: Style, top: float, margin: float, right: float
) -> tuple[Table, int, list[tuple[str, str, str, str]]]:
    """The line-item table from baseline ``top``: (table, subtotal in cents, its rows as printed)."""
    body, bold = style.font(), style.font(style="bold")
    row_pitch = style.pitch(1.1)
    edges = [right if f is None else canvas.width * f for f in COLUMN_RIGHTS]

    def cell(row: int, col: int, y: float, text: str, font: Font) -> None:
        if col == 0:
            table.cells.append((row, col, canvas.write(margin, y, text, font)))
        else:
            table.cells.append((row, col, canvas.write(edges[col], y, text, font, "right")))

    canvas.shade((margin - style.cap * 0.4, top - style.cap * 1.5, right + style.cap * 0.4, top + style.cap * 0.7))
    table = Table(header_rows=1)
    for col, name in enumerate(COLUMNS):
        cell(0, col, top, name, bold)
    subtotal, rows = 0, []
    for row, (description, low, high) in enumerate(values.sample(rng, vocab.SERVICES, int(rng.integers(2, 9))), 1):
        unit = int(rng.integers(low, high + 1))
        quantity = int(rng.integers(1, 13 if high <= 10000 else 4))
        subtotal += unit * quantity
        printed = (description, str(quantity), values.money(unit), values.money(unit * quantity))
        y = top + row_pitch * row
        for col, text in enumerate(printed):
            cell(row, col, y, text, body)
        canvas.rule(margin, right, y + style.cap * 0.7)
        rows.append(printed)
    return table, subtotal, rows
