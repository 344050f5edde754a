"""A checkpoint's own chat template: its Jinja source run as-is, in the sandbox transformers uses.

Hugging Face checkpoints ship their prompt format as a Jinja template (``chat_template.jinja``,
``chat_template.json`` or the ``chat_template`` field of ``tokenizer_config.json``, in that order of
precedence, as transformers reads them). Running that template, rather than re-typing the format as a
vlmkit ``ChatTemplate``, is the only way to prompt every family exactly as it was trained. The
environment mirrors transformers' ``_compile_jinja_template`` (facts, not code): an
``ImmutableSandboxedEnvironment`` with ``trim_blocks`` and ``lstrip_blocks``, the ``loopcontrols``
extension, a ``tojson`` filter that does not HTML-escape, and the globals ``raise_exception`` and
``strftime_now``; the named special tokens (``bos_token``, ``eos_token``, ...) are template variables.
A ``{% generation %}`` block renders its body unchanged.

Messages reach the template as transformers' multimodal processors expect them: a vision-language
model's turns are lists of ``{"type": "image"}`` and ``{"type": "text", "text": ...}`` parts (split at
vlmkit's ``<image>`` placeholders), a text-only model's turns are plain strings. Training labels come
from the rendering itself: an answer is what rendering the conversation through that answer adds to
rendering it up to the generation prompt, so the labels hold exactly the answer and the template's own
end-of-turn tokens, whatever the family.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from vlmkit.errors import CheckpointError, ConfigError, InputError
from vlmkit.processing.chat import IGNORE_INDEX, IMAGE_TOKEN, EncodedChat, image_ids, turns
from vlmkit.processing.text import TextTokenizer

# transformers' named special tokens, passed to every template as variables
SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json", "tokenizer_config.json")


def _jinja() -> Any:
    try:
        import jinja2
    except ImportError:
        raise ConfigError("running a checkpoint's chat template needs jinja2: pip install jinja2") from None
    return jinja2


def _compile(source: str) -> Any:
    jinja2 = _jinja()
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(Extension):
        """``{% generation %}...{% endgeneration %}``: the body as is (transformers marks it for masks)."""

        tags: ClassVar[set[str]] = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.Scope(body).set_lineno(lineno)

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(value: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
               sort_keys: bool = False) -> str:  # fmt: skip
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols]
    )
    environment.filters["tojson"] = tojson
    environment.globals["raise_exception"] = raise_exception
    environment.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return environment.from_string(source)
    except jinja2.exceptions.TemplateSyntaxError as error:
        raise CheckpointError(f"chat template: Jinja syntax error on line {error.lineno}: {error.message}") from None


@dataclass
class JinjaChatTemplate:
    """A Jinja chat template and the special-token strings it is rendered with."""

    source: str
    tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._template = _compile(self.source)

    def render(self, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = True) -> str:
        """The prompt text of ``messages`` (dicts whose content is a string or a list of parts)."""
        jinja2 = _jinja()
        try:
            return str(
                self._template.render(
                    messages=[dict(m) for m in messages], add_generation_prompt=add_generation_prompt, **self.tokens
                )
            )
        except jinja2.exceptions.TemplateError as error:
            raise InputError(f"chat template refused the conversation: {error}") from None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "tokens": dict(self.tokens)}

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> JinjaChatTemplate:
        source, tokens = settings.get("source"), settings.get("tokens", {})
        if not isinstance(source, str) or not isinstance(tokens, Mapping):
            raise ConfigError("chat template settings: expected {'source': str, 'tokens': {name: str}}")
        return cls(source, {str(k): str(v) for k, v in tokens.items()})


def _token_text(value: Any) -> str | None:
    if isinstance(value, Mapping):  # a serialised AddedToken
        value = value.get("content")
    return value if isinstance(value, str) else None


def _template_source(value: Any, path: Path) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):  # named templates: [{"name": ..., "template": ...}], transformers picks "default"
        named = {item.get("name"): item.get("template") for item in value if isinstance(item, Mapping)}
        if isinstance(named.get("default"), str):
            return named["default"]
    raise CheckpointError(f"{path}: field 'chat_template': expected a template string or a named 'default' one")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: not readable JSON ({error})") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return value


def read_chat_template(directory: str | Path) -> JinjaChatTemplate | None:
    """The checkpoint directory's own chat template, or None when it ships none."""
    directory = Path(directory)
    source = None
    for name in TEMPLATE_FILES:
        path = directory / name
        if not path.is_file():
            continue
        if name.endswith(".jinja"):
            source = path.read_text(encoding="utf-8")
        else:
            source = _template_source(_read_json(path).get("chat_template"), path)
        if source is not None:
            break
    if source is None:
        return None
    settings: dict[str, Any] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        if (directory / name).is_file():
            settings.update(_read_json(directory / name))
    tokens = {name: text for name in SPECIAL_TOKEN_NAMES if (text := _token_text(settings.get(name))) is not None}
    return JinjaChatTemplate(source, tokens)


