"""The README walked through by a newcomer: ``benchmarks/newcomer.sh`` in a fresh virtual environment.

Slow (it installs torch and vlmkit into a temp venv from the package index, minutes), so the default
suite skips it; run it with ``pytest -m slow tests/test_newcomer.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "newcomer.sh"


@pytest.mark.slow
def test_the_readme_walk_passes_from_a_fresh_venv(tmp_path):
    if shutil.which("bash") is None:
        pytest.skip("the walk is a bash script")
    # sys.executable may be a venv's python: `python -m venv` takes its base interpreter, never its packages.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(TMPDIR=str(tmp_path), PYTHON=sys.executable)
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=3600, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    assert "newcomer walk: passed" in done.stdout
