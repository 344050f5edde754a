"""Receipts: a narrow till slip, shop header, item lines with prices, totals, payment, a footer.

The slip is 0.6 of the page width and as long as its contents, like paper torn off a roll. Item lines are one
table of two columns (the item with its quantity, the amount), with no header row, as printed.
"""

from __future__ import annotations

import numpy as np

from vlmkit.data.docworld import values, vocab
from vlmkit.data.docworld.canvas import Canvas, Table
from vlmkit.data.docworld.config import DocWorldConfig
from vlmkit.data.docworld.layout import Drawn, Style, key_value

TAX_RATES = (5, 7, 8, 10, 20)
WIDTH = 0.6
"""Slip width as a fraction of ``page_width``."""


def draw(rng: np.random.Generator, style: Style, config: DocWorldConfig) -> Drawn:
    width = round(config.page_width * WIDTH)
    margin = round(width * 0.06)
    right = width - margin
    canvas = Canvas(width, width * 5, style.ink)
    body, title = style.font(), style.font(1.5, "bold")
    pitch = style.pitch()
    page = Drawn(canvas)

    shop = values.pick(rng, vocab.SHOPS)
    phone = values.phone(rng)
    y = margin + style.cap * 1.5
    canvas.write(width / 2, y, shop, title, "center")
    y += style.pitch(1.4)
    for text in (values.street(rng), values.city_line(rng)[1], f"Tel {phone}"):
        canvas.write(width / 2, y, text, body, "center")
        y += pitch
    y += pitch * 0.5

    date = values.date_text(values.day(rng), values.pick(rng, values.DATE_FORMATS))
    time = values.time_text(rng)
    number = values.number(rng, "", 6)
    cashier = values.pick(rng, vocab.FIRST_NAMES)
    canvas.write(margin, y, f"Date: {date}", body)
    canvas.write(right, y, time, body, "right")
    y += pitch
    canvas.write(margin, y, f"Receipt no. {number}", body)
    y += pitch
    canvas.write(margin, y, f"Cashier: {cashier}", body)
    y += pitch * 0.6
    canvas.rule(margin, right, y)
    y += pitch * 1.1

    table = Table(header_rows=0)
    subtotal = 0
    items = values.sample(rng, vocab.RECEIPT_ITEMS, int(rng.integers(3, 11)))
    amounts = []
    for row, (name, low, high) in enumerate(items):
        quantity = 1 if rng.random() < 0.7 else int(rng.integers(2, 5))
        amount = quantity * int(rng.integers(low, high + 1))
        subtotal += amount
        amounts.append((name, values.money(amount)))
        text = name if quantity == 1 else f"{quantity} x {name}"
        table.cells.append((row, 0, canvas.write(margin, y, text, body)))
        table.cells.append((row, 1, canvas.write(right, y, values.money(amount), body, "right")))
        y += pitch
    page.tables.append(table)
    y -= pitch * 0.4
    canvas.rule(margin, right, y)
    y += pitch * 1.1

    rate = values.pick(rng, TAX_RATES)
    tax = round(subtotal * rate / 100)
    total = values.money(subtotal + tax)
    for label, value in (("Subtotal", values.money(subtotal)), (f"Tax {rate}%", values.money(tax))):
        key_value(canvas, (margin, right, y), label, value, (body, body), "right")
        y += pitch
    big = style.font(1.25, "bold")
    key_value(canvas, (margin, right, y), "TOTAL", total, (big, big), "right")
    y += style.pitch(1.25)
    payment = values.pick(rng, vocab.PAYMENTS)
    if payment == "CASH":
        tendered = -(-(subtotal + tax) // 1000) * 1000
        key_value(canvas, (margin, right, y), payment, values.money(tendered), (body, body), "right")
        y += pitch
        key_value(canvas, (margin, right, y), "CHANGE", values.money(tendered - subtotal - tax), (body, body), "right")
    else:
        card = f"{payment} **** {values.digits(rng, (4,))}"
        key_value(canvas, (margin, right, y), card, total, (body, body), "right")
    y += pitch * 1.6
    canvas.write(width / 2, y, values.pick(rng, vocab.RECEIPT_FOOTERS), body, "center")
    canvas.crop_height(round(y + style.cap + margin * 2))

    page.fields = {
        "shop": shop,
        "phone": phone,
        "date": date,
        "time": time,
        "receipt number": number,
        "cashier": cashier,
        "subtotal": values.money(subtotal),
        "tax": values.money(tax),
        "total": total,
        "payment": payment,
    }
    page.questions = [
        ("What is the total amount?", total, "total"),
        ("What is the name of the shop?", shop, "shop name"),
        ("On what date was this receipt issued?", date, "date"),
        ("What is the receipt number?", number, "receipt number"),
        ("How much tax was charged?", values.money(tax), "tax"),
        ("Who was the cashier?", cashier, "cashier"),
        *[(f"How much was paid for {name}?", amount, "item price") for name, amount in amounts[:2]],
    ]
    return page
