"""The JSON round trip every config shares (``ConfigBase`` and the checks behind ``from_dict``), and the
field types the model parts have in common (``Activation``).

A config file is user input, so ``from_dict`` checks each value against the dataclass field's type
hint (nested configs recurse, ``true`` is not a number, ints widen to floats) and names the field
at fault in the ConfigError, instead of letting a wrong type surface later as a shape error.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, TypeVar

from vlmkit.errors import ConfigError

Activation = Literal["quick_gelu", "gelu", "gelu_tanh", "silu"]

T = TypeVar("T", bound="ConfigBase")


class ConfigBase:
    """JSON round trip with validation: unknown or mistyped fields raise ConfigError naming them."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
        where = where or cls.__name__
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a JSON object, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(known)}")
        values = {name: _coerce(hints[name], value, f"{where}.{name}") for name, value in data.items()}
        try:
            config = cls(**values)
        except TypeError as error:  # a required field is missing
            raise ConfigError(f"{where}: {error}") from None
        config.validate(where)  # type: ignore[attr-defined]
        return config

    def validate(self, where: str) -> None:
        """Cross-field checks; subclasses extend. Raises ConfigError."""

    def checked(self: T, where: str = "") -> T:
        """This config passed through ``from_dict``: the type and range checks a config file gets, for one
        built in code from someone else's file (a converted checkpoint's)."""
        return type(self).from_dict(self.to_dict(), where)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Check ``value`` against the type ``hint`` (nested configs become dataclasses)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0])
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{where}: expected one of {list(allowed)}, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object, got {type(value).__name__}")
        _, value_hint = typing.get_args(hint)
        return {str(k): _coerce(value_hint, v, f"{where}.{k}") for k, v in value.items()}
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        (item_hint, *_) = typing.get_args(hint) or (Any,)
        items = [_coerce(item_hint, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if isinstance(hint, type) and issubclass(hint, ConfigBase):
        return hint.from_dict(value, where)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is Any or (isinstance(hint, type) and isinstance(value, hint) and not _is_bool_for_number(hint, value)):
        return value
    raise ConfigError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def _is_bool_for_number(hint: type, value: Any) -> bool:
    return hint in (int, float) and isinstance(value, bool)


# Past these a config is a typo (a width of 10**9), not a model: refused before anything is allocated,
# where the model would otherwise overflow torch's size arithmetic or build for hours. The largest
# models published have under 2e12 parameters and under 200 blocks per stack.
MAX_PARAMETERS = 10**13
MAX_LAYERS = 4096


def _positive(where: str, **values: int | float) -> None:
    """Each value must be > 0, and a float finite too (NaN and infinity are not sizes, epsilons or scales)."""
    for name, value in values.items():
        if isinstance(value, float) and not (value > 0 and math.isfinite(value)):
            raise ConfigError(f"{where}.{name}: must be a positive finite number, got {value}")
        if value <= 0:
            raise ConfigError(f"{where}.{name}: must be positive, got {value}")


def _finite(where: str, **values: float) -> None:
    for name, value in values.items():
        if not math.isfinite(value):
            raise ConfigError(f"{where}.{name}: must be a finite number, got {value}")


def _at_least_zero(where: str, **values: int) -> None:
    for name, value in values.items():
        if value < 0:
            raise ConfigError(f"{where}.{name}: must be >= 0, got {value}")


def _layers(where: str, **values: int) -> None:
    for name, value in values.items():
        if value > MAX_LAYERS:
            raise ConfigError(f"{where}.{name}: {_short(value)} blocks; vlmkit builds at most {MAX_LAYERS}")


def _patch_grid(where: str, image_size: int, patch_size: int, width: int, heads: int) -> None:
    """A transformer over image patches: whole patches, and heads that divide the width."""
    if image_size % patch_size:
        raise ConfigError(f"{where}: image_size {image_size} is not a multiple of patch_size {patch_size}")
    if width % heads:
        raise ConfigError(f"{where}: width {width} is not a multiple of heads {heads}")


def _size(where: str, parameters: int, **sizes: int) -> None:
    """Refuse a config whose (approximate) parameter count is absurd, naming the sizes that make it."""
    if parameters > MAX_PARAMETERS:
        named = ", ".join(f"{name}={_short(value)}" for name, value in sizes.items())
        raise ConfigError(
            f"{where}: {named} give {_short(parameters)} parameters, more than the 1e{len(str(MAX_PARAMETERS)) - 1} "
            "vlmkit accepts; one of these sizes is wrong"
        )


def _short(value: int) -> str:
    """An int as written, or as ``~1e40`` past a dozen digits (a typo can have hundreds)."""
    digits = len(str(abs(value)))
    return str(value) if digits <= 13 else f"~1e{digits - 1}"


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    factory: Any = None,
    flag: str | None = None,
    research: bool = False,
    cli: bool = True,
) -> Any:
    """A dataclass field that also describes its command-line flag, so each setting is declared once.

    ``help`` becomes the flag's help text; ``flag`` overrides the name derived from the field
    (``init_from`` -> ``--from``); ``research`` lists it under the research knobs in ``--help``; ``cli``
    False keeps it out of the command line (settable only through ``--config``).
    """
    metadata = {"help": help, "flag": flag, "research": research, "cli": cli}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)
