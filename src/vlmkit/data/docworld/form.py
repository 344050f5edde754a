"""Forms: a title, an instruction, sections of labelled fields filled in, a signature and date at the foot.

Each field is one row: the label ("Date of birth:") and the filled-in value are two lines on one baseline,
the value in another face (and sometimes in block capitals) as if written by the person filling it in, over a
light underline. Fields keep the order of ``FIELDS``, the order real forms ask in.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vlmkit.data.docworld import values, vocab
from vlmkit.data.docworld.canvas import Canvas
from vlmkit.data.docworld.config import DocWorldConfig
from vlmkit.data.docworld.fonts import Font
from vlmkit.data.docworld.layout import A4, Drawn, Style

Person = tuple[str, str]
Filler = Callable[[np.random.Generator, Person], str]

FIELDS: tuple[tuple[str, str, Filler], ...] = (
    ("Personal details", "Date of birth", lambda rng, _: values.date_text(values.day(rng, 1945, 2006), "dmy_slash")),
    ("Personal details", "Nationality", lambda rng, _: values.pick(rng, vocab.NATIONALITIES)),
    ("Personal details", "Marital status", lambda rng, _: values.pick(rng, vocab.MARITAL)),
    ("Personal details", "Occupation", lambda rng, _: values.pick(rng, vocab.OCCUPATIONS)),
    ("Contact information", "Address", lambda rng, _: values.street(rng)),
    ("Contact information", "City", lambda rng, _: values.pick(rng, vocab.CITIES)),
    ("Contact information", "Postal code", lambda rng, _: values.number(rng, "", 5)),
    ("Contact information", "Phone number", lambda rng, _: values.phone(rng)),
    ("Contact information", "Email", lambda _, person: values.email(*person, "mail.example")),
    ("Account details", "Account number", lambda rng, _: values.digits(rng, (4, 4, 2))),
    ("Account details", "Customer ID", lambda rng, _: values.number(rng, "C-", 6)),
    ("Account details", "Policy number", lambda rng, _: values.number(rng, "POL-", 7)),
    ("Additional information", "Employer", lambda rng, _: values.pick(rng, vocab.COMPANIES)),
    ("Additional information", "Amount requested", lambda rng, _: values.money(int(rng.integers(10000, 2500000)))),
)
"""(section, label, how to fill it for the person the form is about); the full name always comes first."""

PEN_FACES = (("mono", "regular"), ("serif", "italic"), ("sans", "italic"), ("sans", "regular"))
"""Faces for filled-in values: anything but the page's own face, so values look written in."""


def draw(rng: np.random.Generator, style: Style, config: DocWorldConfig) -> Drawn:
    width = config.page_width
    margin = round(width * 0.08)
    right = width - margin
    canvas = Canvas(width, round(width * A4), style.ink)
    label_font, bold = style.font(), style.font(style="bold")
    pen = [face for face in PEN_FACES if face != (style.family, "regular")][int(rng.integers(len(PEN_FACES) - 1))]
    value_font = style.font(1.05, pen[1], pen[0])
    pen_ink = int(rng.integers(0, 70))
    pitch = style.pitch()
    page = Drawn(canvas)

    title = values.pick(rng, vocab.FORM_TITLES)
    note = values.pick(rng, vocab.FORM_NOTES)
    capitals = note == vocab.FORM_NOTES[0]
    y = margin + style.cap * 2.5
    canvas.write(width / 2, y, title, style.font(1.8, "bold"), "center")
    y += style.pitch(1.5)
    canvas.write(width / 2, y, note, style.font(style="italic"), "center")
    y += pitch * 1.5

    first, last = values.person(rng)
    chosen = sorted(int(i) for i in rng.choice(len(FIELDS), size=int(rng.integers(5, 9)), replace=False))
    rows = [(FIELDS[0][0], "Full name", f"{first} {last}")]
    rows += [(FIELDS[i][0], FIELDS[i][1], FIELDS[i][2](rng, (first, last))) for i in chosen]
    if capitals:
        rows = [(section, label, value.upper()) for section, label, value in rows]
    value_x = margin + (right - margin) * 0.34
    for number, (section, label, value) in enumerate(rows):
        if number == 0 or section != rows[number - 1][0]:
            y += pitch * 0.5
            canvas.write(margin, y, section, bold)
            canvas.rule(margin, right, y + style.cap * 0.6)
            y += pitch * 1.4
        _field(canvas, (margin, value_x, right, y), label, value, (label_font, value_font), pen_ink, style)
        page.fields[label.lower()] = value
        y += pitch * 1.45

    signed = values.date_text(values.day(rng), values.pick(rng, values.DATE_FORMATS))
    y += pitch
    canvas.write(margin, y, "Signature:", label_font)
    canvas.rule(value_x, right, y + style.cap * 0.45)
    y += pitch * 1.6
    _field(canvas, (margin, value_x, right, y), "Date", signed, (label_font, value_font), pen_ink, style)
    page.fields["title"] = title
    page.fields["date"] = signed

    page.questions = [(f"What is the {label.lower()}?", value, "form field") for _, label, value in rows]
    page.questions += [
        ("What is the title of the form?", title, "title"),
        ("When was the form signed?", signed, "date"),
    ]
    return page


def _field(
    canvas: Canvas,
    at: tuple[float, float, float, float],
    label: str,
    value: str,
    fonts: tuple[Font, Font],
    ink: int,
    style: Style,
) -> None:
    """One filled-in row: "Label:" at ``at[0]``, the value at ``at[1]`` over an underline to ``at[2]``."""
    x, value_x, right, y = at
    canvas.write(x, y, f"{label}:", fonts[0])
    canvas.write(value_x, y, value, fonts[1], ink=ink)
    canvas.rule(value_x, right, y + style.cap * 0.45)
