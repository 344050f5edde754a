"""An index directory's ``manifest.json``: what made its vectors, and the proof that a directory is an index.

The manifest is written last and atomically by every commit, so its presence marks a complete index, and
it names the model that built the vectors, so a query with another model is refused instead of
returning nonsense.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vlmkit.errors import InputError
from vlmkit.files import atomic_write_json

MANIFEST = "manifest.json"
FORMAT = "vlmkit-search-index"
FORMAT_VERSION = 1


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of the index at ``directory``, checked for format and version."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise InputError(f"no search index at {directory} ({MANIFEST} is missing)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"{path} is not a readable JSON manifest: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{path} is not a vlmkit search index manifest (format != {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"{path} has format_version {manifest.get('format_version')}; this vlmkit reads {FORMAT_VERSION}"
        )
    return manifest


def write_manifest(directory: Path, fields: Mapping[str, Any]) -> None:
    """The manifest with ``fields`` (model id, dimension, options, index facts, counts), atomically."""
    atomic_write_json(directory / MANIFEST, {"format": FORMAT, "format_version": FORMAT_VERSION, **fields})


def check_model(directory: Path, manifest: Mapping[str, Any], model_id: str | None) -> None:
    """Refuse ``model_id`` (when given) unless it built the index."""
    if model_id is not None and manifest["model_id"] != model_id:
        raise InputError(f"index at {directory} was built with model {manifest['model_id']}; you asked for {model_id}")
