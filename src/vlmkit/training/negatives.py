"""Hard negative captions: a true caption with one word swapped for another of the same kind.

"a red star above a blue circle" becomes "a red heart above a blue circle": the same sentence, now
false. Scored against the image next to the true caption (``losses``: extra columns), it forces the
towers to tell apart exactly the concept that was swapped, which in-batch negatives never do when some
easier cue already separates a batch's captions.

Any single replacement inside a group of mutually exclusive words (colour names, shape names, size
words) changes which objects the caption claims, so the result is false for the image it came from.
The article before the swapped word is corrected ("a red" -> "an orange"), or the text tower could
spot negatives by their grammar alone, without looking at the image.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from vlmkit.data.shapesworld.language import with_article
from vlmkit.errors import ConfigError


class WordSwapper:
    """Makes a caption false by replacing one word from ``groups`` with another word of its group."""

    def __init__(self, groups: Sequence[Sequence[str]]) -> None:
        self.group_of: dict[str, tuple[str, ...]] = {}
        for group in groups:
            words = tuple(dict.fromkeys(group))
            if len(words) < 2:
                raise ConfigError(f"hard negatives: word group {list(group)} needs at least two distinct words")
            for word in words:
                if word in self.group_of:
                    raise ConfigError(f"hard negatives: {word!r} is in more than one word group")
                self.group_of[word] = words
        alternation = "|".join(sorted(map(re.escape, self.group_of), key=len, reverse=True))
        self.pattern = re.compile(rf"(?:\b(an?) )?\b({alternation})\b")

    def __call__(self, caption: str, rng: random.Random) -> str | None:
        """``caption`` with one swappable word replaced, or None when it has none."""
        found = list(self.pattern.finditer(caption))
        if not found:
            return None
        match = rng.choice(found)
        word = match.group(2)
        replacement = rng.choice([w for w in self.group_of[word] if w != word])
        if match.group(1):
            replacement = with_article(replacement)
        return caption[: match.start()] + replacement + caption[match.end() :]
