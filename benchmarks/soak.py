"""Soak test of ``vlmkit serve`` against hostile clients: each attack must be refused cheaply and leave
the server answering others promptly, its memory bounded, no connection held, and its answers unchanged.

Small random models (a CLIP-style dual encoder, the ``tiny_vlm_config`` VLM at 32 px, and a search
index of six ShapesWorld images) are saved to a temp dir and served by a ``vlmkit serve`` subprocess
on loopback with the default limits, except ``--queue 4`` and short body and header deadlines (so
the slow-client attacks end quickly). The attacks then run one at a time. During each, a thread
probes ``/healthz`` every 0.1 s (target: max < 1 s) and samples the server's VmRSS (target: growth <
200 MB over its value at the attack's start). For the slow-client attacks, the server-side TCP
connections of the attack's sockets still open after the deadline are counted from /proc/net/tcp
(target 0). Last, a fixed set of normal requests (embeddings, classify, greedy chat, search) must
answer bit-identically to before the attacks. ``benchmarks/stalled_rounds.py`` repeats the
stalled-body attack alone against one server, to show that its memory levels off.

    .venv/bin/python benchmarks/soak.py [--body-mb 19] [--images 20] [--image-side 4000] [--chats 64]
                                        [--stallers 16] [--silent 50] [--body-timeout-s 5] [--header-timeout-s 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import torch
from PIL import Image

from served_models import free_port, save_served_models
from vlmkit.data.shapesworld import ShapesWorldConfig, make_example
from vlmkit.search.metadata import ItemMeta
from vlmkit.search.store import SearchStore
from vlmkit.tasks import embed_images

MIB = 1024 * 1024
QUEUE = 4
MAX_TOKENS_CAP = 400  # long enough that a chat is still generating when its client leaves
LEFT = 'vlmkit_requests_total{endpoint="/v1/chat/completions",status="499"}'  # clients that left
TCP_OPEN = {"01", "08"}  # ESTABLISHED, CLOSE_WAIT: the server still holds its end


# ------------------------------------------------------------------------------------ the server


def build_models(root: Path) -> Path:
    """A dual encoder, a VLM and a search index of ShapesWorld images under ``root``; returns the images'
    folder (also the one ``file://`` URLs may name)."""
    examples = [make_example(ShapesWorldConfig(image_size=64), 0, "train", i) for i in range(32)]
    captions = [caption for _, record in examples for caption in record["captions"]]
    encoder, _ = save_served_models(root, captions, 32, 64, 2, 32, 512, chat_context=512)

    folder = root / "images"
    folder.mkdir()
    paths = []
    for i, (png, _) in enumerate(examples[:6]):
        paths.append(folder / f"shape{i}.png")
        paths[-1].write_bytes(png)
    store = SearchStore.create(root / "index", model_id=str(root / "encoder"), dim=encoder.config.embed_dim)
    items = [ItemMeta(path=p.name, sha256=str(i), size=p.stat().st_size, mtime=0.0) for i, p in enumerate(paths)]
    store.add(items, embed_images(encoder, paths).numpy())
    store.commit()
    store.close()
    return folder


def start_server(root: Path, folder: Path, port: int, args: argparse.Namespace, log: io.TextIOBase) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "vlmkit", "serve", "--model", str(root / "encoder"), "--vlm", str(root / "vlm"),
        "--index", str(root / "index"), "--images-root", str(folder), "--allow-local-folder", str(folder),
        "--port", str(port), "--queue", str(QUEUE), "--max-tokens-cap", str(MAX_TOKENS_CAP),
        "--body-timeout-s", str(args.body_timeout_s), "--header-timeout-s", str(args.header_timeout_s),
        "--log-level", "warning",
    ]  # fmt: skip
    if args.max_buffered_mb is not None:
        command += ["--max-buffered-mb", str(args.max_buffered_mb)]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not come up")


def rss_mb(pid: int) -> float:
    """The process's resident memory in MB (10^6 bytes; /proc's "kB" are KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError("no VmRSS")


def open_server_ends(server_port: int, client_ports: set[int]) -> int:
    """How many of the server's ends of connections from ``client_ports`` are still open (/proc/net/tcp)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                local, remote, state = line.split()[1:4]
                local_port, remote_port = int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)
                count += local_port == server_port and remote_port in client_ports and state in TCP_OPEN
    return count


@dataclass
class Watch:
    """What a probe thread saw while an attack ran: /healthz latencies and the server's RSS."""

    latencies: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)

    def row(self) -> tuple[str, str]:
        """'p50 / max' /healthz ms, and 'peak / retained' RSS growth MB over the value at the start."""
        ordered = self.latencies or [float("nan")]
        health = f"{statistics.median(ordered) * 1000:.0f} / {max(ordered) * 1000:.0f}"
        return health, f"{max(self.rss) - self.rss[0]:.0f} / {self.rss[-1] - self.rss[0]:.0f}"


