"""``vlmkit chat`` as a person types into it: /help lists the commands (the model never sees it), unknown
/commands are caught, and Ctrl-D ends the chat on a fresh line."""

from __future__ import annotations

import io

import pytest

from tiny_vlm import tiny_vlm
from vlmkit.checkpoints import save_pretrained
from vlmkit.cli import main


class Terminal(io.StringIO):
    """Typed input: ``isatty`` is true, so ``vlmkit chat`` prompts and reads as in a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def chat_argv(tmp_path, photo_files):
    save_pretrained(tiny_vlm(), tmp_path / "vlm")
    return ["chat", str(photo_files[0]), "--model", str(tmp_path / "vlm"), "--max-new-tokens", "3"]


def _sent(monkeypatch) -> list[str]:
    from vlmkit.tasks.chat import Chat

    sent: list[str] = []
    send = Chat.send

    def recording(self, text, stream=False):
        sent.append(text)
        return send(self, text, stream)

    monkeypatch.setattr(Chat, "send", recording)
    return sent


def test_help_lists_the_commands_and_never_reaches_the_model(chat_argv, monkeypatch, capsys):
    sent = _sent(monkeypatch)
    monkeypatch.setattr("sys.stdin", io.StringIO("/help\n/nosuch\nhello\n/quit\n"))
    assert main(chat_argv) == 0
    out = capsys.readouterr().out
    assert all(command in out for command in ("/help", "/reset", "/quit", "Ctrl-D"))
    assert "unknown command /nosuch" in out
    assert sent == ["hello"]


def test_ctrl_d_in_a_terminal_ends_on_a_fresh_line(chat_argv, monkeypatch, capsys):
    sent = _sent(monkeypatch)
    monkeypatch.setattr("sys.stdin", Terminal("hi\n\n"))  # a turn, an empty line (ignored), then Ctrl-D
    assert main(chat_argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("chatting about") and "/help" in out.splitlines()[0]
    assert out.endswith("> \n")  # the last prompt, then the newline Ctrl-D did not type
    assert sent == ["hi"]


def test_end_of_piped_input_ends_quietly(chat_argv, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\n"))
    assert main(chat_argv) == 0
    out = capsys.readouterr().out
    assert "> " not in out and out.count("\n") == 1  # no prompts when piped: just the answer
