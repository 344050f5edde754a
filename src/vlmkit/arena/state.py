"""The arena server's state. A battle: two distinct models drawn at random answer one prompt, shown as "A" and "B"
until the vote.

``Arena`` holds the served models (one ``serving.chat.ChatService`` each: its own worker thread,
batching and streaming, as ``vlmkit serve`` runs them), the battles waiting for their vote, and the
vote store. Which model is A and which is B stays on the server: a battle is known to the page only by
a random id, its text arrives labelled by side, and the names leave the server only in the answer to
the battle's one vote, once both answers are complete.

Battles waiting for a vote are kept in memory, at most ``MAX_PENDING`` of them (the oldest are
forgotten first), so a page that never votes costs nothing lasting.
"""

from __future__ import annotations

import random
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from vlmkit.arena.votes import VoteStore
from vlmkit.errors import ConfigError
from vlmkit.models import VisionLanguageModel
from vlmkit.serving.chat import ChatService
from vlmkit.serving.errors import ApiError
from vlmkit.serving.limits import ServerLimits
from vlmkit.serving.metrics import Metrics

SIDES = ("a", "b")
MAX_PENDING = 10_000


@dataclass
class PendingBattle:
    """One battle's secret (the models per side) and which of its answers are complete."""

    id: str
    models: dict[str, str]  # side -> model id
    done: set[str] = field(default_factory=set)
    voted: bool = False


class Arena:
    """The models, the pending battles and the votes of one arena server."""

    def __init__(self, models: Mapping[str, VisionLanguageModel], votes: VoteStore, limits: ServerLimits) -> None:
        if len(models) < 2:
            raise ConfigError(f"arena: needs at least two models to compare, got {len(models)}")
        self.models = dict(models)
        self.votes = votes
        self.limits = limits
        self.metrics = Metrics()
        self.services: dict[str, ChatService] = {}
        self.pending: OrderedDict[str, PendingBattle] = OrderedDict()
        self.lock = threading.Lock()
        self.random = random.SystemRandom()  # the pairing must not be predictable from earlier battles

    def start(self) -> None:
        """Start one worker per model (the app's startup)."""
        batching = {"max_batch": self.limits.max_batch, "wait_s": self.limits.batch_wait_ms / 1000}
        for name, model in self.models.items():
            self.services[name] = ChatService(model, name, queue=self.limits.queue, metrics=self.metrics, **batching)

    def close(self) -> None:
        for service in self.services.values():
            service.close()
        self.votes.close()

    def new_battle(self) -> tuple[PendingBattle, dict[str, ChatService]]:
        """A fresh battle between two distinct models in random order, and the service per side."""
        pair = self.random.sample(sorted(self.services), 2)
        battle = PendingBattle(secrets.token_urlsafe(16), dict(zip(SIDES, pair, strict=True)))
        with self.lock:
            self.pending[battle.id] = battle
            while len(self.pending) > MAX_PENDING:
                self.pending.popitem(last=False)
        return battle, {side: self.services[name] for side, name in battle.models.items()}

    def forget(self, battle: PendingBattle) -> None:
        """Drop a battle that never started (its request was refused)."""
        with self.lock:
            self.pending.pop(battle.id, None)

    def finished(self, battle: PendingBattle, side: str) -> None:
        with self.lock:
            battle.done.add(side)

    def claim(self, battle_id: str) -> PendingBattle:
        """The battle, taken for its one vote; 404 if unknown (or forgotten), 409 if not complete or voted."""
        with self.lock:
            battle = self.pending.get(battle_id)
            if battle is None:
                raise ApiError(404, "no such battle waiting for a vote", param="battle", code="battle_not_found")
            if battle.voted:
                raise ApiError(409, "this battle already has its vote", param="battle", code="already_voted")
            if battle.done != set(SIDES):
                raise ApiError(409, "vote once both answers are complete", param="battle", code="battle_not_done")
            battle.voted = True
            return battle

    def vote(self, battle_id: str, winner: str) -> dict[str, str | int]:
        """Record the vote (committed before this returns) and reveal the two models."""
        battle = self.claim(battle_id)
        try:
            vote_id = self.votes.record(battle.id, battle.models["a"], battle.models["b"], winner)
        except BaseException:
            with self.lock:
                battle.voted = False  # nothing was stored: the vote may be cast again
            raise
        with self.lock:
            self.pending.pop(battle.id, None)
        return {
            "battle": battle.id,
            "vote": vote_id,
            "winner": winner,
            **{f"model_{s}": battle.models[s] for s in SIDES},
        }
