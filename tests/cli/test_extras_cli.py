"""Missing optional extras end in one line naming ``pip install 'vlmkit[EXTRA]'``, checked before any work."""

from __future__ import annotations

import json
import sys

import pytest

from vlmkit.cli import main, require
from vlmkit.errors import ConfigError


def test_require_names_the_extra_to_install(monkeypatch):
    require("json", "plot")  # importable: nothing happens
    monkeypatch.setitem(sys.modules, "faiss", None)  # as if faiss-cpu were not installed
    with pytest.raises(ConfigError) as caught:
        require("faiss", "search")
    message = str(caught.value)
    assert "faiss, which is not installed" in message and "pip install 'vlmkit[search]'" in message
    assert "\n" not in message


def test_require_tells_a_broken_install_from_a_missing_one(tmp_path, monkeypatch):
    (tmp_path / "half_installed.py").write_text("import no_such_dependency_of_it\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"half_installed, which cannot be imported \(No module named"):
        require("half_installed", "video")


def _run_dir(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 1 / s}) + "\n" for s in (1, 2, 3)))
    return run


def test_plot_without_matplotlib_is_one_line(tmp_path, monkeypatch, capsys):
    run = _run_dir(tmp_path)
    for name in ("matplotlib", "matplotlib.pyplot"):
        monkeypatch.setitem(sys.modules, name, None)
    assert main(["plot", str(run)]) == 2
    err = capsys.readouterr().err
    expected = "plotting needs matplotlib, which is not installed; install it with: pip install 'vlmkit[plot]'"
    assert err == f"vlmkit plot: error: {expected}\n"
    assert not (run / "metrics.png").exists()
    assert main(["plot", str(tmp_path / "not-a-run")]) == 2  # the extra is checked before anything else
    assert "vlmkit[plot]" in capsys.readouterr().err


def test_plot_with_matplotlib(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    run = _run_dir(tmp_path)
    assert main(["plot", str(run)]) == 0
    assert (run / "metrics.png").stat().st_size > 0
