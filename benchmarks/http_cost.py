"""CPU per streamed token on the HTTP side, without llama.cpp: our real server (uvicorn, Connexion,
handlers, SSE) over a paced stand-in engine, measured in CPU time, so the figure holds on a busy machine.

    .venv/bin/python -m benchmarks.http_cost [--tokens 400] [--requests 5] [--rate 200] [--streams 1]

The stand-in engine has one thread that, every 1/rate seconds, hands every running request one
token through the engine's own `Stream` in one `call_soon_threadsafe` (as the real engine's Outbox
does per step). The bench's own client reads the streams. Printed: the server's CPU per token by
thread (from /proc), the event loop's above all, and the client's. Add `--profile FILE` to record the
server with py-spy (if installed) while it runs, or `--cprofile FILE` to profile its event loop
with cProfile (slower, exact call counts).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.threads import TICK, snapshot
from hearth.models import defaults

PIECE = " word"


class PacedEngine:
    """Engine protocol stand-in: every request gets `max_tokens` copies of PIECE, one per tick."""

    def __init__(self, config, rate: float):
        from hearth.engine import api

        self.api, self.rate = api, rate
        self.state = api.LoadState.READY
        self.model = api.ModelInfo(id="paced", n_ctx=1 << 20, created=0)
        self._running: list = []  # [stream, tokens left, tokens asked for]
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._profile_path = os.environ.get("HTTP_COST_CPROFILE")
        self._profile = None

    def start(self):
        threading.Thread(target=self._main, name="paced-engine", daemon=True).start()

    def close(self):
        if self._profile is not None:
            self._profile.disable()
            self._profile.dump_stats(self._profile_path)

    def stats(self):
        return {}

    async def embed(self, texts):
        raise self.api.InvalidRequest("no embeddings here")

    async def submit(self, prompt, params):
        from hearth.engine.sequence import Stream

        if self._profile_path and self._profile is None:  # from the first request on: startup is not profiled
            import cProfile

            self._profile = cProfile.Profile()
            self._profile.enable()
        stream = Stream(asyncio.get_running_loop(), 3, lambda: None)
        with self._lock:
            n = params.max_tokens or 16
            self._running.append([stream, n, n])
        self._wake.set()
        return stream

    def _main(self):
        from hearth.engine.sequence import _End

        api = self.api
        token = api.TokenOut(1, PIECE.encode())
        delta = api.Delta(PIECE, (token,))
        period = 1.0 / self.rate
        next_t = time.perf_counter()
        while True:
            if not self._running:
                self._wake.wait()
                self._wake.clear()
                next_t = time.perf_counter()
            next_t += period
            time.sleep(max(0.0, next_t - time.perf_counter()))
            batch, done = [], []
            with self._lock:
                for item in self._running:
                    stream, left, n = item
                    if stream.cancelled:
                        done.append(item)
                        batch.append((stream, _End(api.FinishReason.CANCELLED, 0)))
                        continue
                    batch.append((stream, delta))
                    item[1] = left - 1
                    if item[1] == 0:
                        done.append(item)
                        batch.append((stream, _End(api.FinishReason.LENGTH, n)))
                for item in done:
                    self._running.remove(item)
            if batch:
                loop = batch[0][0]._loop
                loop.call_soon_threadsafe(_deliver, batch)


def _deliver(batch):
    for stream, item in batch:
        stream._push(item)


def serve(port: int, rate: float) -> None:
    from hearth.cli import main

    main(["serve", "--port", str(port), "--model", str(defaults.default_model_path())],  # the stand-in never reads it
         engine_factory=lambda _kind, cfg: PacedEngine(cfg, rate))


async def drive(base_url: str, tokens: int, requests: int, streams: int) -> int:
    from benchmarks.client import Target, make_client, stream

    target = Target(base_url, "paced")
    total = 0
    async with make_client(streams) as client:
        for _ in range(requests):
            results = await asyncio.gather(*(stream(client, target, prompt="x", max_tokens=tokens)
                                             for _ in range(streams)))
            for r in results:
                if not r.ok:
                    raise RuntimeError(r.error)
                total += r.content_chunks
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.http_cost", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=400)
    ap.add_argument("--requests", type=int, default=5)
    ap.add_argument("--streams", type=int, default=1, help="concurrent streams per request round")
    ap.add_argument("--rate", type=float, default=200.0, help="tokens per second per stream")
    ap.add_argument("--profile", help="py-spy raw output file (py-spy must be on PATH or PY_SPY)")
    ap.add_argument("--cprofile", help="profile the server's event loop with cProfile into this file")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.serve:
        serve(a.serve, a.rate)
        return 0

    from benchmarks.server import free_port, wait_ready

    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    log = open(Path("/tmp") / f"http-cost-{port}.log", "wb")
    env = os.environ | ({"HTTP_COST_CPROFILE": str(Path(a.cprofile).resolve())} if a.cprofile else {})
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.http_cost", "--serve", str(port), "--rate", str(a.rate)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    spy = None
    try:
        wait_ready(base, 60, proc)
        asyncio.run(drive(base, 8, 1, 1))  # warm-up
        if a.profile:
            exe = os.environ.get("PY_SPY", "py-spy")
            spy = subprocess.Popen([exe, "record", "--pid", str(proc.pid), "--rate", "200", "--threads", "--format",
                                    "raw", "-o", a.profile, "--nonblocking"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            time.sleep(1)
        before, c0, t0 = snapshot(proc.pid), time.process_time(), time.perf_counter()
        n = asyncio.run(drive(base, a.tokens, a.requests, a.streams))
        after, c1, wall = snapshot(proc.pid), time.process_time(), time.perf_counter() - t0
    finally:
        if spy is not None:
            spy.send_signal(2)
            spy.wait(timeout=30)
        proc.send_signal(2)
        proc.wait(timeout=15)
    print(f"{n} tokens in {wall:.1f} s ({a.streams} stream(s) at {a.rate:.0f} tok/s each); CPU per token:")
    rows = []
    for tid, (name, ticks) in after.items():
        used = ticks - before.get(tid, (name, 0))[1]
        if used:
            rows.append((used, tid, name))
    for used, tid, name in sorted(rows, reverse=True):
        role = "event loop" if tid == proc.pid else name
        print(f"  server {role:20s} {used / TICK / n * 1e6:7.1f} us")
    print(f"  server total {'':14s} {sum(r[0] for r in rows) / TICK / n * 1e6:7.1f} us")
    print(f"  client (this process)       {(c1 - c0) / n * 1e6:7.1f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
