"""The package version, in a module of its own so that subpackages (``checkpoints`` writes it into
every ``config.json``) can read it without importing the package root, which imports them.

Keep it equal to ``version`` in ``pyproject.toml``.
"""

__version__ = "0.1.0"
