"""Business letters: sender block, date, recipient address, subject, salutation, wrapped paragraphs, closing.

The body is wrapped greedily; every value a question asks about (a reference, a date, an amount) is an
unbreakable chunk followed by more words, so it stays on one line and never carries punctuation with it.
Paragraphs after the first are added only while they fit above the closing, so no page overflows.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from vlmkit.data.docworld import values, vocab
from vlmkit.data.docworld.canvas import Canvas
from vlmkit.data.docworld.config import DocWorldConfig
from vlmkit.data.docworld.layout import A4, Drawn, Style, wrap


def _facts(rng: np.random.Generator, date_style: str, city: str) -> list[tuple[list[str], str, str, str]]:
    """Sentences stating one value each: (chunks, the value, its question, the question type)."""
    reference = values.number(rng, "REF-", 5)
    meeting = values.date_text(values.day(rng), date_style)
    amount = values.money(int(rng.integers(1500, 250000)))
    return [
        (
            ["Please", "quote", "reference", reference, "in", "all", "correspondence."],
            reference,
            "What reference number should be quoted?",
            "reference",
        ),
        (
            ["We", "look", "forward", "to", "seeing", "you", "on", meeting, "at", "our", city, "office."],
            meeting,
            "On what date is the meeting?",
            "meeting date",
        ),
        (
            ["The", "amount", "of", amount, "will", "be", "charged", "to", "your", "account."],
            amount,
            "What amount will be charged?",
            "amount",
        ),
    ]


def draw(rng: np.random.Generator, style: Style, config: DocWorldConfig) -> Drawn:
    width = config.page_width
    height = round(width * A4)
    margin = round(width * 0.1)
    right = width - margin
    canvas = Canvas(width, height, style.ink)
    body, bold = style.font(), style.font(style="bold")
    pitch = style.pitch()
    page = Drawn(canvas)

    sender_first, sender_last = values.person(rng)
    sender = f"{sender_first} {sender_last}"
    job = values.pick(rng, vocab.JOB_TITLES)
    company = values.pick(rng, vocab.COMPANIES)
    sender_city, sender_city_line = values.city_line(rng)
    date_style = values.pick(rng, values.DATE_FORMATS)
    date = values.date_text(values.day(rng), date_style)
    on_right = bool(rng.random() < 0.5)
    block_x = width * 0.58 if on_right else margin
    y = margin + style.cap * 2
    canvas.write(block_x, y, company, bold)
    for text in (values.street(rng), sender_city_line, f"Phone {values.phone(rng)}"):
        y += pitch
        canvas.write(block_x, y, text, body)
    y += pitch * 1.5
    canvas.write(block_x if on_right else right, y, date, body, "left" if on_right else "right")
    y += pitch * 1.5

    title = values.pick(rng, vocab.TITLES)
    first, last = values.person(rng)
    recipient = f"{first} {last}"
    city, city_line = values.city_line(rng)
    for text in (f"{title} {recipient}", values.street(rng), city_line):
        canvas.write(margin, y, text, body)
        y += pitch
    y += pitch
    subject = values.pick(rng, vocab.LETTER_SUBJECTS)
    canvas.write(margin, y, f"Subject: {subject}", bold)
    y += pitch * 1.5
    canvas.write(margin, y, f"Dear {title} {last},", body)
    y += pitch * 1.4

    facts = values.sample(rng, _facts(rng, date_style, sender_city), int(rng.integers(1, 3)))
    first_paragraph = values.pick(rng, vocab.LETTER_OPENINGS).split(" ")
    for chunks, *_ in facts:
        first_paragraph += chunks
    sentences = values.sample(rng, vocab.LETTER_SENTENCES, 9)
    cuts = [0, *np.cumsum(rng.integers(2, 4, size=3)).tolist()]
    paragraphs = [first_paragraph] + [" ".join(sentences[a:b]).split(" ") for a, b in pairwise(cuts)]
    closing_height = pitch * 5
    line_pitch = pitch * 0.85
    for number, paragraph in enumerate(paragraphs):
        lines = wrap(paragraph, body, right - margin)
        if number and y + len(lines) * line_pitch + closing_height > height - margin:
            break
        for text in lines:
            canvas.write(margin, y, text, body)
            y += line_pitch
        y += line_pitch * 0.6
    y += pitch * 0.4
    _closing(canvas, rng, style, (margin, y), (sender, job, company))

    page.fields = {
        "sender": sender,
        "sender title": job,
        "sender company": company,
        "recipient": recipient,
        "date": date,
        "subject": subject,
    }
    page.fields.update({kind: value for _, value, _, kind in facts})
    page.questions = [
        ("Who is the letter addressed to?", recipient, "recipient"),
        ("Who signed the letter?", sender, "sender"),
        ("What is the date of the letter?", date, "date"),
        ("What is the subject of the letter?", subject, "subject"),
        ("What is the job title of the sender?", job, "sender title"),
        ("In which city does the recipient live?", city, "recipient city"),
        *[(question, value, kind) for _, value, question, kind in facts],
    ]
    return page


def _closing(
    canvas: Canvas, rng: np.random.Generator, style: Style, at: tuple[float, float], sender: tuple[str, str, str]
) -> None:
    """The closing phrase, room for a signature, then the sender's name, job title and company."""
    x, y = at
    canvas.write(x, y, values.pick(rng, vocab.LETTER_CLOSINGS), style.font())
    y += style.pitch() * 2.4
    for text in sender:
        canvas.write(x, y, text, style.font())
        y += style.pitch() * 0.8
