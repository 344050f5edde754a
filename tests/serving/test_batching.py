"""The dynamic batcher and the batched, streamed chat worker, without HTTP."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError

import pytest
import torch
from serving_live import shapes_png, tiny_chat_model

from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.images import load_image
from vlmkit.serving.batching import Batcher, QueueFull, WorkerClosed
from vlmkit.serving.chat import ChatService, Failed, Finished, Piece, batch_key
from vlmkit.serving.metrics import Metrics
from vlmkit.tasks.chat import respond


class Recorder:
    """A batch function that records each batch's payloads; ``gate`` holds the worker while cleared."""

    def __init__(self) -> None:
        self.batches: list[list[object]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, jobs) -> None:
        self.entered.set()
        self.gate.wait(10)
        self.batches.append([job.payload for job in jobs])
        for job in jobs:
            job.future.set_result(job.payload)


def blocked_batcher(**options) -> tuple[Batcher, Recorder]:
    """A batcher whose worker is busy with a first job until ``recorder.gate`` is set."""
    recorder = Recorder()
    recorder.gate.clear()
    batcher = Batcher("test", recorder, **options)
    batcher.submit("blocker")
    assert recorder.entered.wait(5)
    return batcher, recorder


def test_waiting_jobs_batch_by_key_up_to_max_batch_in_order():
    batcher, recorder = blocked_batcher(max_batch=3, wait_s=0.0, queue=10)
    jobs = [
        batcher.submit(name, key=key) for name, key in [("a1", "a"), ("b1", "b"), ("a2", "a"), ("a3", "a"), ("a4", "a")]
    ]
    alone = batcher.submit("solo", key=None)
    recorder.gate.set()
    assert [job.future.result(5) for job in [*jobs, alone]] == ["a1", "b1", "a2", "a3", "a4", "solo"]
    batcher.close()
    assert recorder.batches == [["blocker"], ["a1", "a2", "a3"], ["b1"], ["a4"], ["solo"]]


def test_inputs_count_towards_max_batch():
    batcher, recorder = blocked_batcher(max_batch=4, wait_s=0.0, queue=10)
    for name, size in [("x", 3), ("y", 2), ("z", 1)]:
        batcher.submit(name, key="k", size=size)
    recorder.gate.set()
    batcher.close()
    assert recorder.batches[1:] == [["x", "z"], ["y"]]


def test_a_full_queue_refuses_instead_of_growing():
    batcher, recorder = blocked_batcher(max_batch=2, queue=2)
    batcher.submit("one")
    batcher.submit("two")
    assert batcher.depth == 2
    with pytest.raises(QueueFull):
        batcher.submit("three")
    recorder.gate.set()
    batcher.close()
    with pytest.raises(WorkerClosed):
        batcher.submit("late")


def test_cancelled_jobs_are_skipped_and_errors_reach_every_job():
    batcher, recorder = blocked_batcher(max_batch=4, wait_s=0.0, queue=4)
    dropped = batcher.submit("dropped", key="k")
    dropped.cancel()
    kept = batcher.submit("kept", key="k")
    recorder.gate.set()
    assert kept.future.result(5) == "kept"
    with pytest.raises(CancelledError):
        dropped.future.result(0)
    assert ["dropped"] not in recorder.batches and all("dropped" not in b for b in recorder.batches)
    batcher.close()

    def explode(jobs) -> None:
        raise RuntimeError("model failed")

    failing = Batcher("failing", explode, max_batch=2, wait_s=0.05)
    first, second = failing.submit(1, key="k"), failing.submit(2, key="k")
    for job in (first, second):
        with pytest.raises(RuntimeError, match="model failed"):
            job.future.result(5)
    failing.close()


def test_batch_keys_share_samplers_only_when_that_cannot_change_a_result():
    assert batch_key(GenerationConfig(temperature=0, seed=1)) == batch_key(GenerationConfig(temperature=0, top_p=0.5))
    assert batch_key(GenerationConfig(temperature=0.7)) == batch_key(GenerationConfig(temperature=0.7))
    assert batch_key(GenerationConfig(temperature=0.7)) != batch_key(GenerationConfig(temperature=0.8))
    assert batch_key(GenerationConfig(temperature=0.7, seed=3)) is None  # seeded sampling runs alone


@pytest.fixture(scope="module")
def chat_model():
    torch.manual_seed(0)
    return tiny_chat_model()


def collect(service: ChatService, prompt, images, config, on_piece=None):
    events: list = []

    def emit(event) -> None:
        events.append(event)
        if on_piece is not None and isinstance(event, Piece):
            on_piece()

    job = service.submit(prompt, images, config, emit)
    return job, events


def test_one_batch_of_prompts_gives_each_its_solo_answer(chat_model):
    """Left-padded rows of different lengths, with and without images, limits and stop strings of their own."""
    service = ChatService(chat_model, "m", max_batch=3, wait_s=5.0, queue=8, metrics=Metrics())
    image = load_image(shapes_png(0))
    requests = [
        ("<image>\nwhat colour is it?", [image], GenerationConfig(max_new_tokens=9)),
        ("a much longer question about the blue square and the red circle", [], GenerationConfig(max_new_tokens=4)),
        ("<image>\nred?", [load_image(shapes_png(1))], GenerationConfig(max_new_tokens=6, stop=("e",))),
    ]
    prompts = [service.encode([{"role": "user", "content": text}]) for text, _, _ in requests]
    running = [collect(service, p, images, config) for p, (_, images, config) in zip(prompts, requests, strict=True)]
    counts = [job.future.result(30) for job, _ in running]
    service.close()
    assert service.batcher.batches == 1  # max_batch reached: no waiting for the 5 s window

    for (text, images, config), (_, events), count in zip(requests, running, counts, strict=True):
        *pieces, last = events
        assert isinstance(last, Finished) and last.completion_tokens == count <= config.max_new_tokens
        assert all(isinstance(p, Piece) for p in pieces)
        prompt = service.encode([{"role": "user", "content": text}])
        stops = (*service.stop, *config.stop)
        alone = respond(
            chat_model, [prompt], images, GenerationConfig(max_new_tokens=config.max_new_tokens, stop=stops)
        )
        assert "".join(p.text for p in pieces) == alone[0]


def test_a_cancelled_row_stops_generating_while_the_others_go_on(chat_model):
    service = ChatService(chat_model, "m", max_batch=2, wait_s=5.0, queue=8, metrics=Metrics())
    prompt = service.encode([{"role": "user", "content": "describe the image."}])
    config = GenerationConfig(max_new_tokens=40, eos_token_ids=(), stop=("\u2603",))  # runs to its limit
    holder: dict = {}
    leaving, left_events = collect(service, prompt, [], config, on_piece=lambda: holder["job"].cancel())
    holder["job"] = leaving
    staying, stay_events = collect(service, prompt, [], config)
    assert staying.future.result(30) == 40
    assert leaving.future.result(30) <= 2  # stopped right after its first piece
    assert not any(isinstance(e, Finished) for e in left_events)
    assert isinstance(stay_events[-1], Finished) and stay_events[-1].reason == "length"
    service.close()


def test_a_failing_batch_reports_to_its_requests(chat_model):
    service = ChatService(chat_model, "m", max_batch=1, wait_s=0.0, queue=8, metrics=Metrics())
    prompt = service.encode([{"role": "user", "content": "<image>\nred?"}])
    job, events = collect(service, prompt, [], GenerationConfig(max_new_tokens=2))  # an image slot, no image
    with pytest.raises(Exception, match="image"):
        job.future.result(30)
    service.close()
    assert len(events) == 1 and isinstance(events[0], Failed)
