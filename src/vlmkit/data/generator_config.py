"""What the configs of vlmkit's synthetic generators (ShapesWorld, DocWorld) share: a JSON round trip exact
enough to regenerate a dataset byte for byte from the file it carries, and one-line field checks.

A generator's config is a frozen dataclass of plain values and tuples; JSON has only lists, so ``to_dict``
writes tuples as lists and ``from_dict`` reads every list back as a tuple.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

from vlmkit.errors import ConfigError

Config = TypeVar("Config", bound="GeneratorConfig")


class GeneratorConfig:
    """Mixed into a generator's frozen dataclass config; ``LABEL`` names the generator in errors."""

    LABEL: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists); ``from_dict`` inverts it."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[Config], data: dict[str, Any]) -> Config:
        """Rebuild a config from ``to_dict`` output, naming any unknown field."""
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{cls.LABEL} config: unknown field(s) {unknown}; expected some of {sorted(known)}")
        return cls(**{name: _tupled(value) for name, value in data.items()})

    def check(self, ok: bool, name: str, expected: str, got: Any) -> None:
        if not ok:
            raise ConfigError(f"{self.LABEL} config field {name!r}: expected {expected}, got {got!r}")


def _jsonable(value: Any) -> Any:
    return [_jsonable(v) for v in value] if isinstance(value, tuple) else value


def _tupled(value: Any) -> Any:
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value
