"""Which model embeds an index: resolving ids, the offline default, loading once per id.

An index remembers the id of the model that built it (its manifest's ``model_id``); queries must be
embedded by that same model, or scores mean nothing. Ids are canonical so the check is exact: a
local directory becomes its absolute path, ``vlmkit:NAME`` and hub ids stay as written.
"""

from __future__ import annotations

import functools
from pathlib import Path

from torch import nn

from vlmkit.checkpoints import from_pretrained
from vlmkit.errors import InputError
from vlmkit.tasks.embed import check_dual_encoder

DEFAULT_MODEL = "vlmkit:conse-effnet-minilm"


def canonical_model_id(source: str) -> str:
    """A directory as its absolute POSIX path; anything else (``vlmkit:NAME``, a hub id) as written."""
    path = Path(source).expanduser()
    if not source.startswith("vlmkit:") and path.is_dir():
        return path.resolve().as_posix()
    return source


@functools.lru_cache(maxsize=2)
def _load(model_id: str, device: str) -> nn.Module:
    return from_pretrained(model_id, device=device)


def load_search_model(
    model: str | nn.Module | None, model_id: str | None = None, default: str | None = None, device: str = "cpu"
) -> tuple[nn.Module, str]:
    """``(model, id)``: a loaded model needs ``model_id``; a string is loaded on ``device`` (cached per process).

    ``default`` is the model an existing index was built with: None means it, and naming another is
    an ``InputError``. Without an index, None means ``DEFAULT_MODEL``.
    """
    if isinstance(model, nn.Module):
        if not model_id:
            raise InputError("a loaded model needs model_id, the name the index records for it")
        return model, model_id
    source = canonical_model_id(model or default or DEFAULT_MODEL)
    if default is not None and source != default:  # checked before loading: a wrong model costs nothing
        raise InputError(f"the index was built with model {default}; you asked for {source}")
    loaded = _load(source, device)
    try:
        check_dual_encoder(loaded)
    except InputError as error:
        raise InputError(f"model {source}: {error}") from None
    return loaded, source
