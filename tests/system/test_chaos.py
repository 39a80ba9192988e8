"""Chaos: clients vanish at random points (while the body uploads, during prefill, mid-stream, while
waiting for a plain answer); every resource comes back (running/waiting sequences and KV cells of
running sequences back to 0, nothing outstanding) and the server keeps serving.

The server runs in this process (uvicorn in a thread, real engine, real model, a loopback port),
so that the counters are read from `engine.stats()` itself; clients are raw sockets, so that each
disconnect happens exactly where the test says.
"""
from __future__ import annotations

import random
import socket
import time

import httpx
import pytest

from support import InProcessServer, raw_request

LONG_PROMPT = "The quick brown fox jumps over the lazy dog. " * 150  # ~1,500 tokens: a prefill that takes a while


@pytest.fixture(scope="module")
def live():
    server = InProcessServer(n_ctx=2048, n_parallel=2, n_threads=2)
    yield server.port, server.engine
    server.stop()


def read_events(sock: socket.socket, n: int) -> None:
    """Read until n SSE data events have arrived."""
    seen, buf = 0, b""
    while seen < n:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the stream early"
        buf += chunk
        seen = buf.count(b"data: ")


def idle(engine, timeout: float = 120) -> dict:
    """The counters once every sequence has left the engine (bounded wait, then the counters as they are)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = engine.stats()
        if s["running"] == s["waiting"] == s["outstanding"] == s["kv_tokens_running"] == 0:
            return s
        time.sleep(0.05)
    return engine.stats()


def assert_serving(port: int) -> None:
    r = httpx.post(f"http://127.0.0.1:{port}/v1/completions", json={"model": "m", "prompt": "Hi", "max_tokens": 2},
                   timeout=120)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 2


def assert_freed(engine, before: dict, cancelled: int) -> None:
    s = idle(engine)
    assert (s["running"], s["waiting"], s["outstanding"], s["kv_tokens_running"]) == (0, 0, 0, 0), s
    assert s["cancelled"] - before["cancelled"] == cancelled, s  # exactly the sequences the test cut


def test_disconnect_during_prefill(live):
    port, engine = live
    before = engine.stats()
    sock = raw_request(port, "/completions", {"model": "m", "prompt": LONG_PROMPT, "max_tokens": 200})
    deadline = time.monotonic() + 240  # a hang guard: a machine 20x oversubscribed admits it late, not never
    while engine.stats()["running"] == 0:  # admitted: the prefill is under way
        assert time.monotonic() < deadline, f"the request was never admitted: {engine.stats()}"
        time.sleep(0.005)
    sock.close()
    assert_freed(engine, before, cancelled=1)
    assert_serving(port)


@pytest.mark.parametrize("events", [1, 3, 8])
def test_disconnect_mid_stream(live, events):
    port, engine = live
    before = engine.stats()
    sock = raw_request(port, "/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "Tell a story."}],
                                                  "max_tokens": 500, "stream": True, "n": 2})
    read_events(sock, events)
    sock.close()
    assert_freed(engine, before, cancelled=2)
    assert_serving(port)


def test_disconnect_while_the_body_uploads(live):
    port, engine = live
    before = engine.stats()
    sock = raw_request(port, "/completions", {"model": "m", "prompt": LONG_PROMPT}, send_bytes=100)
    sock.close()
    assert_freed(engine, before, cancelled=0)
    assert engine.stats()["requests"] == before["requests"]  # nothing was ever submitted
    assert_serving(port)


def test_many_clients_vanish_at_random_points(live):
    """24 clients at once, each gone at a random point: before, during or after its first events,
    streamed or plain; then the engine is empty and serves again."""
    port, engine = live
    rng = random.Random(11)
    socks = []
    for i in range(24):
        stream = rng.random() < 0.5
        body = {"model": "m", "prompt": LONG_PROMPT[: rng.randint(50, 3000)], "max_tokens": rng.randint(20, 300),
                "stream": stream}
        sock = raw_request(port, "/completions", body)
        socks.append((sock, stream, rng.choice([0, 0.05, 0.3, 1.0])))
    for sock, stream, wait in socks:
        time.sleep(wait * rng.random())
        if stream and rng.random() < 0.5:
            sock.settimeout(120)
            read_events(sock, 1)
        sock.close()
    s = idle(engine)
    assert (s["running"], s["waiting"], s["outstanding"], s["kv_tokens_running"]) == (0, 0, 0, 0), s
    assert_serving(port)
