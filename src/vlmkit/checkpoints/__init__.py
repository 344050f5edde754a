"""Saving and loading model directories, and converting other libraries' checkpoints."""

from vlmkit.checkpoints.io import from_pretrained, save_pretrained

__all__ = ["from_pretrained", "save_pretrained"]
