"""SIGTERM / Ctrl-C: running streams finish up to the deadline, then end with an error event;
new requests get 503; the process exits 0."""
from __future__ import annotations

import json
import signal
import threading

import httpx

from support import RunningServer

COUNTING = "Count from 1 to 100: 1, 2, 3,"


def read_stream(url: str, body: dict, started: threading.Event, out: list) -> None:
    with httpx.stream("POST", f"{url}/completions", json={**body, "stream": True}, timeout=120) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                out.append(line[6:])
                started.set()


def test_sigterm_drains_then_ends_streams_with_an_error_event_and_exits_0():
    running = RunningServer("--shutdown-timeout", "8")
    try:
        long_body = {"model": "m", "prompt": COUNTING, "max_tokens": 3900, "temperature": 0}  # > 20 s
        # one token: its first event arrives when the engine is already done with it, so that it finishes
        # within the grace period however busy the machine is
        short_body = {"model": "m", "prompt": "Hello", "max_tokens": 1}
        streams, threads = [], []
        for body in (long_body, short_body):
            started, out = threading.Event(), []
            t = threading.Thread(target=read_stream, args=(running.url, body, started, out))
            t.start()
            assert started.wait(60)
            streams.append(out)
            threads.append(t)
        running.proc.send_signal(signal.SIGTERM)
        refused = httpx.post(f"{running.url}/completions", json=short_body, timeout=30)
        assert refused.status_code == 503 and refused.headers["retry-after"]
        assert refused.json()["error"]["code"] == "server_shutting_down"
        for t in threads:
            t.join(60)
        long, short = streams
        # the long stream ran into the deadline: an error event in OpenAI's shape, and no [DONE]
        assert json.loads(long[-1])["error"]["code"] == "server_shutting_down" and "[DONE]" not in long
        assert all("choices" in json.loads(e) for e in long[:-1])
        # the short one finished within the grace period, whole
        assert short[-1] == "[DONE]" and json.loads(short[-2])["choices"][0]["finish_reason"] == "length"
        assert running.proc.wait(30) == 0
    finally:
        running.stop()


def test_ctrl_c_when_idle_exits_0_at_once():
    running = RunningServer()
    try:
        running.proc.send_signal(signal.SIGINT)
        assert running.proc.wait(30) == 0
    finally:
        running.stop()
