"""``vlmkit chat`` as a person types into it: /help lists the commands (the model never sees it), unknown
/commands are caught, /image PATH shows an image with the next turn, and Ctrl-D ends the chat on a fresh line."""

from __future__ import annotations

import io

import pytest
from PIL import Image

import vlmkit
from tiny_vlm import tiny_vlm
from vlmkit.checkpoints import save_pretrained
from vlmkit.cli import main
from vlmkit.models.generation import GenerationConfig


class Terminal(io.StringIO):
    """Typed input: ``isatty`` is true, so ``vlmkit chat`` prompts and reads as in a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def chat_argv(tmp_path, photo_files):
    save_pretrained(tiny_vlm(), tmp_path / "vlm")
    return ["chat", str(photo_files[0]), "--model", str(tmp_path / "vlm"), "--max-new-tokens", "3"]


def _sent(monkeypatch, images: list | None = None) -> list[str]:
    """The texts ``vlmkit chat`` sends to the model; with ``images``, also the image each turn brings."""
    from vlmkit.tasks.chat import Chat

    sent: list[str] = []
    send = Chat.send

    def recording(self, text, stream=False, image=None):
        sent.append(text)
        if images is not None:
            images.append(image)
        return send(self, text, stream, image)

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


def test_image_command_shows_an_image_with_the_next_turn(chat_argv, photo_files, monkeypatch, capsys):
    """The answers are those of ``Chat.send(text, image=...)`` in Python: the image goes with the next turn only."""
    images: list = []
    sent = _sent(monkeypatch, images)
    second = photo_files[1]
    typed = f"/help\n/image {second}\nwhat is it ?\nand now ?\n/quit\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(typed))
    assert main(chat_argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(line.strip().startswith("/image PATH") for line in out)  # documented in /help
    assert f"({second} is shown with the next turn)" in out
    assert sent == ["what is it ?", "and now ?"]
    assert isinstance(images[0], Image.Image) and images[0].size == Image.open(second).size and images[1] is None
    from vlmkit.tasks.chat import Chat

    chat = Chat(vlmkit.load(chat_argv[3]), str(photo_files[0]), config=GenerationConfig(max_new_tokens=3))
    expected = [chat.send("what is it ?", image=str(second)), chat.send("and now ?")]
    assert out[-2:] == expected
    # the first turn shows the chat's image and the one /image named; the second turn none
    assert chat.history[0]["content"].count("<image>") == 2 and "<image>" not in chat.history[2]["content"]


def test_a_chat_can_start_without_an_image_and_take_one(chat_argv, photo_files, monkeypatch, capsys):
    images: list = []
    _sent(monkeypatch, images)
    monkeypatch.setattr("sys.stdin", Terminal(f"hi\n/image {photo_files[0]}\nwhat is it ?\n"))
    assert main([chat_argv[0], *chat_argv[2:]]) == 0  # no image on the command line
    out = capsys.readouterr().out
    assert out.startswith("chatting (no image yet: /image PATH shows one)")
    assert images[0] is None and isinstance(images[1], Image.Image)


def test_a_bad_image_command_is_told_and_the_chat_goes_on(chat_argv, tmp_path, monkeypatch, capsys):
    images: list = []
    sent = _sent(monkeypatch, images)
    (tmp_path / "notes.png").write_text("not a picture")
    typed = f"/image\n/image {tmp_path / 'missing.png'}\n/image {tmp_path / 'notes.png'}\nhello\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(typed))
    assert main(chat_argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("usage: /image PATH")
    assert "missing.png" in out[1] and out[1].endswith("the chat goes on without it")
    assert "notes.png" in out[2] and out[2].endswith("the chat goes on without it")
    assert sent == ["hello"] and images == [None]