@contextlib.contextmanager
def watching(url: str, pid: int) -> Iterator[Watch]:
    """Probe /healthz every 0.1 s (a failure counts as its 5 s timeout) and sample RSS, until the block ends."""
    watch, stop = Watch(rss=[rss_mb(pid)]), threading.Event()

    def probe() -> None:
        with httpx.Client(timeout=5) as client:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    ok = client.get(url + "/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                watch.latencies.append(time.perf_counter() - started if ok else 5.0)
                watch.rss.append(rss_mb(pid))
                stop.wait(0.1)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        time.sleep(0.3)  # the probe sees the aftermath too
        stop.set()
        thread.join(10)


# -------------------------------------------------------------------------------------- requests


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def png(side: int, color: tuple[int, int, int] = (40, 160, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), color).save(buffer, format="PNG")
    return buffer.getvalue()


def chat(content: Any, **fields: Any) -> dict[str, Any]:
    return {"model": "vlm", "messages": [{"role": "user", "content": content}], **fields}


def image_chat(image: str, **fields: Any) -> dict[str, Any]:
    parts = [{"type": "image_url", "image_url": {"url": image}}, {"type": "text", "text": "what colour is it?"}]
    return chat(parts, **fields)


def label(status: int, body: bytes) -> str:
    """A status with its error code when the body is an OpenAI error (``400 text_too_long``)."""
    code = None
    with contextlib.suppress(ValueError, TypeError, KeyError):
        code = json.loads(body)["error"]["code"]
    return f"{status} {code}" if code else str(status)


def post(url: str, body: dict[str, Any] | bytes, timeout: float = 120) -> str:
    """The labelled status of one POST, or the exception's name when there is none."""
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        reply = httpx.post(url, content=payload, headers={"Content-Type": "application/json"}, timeout=timeout)
    except httpx.HTTPError as error:
        return type(error).__name__
    return label(reply.status_code, reply.content)


def normal_answers(url: str, image: str) -> dict[str, Any]:
    """Answers that must not change: vectors as base64 (bit-exact), probabilities, a greedy chat, hits."""
    bodies = {
        "text embedding": ("/v1/embeddings", {"model": "encoder", "input": "a red", "encoding_format": "base64"}),
        "image embedding": (
            "/v1/embeddings",
            {"model": "encoder", "input": [image], "input_type": "image", "encoding_format": "base64"},
        ),
        "classify": ("/v1/classify", {"image": image, "labels": ["circle", "square", "triangle"]}),
        "greedy chat": ("/v1/chat/completions", image_chat(image, max_tokens=16)),
        "search": ("/v1/search", {"text": "a blue square", "k": 3, "thumbnails": False}),
    }
    answers = {}
    for name, (path, body) in bodies.items():
        reply = httpx.post(url + path, json=body, timeout=60)
        reply.raise_for_status()
        answer = reply.json()
        for volatile in ("id", "created"):
            answer.pop(volatile, None)
        answers[name] = answer
    return answers


# --------------------------------------------------------------------------------------- attacks


@dataclass
class Outcome:
    statuses: Counter[str]
    open_after: int | None = None  # server ends still open after the deadline (slow-client attacks)
    note: str = ""


def raw_connection(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def settle(port: int, sockets: list[socket.socket]) -> Outcome:
    """After the server's deadline: which of ``sockets`` it still holds open, what each got, then close them."""
    still_open = open_server_ends(port, {sock.getsockname()[1] for sock in sockets})
    statuses = Counter(first_status(sock) for sock in sockets)
    for sock in sockets:
        sock.close()
    return Outcome(statuses, still_open)


def first_status(sock: socket.socket) -> str:
    """The labelled status of what the server sent on a raw connection before closing it; 'closed
    unanswered' if nothing, 'reset' or 'still open' (nothing within 2 s) otherwise."""
    sock.settimeout(2)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        if not data:
            return "reset"
    except TimeoutError:
        if not data:
            return "still open"
    if not data.startswith(b"HTTP/1.1 "):
        return "closed unanswered"
    head, _, body = data.partition(b"\r\n\r\n")
    return label(int(head.split(b" ")[1]), body)


def stalled_bodies(port: int, args: argparse.Namespace) -> Outcome:
    """Connections that declare a 20 MB body, send ``--body-mb`` of it, then stall: each holds a share
    of the buffered-bytes budget until the body deadline (408) or is refused at once past it (503)."""
    sockets = [raw_connection(port) for _ in range(args.stallers)]
    head = "POST /v1/embeddings HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {20 * MIB}\r\n\r\n"
    chunk = b"x" * MIB

    def send(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # refused mid-body: the server has closed its end
            sock.sendall(head.encode() + b'{"model": "encoder", "input": "')
            for _ in range(int(args.body_mb)):
                sock.sendall(chunk)

    senders = [threading.Thread(target=send, args=(sock,)) for sock in sockets]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join(120)
    time.sleep(args.body_timeout_s + 2)
    return settle(port, sockets)


def silent_connections(port: int, args: argparse.Namespace) -> Outcome:
    """Connections that send no headers at all: the header deadline must close every one."""
    sockets = [raw_connection(port) for _ in range(args.silent)]
    time.sleep(args.header_timeout_s + 2)
    return settle(port, sockets)


def chat_flood(url: str, image: str, count: int) -> Outcome:
    """``count`` one-image chats at once against a queue of 4: the rest must get 503 before decoding."""

    async def flood() -> list[str]:
        limits = httpx.Limits(max_connections=count)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:

            async def one() -> str:
                try:
                    return str((await client.post(url, json=image_chat(image, max_tokens=8))).status_code)
                except httpx.HTTPError as error:
                    return type(error).__name__

            return await asyncio.gather(*(one() for _ in range(count)))

    return Outcome(Counter(asyncio.run(flood())))


def metric(url: str, prefix: str) -> float:
    lines = httpx.get(url + "/metrics", timeout=10).text.splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix))


def leave_mid_chat(url: str, image: str) -> Outcome:
    """A non-streaming chat of 400 tokens whose client leaves after 0.5 s: generation must stop early.
    The same chat run to the end first gives the rate, hence about how many tokens 0.5 s makes."""
    body = image_chat(image, max_tokens=MAX_TOKENS_CAP, stop=["\u2603"])  # a stop never produced
    started = time.perf_counter()
    full = httpx.post(url + "/v1/chat/completions", json=body, timeout=60).json()["usage"]["completion_tokens"]
    rate = full / (time.perf_counter() - started)
    tokens, gone = metric(url, "vlmkit_generated_tokens_total"), metric(url, LEFT)
    try:
        reply = httpx.post(url + "/v1/chat/completions", json=body, timeout=httpx.Timeout(30, read=0.5))
        status = str(reply.status_code)
    except httpx.ReadTimeout:
        status = "client left"
    time.sleep(1.0)
    post(url + "/v1/chat/completions", image_chat(image, max_tokens=1))  # returns once the batch is done
    made = metric(url, "vlmkit_generated_tokens_total") - tokens - 1
    logged = metric(url, LEFT) - gone
    note = f"{made:.0f} of {MAX_TOKENS_CAP} tokens made (the same chat run to the end: {full} at {rate:.0f}/s)"
    note += f"; 499 logged {logged:.0f}"
    return Outcome(Counter([status]), note=note)


def attacks(url: str, port: int, folder: Path, args: argparse.Namespace) -> dict[str, Callable[[], Outcome]]:
    """Each attack by name, as a call that runs it and reports what the clients saw."""
    chat_url, embed_url, classify_url = url + "/v1/chat/completions", url + "/v1/embeddings", url + "/v1/classify"
    body_chars = int(args.body_mb * MIB)
    small = data_url(png(64, (200, 30, 30)))
    big = data_url(png(args.image_side))
    per_input = body_chars // 2048 - 8  # 2048 inputs: the most the route takes, so the text cap decides

    def one(target: str, body: dict[str, Any] | bytes) -> Callable[[], Outcome]:
        return lambda: Outcome(Counter([post(target, body)]))

    def templates() -> Outcome:
        statuses: Counter[str] = Counter()
        for template in ("{{}}{:>5000000}", "{} {1}", "{}{__class__}"):
            body = {"image": small, "labels": ["circle", "square"], "templates": [template]}
            statuses[post(classify_url, body)] += 1
        return Outcome(statuses)

    surrogate = b'{"model": "vlm", "messages": [{"role": "user", "content": "a\\ud800b"}], "max_tokens": 2}'
    return {
        f"{args.body_mb:g} MB chat prompt": one(chat_url, chat("x" * body_chars, max_tokens=2)),
        f"{args.body_mb:g} MB embeddings input list (2048 inputs)": one(
            embed_url, {"model": "encoder", "input": ["y" * per_input] * 2048}
        ),
        f"{args.images} x {args.image_side}² PNGs in one embeddings request": one(
            embed_url, {"model": "encoder", "input": [big] * args.images, "input_type": "image"}
        ),
        f"{args.chats} concurrent one-image chats, --queue {QUEUE}": lambda: chat_flood(chat_url, small, args.chats),
        f"{args.stallers} connections stalling {args.body_mb:g} MB into 20 MB": lambda: stalled_bodies(port, args),
        f"{args.silent} connections sending no headers": lambda: silent_connections(port, args),
        'classify templates "{{}}{:>5000000}", "{} {1}", "{}{__class__}"': templates,
        "temperature 1e-45": one(chat_url, chat("hi", temperature=1e-45, max_tokens=2)),
        "seed 2**63": one(chat_url, chat("hi", temperature=1.0, seed=2**63, max_tokens=2)),
        "lone surrogate \\ud800 in raw JSON": one(chat_url, surrogate),
        "NUL byte in a file:// URL (%00 and raw)": lambda: Outcome(
            Counter(post(chat_url, image_chat(f"file://{folder}/a{nul}b.png")) for nul in ("%00", "\x00"))
        ),
        "client leaving a non-streaming chat after 0.5 s": lambda: leave_mid_chat(url, small),
    }


# ---------------------------------------------------------------------------------------- report


def run(args: argparse.Namespace) -> bool:
    torch.set_num_threads(1)  # the clients' side; the server has its own threads
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder, log_path = build_models(root), root / "server.log"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        image = data_url((folder / "shape0.png").read_bytes())
        with log_path.open("w") as log:
            server = start_server(root, folder, port, args, log)
            try:
                before, rss_before = normal_answers(url, image), rss_mb(server.pid)
                rows = []
                for name, attack in attacks(url, port, folder, args).items():
                    started = time.monotonic()
                    with watching(url, server.pid) as watch:
                        outcome = attack()
                    health, growth = watch.row()
                    statuses = ", ".join(f"{status} ×{n}" for status, n in sorted(outcome.statuses.items()))
                    still = "–" if outcome.open_after is None else str(outcome.open_after)
                    seconds = f"{time.monotonic() - started:.1f}"
                    rows.append((name, statuses, health, growth, still, seconds, outcome.note))
                    print(f"done: {name}: {statuses} {outcome.note}", file=sys.stderr, flush=True)
                after, rss_after = normal_answers(url, image), rss_mb(server.pid)
            finally:
                server.terminate()
                server.wait(60)
        changed = [name for name in before if before[name] != after[name]]
    print("| attack | statuses seen | /healthz p50 / max ms | RSS growth peak / retained MB | open after deadline "
          "| s | note |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    identical = "all bit-identical" if not changed else "CHANGED: " + ", ".join(changed)
    print(f"\nnormal requests after the attacks ({', '.join(before)}): {identical}")
    print(f"server RSS: {rss_before:.0f} MB before the attacks, {rss_after:.0f} MB after")
    verdicts = [
        target("/healthz max", rows, lambda row: float(row[2].split(" / ")[1]), 1000, "ms"),
        target("RSS growth", rows, lambda row: float(row[3].split(" / ")[0]), 200, "MB"),
        target("connections open after the deadline", [row for row in rows if row[4] != "–"],
               lambda row: int(row[4]), 1, "(target 0)"),
    ]  # fmt: skip
    for line, _ in verdicts:
        print(line)
    return all(met for _, met in verdicts) and not changed


def target(
    what: str,
    rows: list[tuple[str, ...]],
    value: Callable[[tuple[str, ...]], float],
    limit: float,
    unit: str,
) -> tuple[str, bool]:
    """'met' / 'NOT met' for the worst row under ``value`` (met when below ``limit``), naming that row."""
    worst = max(rows, key=value)
    met = value(worst) < limit
    return f"{what}: {'met' if met else 'NOT met'}, worst {value(worst):.0f} {unit} ({worst[0]})", met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--body-mb", type=float, default=19.0, help="size of the large bodies (MiB, below 20)")
    parser.add_argument("--images", type=int, default=20, help="large images in one embeddings request")
    parser.add_argument("--image-side", type=int, default=4000, help="side of each large image (px)")
    parser.add_argument("--chats", type=int, default=64, help="concurrent one-image chats")
    parser.add_argument("--stallers", type=int, default=16, help="connections that stall mid-body")
    parser.add_argument("--silent", type=int, default=50, help="connections that send no headers")
    parser.add_argument("--body-timeout-s", type=float, default=5.0, help="the server's body deadline")
    parser.add_argument("--header-timeout-s", type=float, default=3.0, help="the server's header deadline")
    parser.add_argument("--max-buffered-mb", type=float, help="the server's budget of buffered bodies (its default)")
    raise SystemExit(0 if run(parser.parse_args()) else 1)


if __name__ == "__main__":
    main()
