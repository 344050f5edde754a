"""Progress bars in a log print whole lines, never a carriage-return stream."""

from __future__ import annotations

import io
import sys

from vlmkit import progress as progress_module


def test_a_bar_written_to_a_log_is_whole_lines(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    monkeypatch.setattr(progress_module, "DELAY_S", 0.0)
    for _ in progress_module.progress(range(5), desc="work", unit="item", mininterval=0, delay=0):
        pass
    text = log.getvalue()
    assert "\r" not in text and text.endswith("\n")
    assert text.splitlines()[-1].startswith("work: 100%") and "5/5" in text.splitlines()[-1]
