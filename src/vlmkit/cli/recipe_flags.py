"""Command-line flags derived from a recipe's dataclass fields, so each setting is declared once.

A field becomes ``--field-name`` (or the ``flag`` its ``option`` names), with its help text; a
``Literal`` becomes a choice, a ``bool`` a ``--flag / --no-flag`` pair, a ``list[str]`` takes several
values, a ``dict[str, float]`` ``PREFIX=NUMBER`` pairs, and ``X | None`` takes an ``X`` or ``none``.
Fields marked ``research`` are listed apart in ``--help``. The ``TrainConfig`` of every recipe is
flattened into the same parser. Every flag defaults to None, so only what the user typed overrides
the defaults or a ``--config`` file."""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from typing import Any, Literal

from vlmkit.config.base import ConfigBase

NESTED = "train"  # the recipe field whose own fields join the parser (the optimisation settings)


class _Unset:
    """What ``none`` on the command line means for an optional setting: set it to None (a flag left out
    is ``None`` in argparse, and means "keep the default or the --config value")."""

    def __repr__(self) -> str:
        return "none"


NONE = _Unset()


def _or_none(kind: type) -> Any:
    def parse(text: str) -> Any:
        return NONE if text.lower() == "none" else kind(text)

    parse.__name__ = kind.__name__  # argparse names the type in its error message
    return parse


def _prefix_value(text: str) -> tuple[str, float]:
    """``PREFIX=NUMBER`` (``projector=1e-3``): one entry of a ``dict[str, float]`` setting."""
    prefix, sep, number = text.partition("=")
    try:
        if not sep or not prefix:
            raise ValueError
        return prefix, float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected PREFIX=NUMBER (e.g. projector=1e-3), got {text!r}") from None


def _flag_type(hint: Any) -> dict[str, Any] | None:
    """argparse keywords for a field's type hint, or None when it has no flag form (a dict, a tuple)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        inner = _flag_type(options[0]) if len(options) == 1 else None
        if inner and "type" in inner and "nargs" not in inner:
            inner = {**inner, "type": _or_none(inner["type"]), "metavar": f"{inner['type'].__name__.upper()}|none"}
        return inner
    if origin is Literal:
        return {"choices": typing.get_args(hint)}
    if origin is list:
        return {"nargs": "+", "type": typing.get_args(hint)[0]}
    if origin is dict and typing.get_args(hint) == (str, float):
        return {"nargs": "+", "type": _prefix_value, "metavar": "PREFIX=NUMBER"}
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if hint in (int, float, str):
        return {"type": hint}
    return None


def _flag_name(field: dataclasses.Field) -> str:
    """``--field-name``, or the flag the field's ``option`` names (``init_from`` -> ``--from``)."""
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def _fields(config: type[ConfigBase]) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(config)
    return [(f, hints[f.name]) for f in dataclasses.fields(config) if f.metadata.get("cli", True)]  # type: ignore[arg-type]


def add_recipe_flags(parser: argparse.ArgumentParser, recipe: type[ConfigBase]) -> None:
    """One flag per settable field of ``recipe`` and of its nested ``TrainConfig``."""
    main = parser.add_argument_group("settings")
    research = parser.add_argument_group("research knobs")
    nested = typing.get_type_hints(recipe)[NESTED]
    for config in (recipe, nested):
        for field, hint in _fields(config):
            keywords = _flag_type(hint)
            if keywords is None:
                continue
            flag = _flag_name(field)
            if "metavar" in keywords and "nargs" not in keywords:  # an optional setting: NAME|none
                keywords["metavar"] = f"{flag.lstrip('-').upper().replace('-', '_')}|none"
            group = research if field.metadata.get("research") else main
            default = field.default if field.default is not dataclasses.MISSING else None
            shown = "" if default in (None, "", False) else f" (default: {default})"
            group.add_argument(
                flag, dest=field.name, default=None, help=field.metadata.get("help", "") + shown, **keywords
            )


def settings_from_flags(args: argparse.Namespace, recipe: type[ConfigBase], base: dict[str, Any]) -> dict[str, Any]:
    """``base`` (e.g. a run.json) with every flag the user gave written over it."""
    settings = dict(base)
    nested = typing.get_type_hints(recipe)[NESTED]
    train = dict(settings.get(NESTED, {}))
    for config, target in ((recipe, settings), (nested, train)):
        for field, _ in _fields(config):
            value = getattr(args, field.name, None)
            if value is not None:
                if isinstance(value, list) and value and isinstance(value[0], tuple):
                    value = dict(value)  # PREFIX=NUMBER pairs
                target[field.name] = None if value is NONE else value
    settings[NESTED] = train
    return settings


def _flags(recipe: type[ConfigBase]) -> dict[str, str]:
    """Field path (``caption_share``, ``train.steps``) -> the flag that sets it."""
    nested = typing.get_type_hints(recipe)[NESTED]
    found = {}
    for config, prefix in ((recipe, ""), (nested, f"{NESTED}.")):
        for field, hint in _fields(config):
            if _flag_type(hint) is not None:
                found[prefix + field.name] = _flag_name(field)
    return found


def name_flags(message: str, recipe: type[ConfigBase], where: str) -> str:
    """``message`` with each ``WHERE.field`` a flag sets written as that flag: ``--steps: must be positive``."""
    flags = _flags(recipe)
    pattern = re.compile(re.escape(where) + r"\.([\w.]+)")
    return pattern.sub(lambda match: flags.get(match.group(1), match.group(0)), message)
