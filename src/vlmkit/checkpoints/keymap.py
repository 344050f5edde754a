"""Declarative key maps: build a vlmkit state dict from another library's tensors, with shape checks.

A map is a list of ``Rule``s, each naming one vlmkit key, the source keys it is made from and how
(copy, concatenate q/k/v into a fused projection, transpose, reshape a scalar). Applying a map
checks every shape against the vlmkit model and reports every missing, unexpected or mis-shaped
tensor by name in one error, instead of failing on the first inside ``load_state_dict``.

Every transformer tower vlmkit converts has the same blocks (``norm1``, fused ``attn.qkv``,
``attn.out``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``); ``block_rules`` writes their map once, from a
table of the other library's names, so a converter states only what differs: its names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from vlmkit.errors import CheckpointError


@dataclass(frozen=True)
class Rule:
    target: str
    sources: tuple[str, ...]
    op: str = "copy"  # copy | concat (along dim 0) | transpose | reshape


def copy(target: str, source: str) -> Rule:
    return Rule(target, (source,))


def concat(target: str, *sources: str) -> Rule:
    return Rule(target, tuple(sources), "concat")


def transpose(target: str, source: str) -> Rule:
    return Rule(target, (source,), "transpose")


def reshape(target: str, source: str) -> Rule:
    return Rule(target, (source,), "reshape")


BlockNames = Mapping[str, str | tuple[str, ...]]
"""Our parameter name in a block (``attn.qkv``) to theirs, or to the several theirs concatenated."""


def block_rules(
    ours: str, theirs: str, layers: int, names: BlockNames, params: tuple[str, ...] = ("weight", "bias")
) -> list[Rule]:
    """The key map of ``layers`` blocks: ``{ours}.{i}.{name}.{param}`` from ``{theirs}.{i}.{their name}``.

    Rules come block by block, then parameter kind by kind, then in the order of ``names``. Their
    name takes the kind after a dot (``mlp.fc1.weight``), or directly when it ends in ``_``
    (``nn.MultiheadAttention``'s ``attn.in_proj_weight``). A tuple of names is concatenated in order
    (separate q, k and v projections into the fused ``qkv``).
    """
    rules = []
    for i in range(layers):
        o, t = f"{ours}.{i}", f"{theirs}.{i}"
        for p in params:
            for name, source in names.items():
                target = f"{o}.{name}.{p}"
                if isinstance(source, str):
                    rules.append(copy(target, _their_key(t, source, p)))
                else:
                    rules.append(concat(target, *(_their_key(t, s, p) for s in source)))
    return rules


def _their_key(block: str, name: str, param: str) -> str:
    return f"{block}.{name}{param}" if name.endswith("_") else f"{block}.{name}.{param}"


_OPS: dict[str, Callable[[list[torch.Tensor], torch.Size], torch.Tensor]] = {
    "copy": lambda tensors, shape: tensors[0],
    "concat": lambda tensors, shape: torch.cat(tensors, dim=0),
    "transpose": lambda tensors, shape: tensors[0].t(),
    "reshape": lambda tensors, shape: tensors[0].reshape(shape) if tensors[0].numel() == shape.numel() else tensors[0],
}


def apply_rules(
    rules: Iterable[Rule],
    source: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Tensor],
    where: str,
    ignore: Callable[[str], bool] = lambda key: False,
) -> dict[str, torch.Tensor]:
    """Build the state dict ``expected`` describes (by keys and shapes) from ``source``.

    ``ignore`` names source keys that may be present without being used (buffers such as
    ``position_ids`` that older checkpoints carry).
    """
    rules = list(rules)
    result: dict[str, torch.Tensor] = {}
    missing: list[str] = []
    misshaped: list[str] = []
    mistyped: list[str] = []
    used: set[str] = set()
    for rule in rules:
        absent = [key for key in rule.sources if key not in source]
        if absent:
            missing.extend(absent)
            continue
        used.update(rule.sources)
        parts = [source[key] for key in rule.sources]
        wrong_dtype = [
            f"{key} {issue}"
            for key, t in zip(rule.sources, parts, strict=True)
            if (issue := dtype_problem(t, expected[rule.target]))
        ]
        if wrong_dtype:
            mistyped.extend(wrong_dtype)
            continue
        try:
            tensor = _OPS[rule.op](parts, expected[rule.target].shape)
        except RuntimeError:  # e.g. q, k and v projections whose shapes cannot be concatenated
            shapes = " + ".join(str(tuple(t.shape)) for t in parts)
            misshaped.append(f"{'+'.join(rule.sources)} have shapes {shapes}, which do not make {rule.target}")
            continue
        if tensor.shape != expected[rule.target].shape:
            misshaped.append(
                f"{'+'.join(rule.sources)} has shape {tuple(tensor.shape)}, expected "
                f"{tuple(expected[rule.target].shape)} for {rule.target}"
            )
            continue
        result[rule.target] = tensor.contiguous()
    unmapped_targets = sorted(set(expected) - {rule.target for rule in rules})
    unexpected = sorted(key for key in source if key not in used and not ignore(key))
    problems = []
    if missing:
        problems.append(f"missing tensors: {_names(missing)}")
    if misshaped:
        problems.append(f"wrong shapes: {'; '.join(misshaped[:5])}{' ...' if len(misshaped) > 5 else ''}")
    if mistyped:
        problems.append(f"wrong dtypes: {'; '.join(mistyped[:5])}{' ...' if len(mistyped) > 5 else ''}")
    if unexpected:
        problems.append(f"unexpected tensors: {_names(unexpected)}")
    if unmapped_targets:
        problems.append(f"no rule for vlmkit tensors: {_names(unmapped_targets)} (a bug in the key map)")
    if problems:
        raise CheckpointError(f"{where}: " + "; ".join(problems))
    return result


def key_prefix(keys: Iterable[str], suffix: str, what: str, where: str) -> str:
    """The one prefix that ``keys`` ending in ``suffix`` share: finds where a part of a checkpoint lives, so
    each key layout of a family loads without listing the layouts."""
    found = sorted({key[: -len(suffix)] for key in keys if key.endswith(suffix)})
    if len(found) != 1:
        raise CheckpointError(f"{where}: cannot find the {what} (expected one key ending in {suffix!r}, found {found})")
    return found[0]


def invert_rules(
    rules: Iterable[Rule],
    tensors: Mapping[str, torch.Tensor],
    split: Callable[[Rule, torch.Tensor], Sequence[int]],
) -> dict[str, torch.Tensor]:
    """The other library's state dict from a vlmkit one: each rule run backwards (exporting).

    A copy is copied, a transpose transposed back, and a concatenation split along dim 0 into the row
    counts ``split`` gives for it (only the exporter knows, e.g., how many rows of a fused q/k/v are
    queries). A reshape cannot be undone without the other library's shape and is refused.
    """
    result: dict[str, torch.Tensor] = {}
    for rule in rules:
        tensor = tensors[rule.target]
        if rule.op == "copy":
            parts = [tensor]
        elif rule.op == "transpose":
            parts = [tensor.t()]
        elif rule.op == "concat":
            parts = list(torch.split(tensor, list(split(rule, tensor)), dim=0))
        else:
            raise CheckpointError(f"{rule.target}: a {rule.op} rule cannot be exported (no shape to undo it to)")
        result.update({key: part.contiguous() for key, part in zip(rule.sources, parts, strict=True)})
    return result


def dtype_problem(tensor: torch.Tensor, expected: torch.Tensor) -> str:
    """Why ``tensor`` cannot stand for ``expected`` by its dtype ("" when it can): a model's float weight
    needs a floating-point tensor (any width: loading keeps it), an integer buffer an integer one."""
    if tensor.is_floating_point() == expected.is_floating_point() and tensor.is_complex() == expected.is_complex():
        return ""
    kind = "floating-point" if expected.is_floating_point() else str(expected.dtype).removeprefix("torch.")
    return f"has dtype {str(tensor.dtype).removeprefix('torch.')}, expected {kind}"


def _names(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return f"{shown} (+{len(keys) - limit} more)" if len(keys) > limit else shown


def load_mapped(
    model: nn.Module,
    rules: Iterable[Rule],
    source: Mapping[str, torch.Tensor],
    where: str,
    ignore: Callable[[str], bool] = lambda key: False,
) -> None:
    """Fill ``model`` (built once, on the meta device) with ``source`` converted by ``rules``.

    ``apply_rules`` checks every key and shape against this same model, so the assignment is exact.
    """
    model.load_state_dict(apply_rules(rules, source, model.state_dict(), where, ignore), strict=True, assign=True)


def unprefixed(prefix: str, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors whose keys start with ``prefix``, without it (one tower of a whole model's state)."""
    return {key.removeprefix(prefix): value for key, value in tensors.items() if key.startswith(prefix)}


def prefixed(prefix: str, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors with ``prefix`` put before every key (a tower's state placed in a whole model's)."""
    return {prefix + key: value for key, value in tensors.items()}
