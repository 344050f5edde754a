"""Saving and loading model directories, and converting other libraries' checkpoints.

``save`` writes a directory, ``load`` reads one (converting Hugging Face checkpoints through ``hf``
and open_clip ones through ``openclip``), ``builtin`` builds the ``vlmkit:NAME`` models into
``cache_root()``; the per-library key maps sit in files named for the library, all written with
``keymap``.
"""

from vlmkit.checkpoints.builtin import PREFIX, cache_root, ensure_offline_model
from vlmkit.checkpoints.load import from_pretrained, resolve
from vlmkit.checkpoints.save import save_pretrained

__all__ = ["PREFIX", "cache_root", "ensure_offline_model", "from_pretrained", "resolve", "save_pretrained"]
