"""Sampled values (names, addresses, dates, amounts, identifiers), formatted as a page prints them.

Amounts are integer cents and dates are formatted from a table here, never by ``strftime`` or the locale, so
a page's text is the same on every machine. Each value is returned as the string the page shows, because
that string is also the ground truth a question's answer must match.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from vlmkit.data.docworld import vocab

T = TypeVar("T")

DATE_FORMATS = ("iso", "dmy_slash", "mdy_slash", "dmy_dot", "d_month_y", "month_d_y")


def pick(rng: np.random.Generator, items: Sequence[T]) -> T:
    return items[int(rng.integers(len(items)))]


def sample(rng: np.random.Generator, items: Sequence[T], k: int) -> list[T]:
    """``k`` distinct items, in the order drawn."""
    return [items[int(i)] for i in rng.choice(len(items), size=k, replace=False)]


def person(rng: np.random.Generator) -> tuple[str, str]:
    """(first name, last name)."""
    return pick(rng, vocab.FIRST_NAMES), pick(rng, vocab.LAST_NAMES)


def street(rng: np.random.Generator) -> str:
    return f"{int(rng.integers(1, 240))} {pick(rng, vocab.STREETS)}"


def city_line(rng: np.random.Generator) -> tuple[str, str]:
    """(city, "postcode city") as the last line of an address prints it."""
    city = pick(rng, vocab.CITIES)
    return city, f"{int(rng.integers(10000, 99999))} {city}"


def phone(rng: np.random.Generator) -> str:
    return f"({int(rng.integers(200, 999))}) {int(rng.integers(200, 999))}-{int(rng.integers(0, 10000)):04d}"


def email(first: str, last: str, domain: str) -> str:
    return f"{first.lower()}.{last.lower()}@{domain}"


def number(rng: np.random.Generator, prefix: str, digits: int) -> str:
    """An identifier such as INV-004213."""
    return f"{prefix}{int(rng.integers(10 ** (digits - 1), 10**digits)):0{digits}d}"


def digits(rng: np.random.Generator, groups: Sequence[int]) -> str:
    """Digit groups separated by spaces, e.g. an account number "4821 0093 77"."""
    return " ".join("".join(str(int(d)) for d in rng.integers(0, 10, size=n)) for n in groups)


def money(cents: int, thousands: bool = True) -> str:
    """12345 -> "123.45"; with ``thousands``, 123456 -> "1,234.56"."""
    whole = f"{cents // 100:,}" if thousands else str(cents // 100)
    return f"{whole}.{cents % 100:02d}"


def day(rng: np.random.Generator, first_year: int = 2019, last_year: int = 2027) -> datetime.date:
    start = datetime.date(first_year, 1, 1).toordinal()
    return datetime.date.fromordinal(start + int(rng.integers(datetime.date(last_year, 12, 31).toordinal() - start)))


def date_text(value: datetime.date, style: str) -> str:
    """``value`` in one of ``DATE_FORMATS`` (one per page, as a real document would use)."""
    d, m, y = value.day, value.month, value.year
    month = vocab.MONTHS[m - 1]
    return {
        "iso": f"{y:04d}-{m:02d}-{d:02d}",
        "dmy_slash": f"{d:02d}/{m:02d}/{y:04d}",
        "mdy_slash": f"{m:02d}/{d:02d}/{y:04d}",
        "dmy_dot": f"{d:02d}.{m:02d}.{y:04d}",
        "d_month_y": f"{d} {month} {y}",
        "month_d_y": f"{month} {d}, {y}",
    }[style]


def time_text(rng: np.random.Generator) -> str:
    return f"{int(rng.integers(7, 22)):02d}:{int(rng.integers(0, 60)):02d}"