def content_parts(text: str, images: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """vlmkit's ``<image>`` placeholders as multimodal content parts (``images``, when given, go into the
    image parts in order, as a transformers processor takes them).

    The newline vlmkit writes after an image (``with_image``) is its own template's layout; a content
    part list leaves layout to the checkpoint's template, so it is dropped. An empty message (a chat turn whose
    answer was empty) stays one empty text part: templates read ``content[0]``.
    """
    parts: list[dict[str, Any]] = []
    for index, piece in enumerate(text.split(IMAGE_TOKEN)):
        if index:
            parts.append({"type": "image"} if images is None else {"type": "image", "image": images[index - 1]})
            piece = piece.removeprefix("\n")
        if piece:
            parts.append({"type": "text", "text": piece})
    return parts or [{"type": "text", "text": ""}]


@dataclass
class JinjaChatEncoder:
    """``ChatEncoder``'s contract (ids, labels, images) under a checkpoint's Jinja template.

    The whole rendering is tokenised at once, as transformers tokenises it, then each image token becomes
    ``tokens_per_image`` copies, or, where ``image_layouts`` are given, the i-th image becomes the i-th layout
    (Idefics3's tiles between marker tokens, ``vlmkit.processing.image_splitting``); a single layout serves
    every image (what a processor that does not split gives each). ``multimodal`` passes turns
    as content parts (vision-language models)
    instead of strings, and tokenises as a processor's ``apply_chat_template`` does: the tokenizer's BOS
    is added unless the rendering already starts with it (a text tokenizer's adds nothing).
    """

    tokenizer: TextTokenizer
    template: JinjaChatTemplate
    image_token_id: int | None = None
    tokens_per_image: int = 0
    multimodal: bool = False
    image_layouts: Sequence[Sequence[int]] = ()

    def encode(
        self,
        messages: Sequence[Mapping[str, Any]],
        add_generation_prompt: bool = False,
        max_length: int | None = None,
    ) -> EncodedChat:
        conversation = [
            {"role": role, "content": content_parts(text) if self.multimodal else text}
            for role, text in turns(messages)
        ]
        text = self.template.render(conversation, add_generation_prompt)
        answers = self._answer_spans(conversation, text)
        encoding = self.tokenizer.tokenizer.encode(text, add_special_tokens=False)
        ids: list[int] = []
        labels: list[int] = []
        images = 0
        bos = self.tokenizer.bos_id
        if self.multimodal and bos is not None and not text.startswith(self.tokenizer.tokenizer.id_to_token(bos)):
            ids, labels = [bos], [IGNORE_INDEX]
        for token, (start, _end) in zip(encoding.ids, encoding.offsets, strict=True):
            if self.image_token_id is not None and token == self.image_token_id:
                image = self._image_ids(images)
                ids += image
                labels += [IGNORE_INDEX] * len(image)
                images += 1
                continue
            ids.append(token)
            labels.append(token if any(a <= start < b for a, b in answers) else IGNORE_INDEX)
        return EncodedChat(ids, labels, images).cut(max_length, self.image_token_id)

    def _image_ids(self, index: int) -> list[int]:
        return image_ids(index, self.image_layouts, self.image_token_id, self.tokens_per_image)

    def _answer_spans(self, conversation: list[dict[str, Any]], text: str) -> list[tuple[int, int]]:
        """Character spans of each assistant turn: its rendering minus the rendering up to its prompt."""
        spans = []
        for index, message in enumerate(conversation):
            if message["role"] != "assistant":
                continue
            before = self.template.render(conversation[:index], add_generation_prompt=True)
            through = self.template.render(conversation[: index + 1], add_generation_prompt=False)
            if not (through.startswith(before) and text.startswith(through)):
                raise InputError(
                    "this chat template does not render a conversation as growing prefixes, so its answers "
                    "cannot be found for training labels"
                )
            spans.append((len(before), len(through)))
        return spans
