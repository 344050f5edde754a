"""Load test of ``vlmkit serve`` on loopback: throughput and latency with dynamic batching on and off.

Two small random models (a CLIP-style dual encoder and the ``tiny_vlm_config`` VLM, untrained:
their answers are noise, their cost is real) are saved to a temp dir and served by a ``vlmkit
serve`` subprocess on 127.0.0.1, once with batching (``--max-batch``) and once without
(``--max-batch 1``). N concurrent clients then send text-embedding requests (one text each) and
chat requests (one image and a question, a fixed number of new tokens), each phase bounded in
requests and seconds. The concurrency stays below the queue bound, so every request must succeed.

    .venv/bin/python benchmarks/serve.py [--clients 16] [--embed-requests 400] [--chat-requests 64]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import torch

from served_models import free_port, save_served_models
from vlmkit.data.shapesworld import ShapesWorldConfig, make_example

QUEUE = 64
WORKLOADS = ("text embeddings", "image embeddings", "chat")


def build_models(root: Path) -> tuple[Path, Path, list[str], list[bytes]]:
    """Save a dual encoder and a VLM under ``root``; returns their dirs, captions and images to send."""
    examples = [make_example(ShapesWorldConfig(image_size=64), 0, "train", i) for i in range(64)]
    captions = [caption for _, record in examples for caption in record["captions"]]
    images = [png for png, _ in examples]

    save_served_models(root, captions, 64, 128, 4, 128, 1024, chat_context=128)
    return root / "encoder", root / "vlm", captions, images


def start_server(encoder: Path, vlm: Path, batching: bool, max_batch: int, port: int) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "vlmkit", "serve", "--model", str(encoder), "--vlm", str(vlm), "--port", str(port),
        "--max-batch", str(max_batch if batching else 1), "--batch-wait-ms", "5" if batching else "0",
        "--queue", str(QUEUE), "--max-tokens-cap", "64", "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not come up")


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    tokens: int = 0
    seconds: float = 0.0

    def add(self, other: Phase) -> None:
        self.latencies += other.latencies
        self.failures += other.failures
        self.tokens += other.tokens
        self.seconds += other.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def load(url: str, bodies: list[dict], clients: int, time_limit: float) -> Phase:
    """Send ``bodies`` from ``clients`` concurrent connections, stopping early after ``time_limit`` s."""
    phase = Phase()
    queue = list(reversed(bodies))
    stop_at = time.monotonic() + time_limit

    async def client(http: httpx.AsyncClient) -> None:
        while queue and time.monotonic() < stop_at:
            body = queue.pop()
            started = time.perf_counter()
            try:
                response = await http.post(url, json=body)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            phase.latencies.append(time.perf_counter() - started)
            if ok:
                phase.tokens += response.json().get("usage", {}).get("completion_tokens", 0)
            else:
                phase.failures += 1

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients)) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    phase.seconds = time.perf_counter() - started
    return phase


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)  # the clients' side; the server process has its own threads
    with tempfile.TemporaryDirectory() as tmp:
        encoder, vlm, captions, images = build_models(Path(tmp))
        embed_bodies = [{"model": "encoder", "input": captions[i % len(captions)]} for i in range(args.embed_requests)]
        image_urls = ["data:image/png;base64," + base64.b64encode(png).decode() for png in images]
        image_bodies = [
            {"model": "encoder", "input": [image_urls[i % len(images)]], "input_type": "image"}
            for i in range(args.embed_requests // 2)
        ]
        chat_bodies = [
            {
                "model": "vlm",
                "max_tokens": args.new_tokens,
                "stop": ["\u2603"],  # never produced: with the EOS unlikely, rows run to max_tokens
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": image_urls[i % len(images)]}},
                            {"type": "text", "text": "what colour is the circle?"},
                        ],
                    }
                ],
            }
            for i in range(args.chat_requests)
        ]  # fmt: skip
        phases = {
            "text embeddings": ("/embeddings", embed_bodies),
            "image embeddings": ("/embeddings", image_bodies),
            "chat": ("/chat/completions", chat_bodies),
        }
        servers = {batching: free_port() for batching in (True, False)}
        processes = [start_server(encoder, vlm, batching, args.max_batch, port) for batching, port in servers.items()]
        results = {(workload, batching): Phase() for workload in phases for batching in servers}
        try:
            for port in servers.values():  # warm-up
                asyncio.run(load(f"http://127.0.0.1:{port}/v1/embeddings", embed_bodies[:32], args.clients, 30))
                asyncio.run(load(f"http://127.0.0.1:{port}/v1/chat/completions", chat_bodies[:4], 4, 30))
            # Rounds alternate the two servers so that load from elsewhere on the machine hits both alike.
            for round_ in range(args.rounds):
                for workload, (path, bodies) in phases.items():
                    share = bodies[round_ :: args.rounds]
                    for batching, port in servers.items():
                        url = f"http://127.0.0.1:{port}/v1{path}"
                        results[workload, batching].add(asyncio.run(load(url, share, args.clients, args.time_limit)))
        finally:
            for process in processes:
                process.terminate()
                process.wait(60)
    report(results, args)


def report(results: dict[tuple[str, bool], Phase], args: argparse.Namespace) -> None:
    print(
        f"\n{args.clients} concurrent clients, queue bound {QUEUE}, max batch {args.max_batch}, {os.cpu_count()} CPUs"
    )
    columns = ("requests", "failed", "req/s", "p50 ms", "p99 ms", "tok/s")
    print(f"{'workload':<18}{'batching':<10}" + "".join(f"{c:>9}" for c in columns))
    for (workload, batching), phase in results.items():
        rate = len(phase.latencies) / phase.seconds
        tokens = f"{phase.tokens / phase.seconds:9.0f}" if workload == "chat" else f"{'':>9}"
        print(
            f"{workload:<18}{'on' if batching else 'off':<10}{len(phase.latencies):>9}{phase.failures:>8}{rate:>9.1f}"
            f"{phase.percentile(0.5) * 1000:>9.0f}{phase.percentile(0.99) * 1000:>9.0f}{tokens}"
        )
    for workload in WORKLOADS:
        on, off = results[workload, True], results[workload, False]
        ratio = (len(on.latencies) / on.seconds) / (len(off.latencies) / off.seconds)
        medians = [statistics.median(phase.latencies) * 1000 for phase in (on, off)]
        print(f"{workload}: batching on / off throughput = {ratio:.2f}x; p50 {medians[0]:.0f} vs {medians[1]:.0f} ms")
    failed = sum(phase.failures for phase in results.values())
    print(f"failed requests: {failed} (expected 0: {args.clients} clients < queue bound {QUEUE})")
    if failed:
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--embed-requests", type=int, default=400)
    parser.add_argument("--chat-requests", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="alternations of batching on and off")
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per phase at most")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
