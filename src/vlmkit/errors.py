"""The few exception types vlmkit raises on purpose.

Every error a user can cause (a bad file, a bad config, a bad argument) is a ``VlmkitError`` whose
message names the thing at fault and what was expected. The CLI prints that one line and exits
non-zero; anything else escaping is a bug in vlmkit, not in the user's input.
"""


class VlmkitError(Exception):
    """Base class: a problem the user can fix, described in one line."""


class ConfigError(VlmkitError):
    """A config file or config field is missing, mistyped or out of range."""


class CheckpointError(VlmkitError):
    """A weights file or model directory cannot be used (missing, corrupt, wrong keys or shapes)."""


class InputError(VlmkitError):
    """An input (image, text, label list, dataset record) is unreadable or invalid."""
