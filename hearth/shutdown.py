"""Graceful shutdown on SIGTERM or Ctrl-C, and the uvicorn server that does it.

On the first signal the server keeps listening, but every new request gets 503
`server_shutting_down` (+ Retry-After); the running requests get up to --shutdown-timeout seconds
to finish. Then the ones still running are ended: a stream with an error event in OpenAI's shape
(`data: {"error": ...}`, which the SDKs raise as an APIError), a plain request with the 503. Then
uvicorn closes the connections, the engine stops, and the process exits 0. A second signal quits
at once. If the model fails to load at startup, the process exits 1 with one line on stderr.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time

import uvicorn

from hearth.errors import SERVER_ERROR, ApiError

SHUTTING_DOWN = "The server is shutting down; retry shortly."
_DISCONNECT = {"type": "http.disconnect"}


def shutting_down() -> ApiError:
    return ApiError(503, SHUTTING_DOWN, code="server_shutting_down", type=SERVER_ERROR, headers={"Retry-After": "5"})


class _Request:
    __slots__ = ("forced", "started", "sse", "complete")

    def __init__(self):
        self.forced = asyncio.Event()
        self.started = self.sse = self.complete = False


class Drain:
    """The requests in flight, and the switch that turns new ones away."""

    def __init__(self, grace: float):
        self.grace = grace
        self.draining = False
        self.active: set[_Request] = set()

    async def run(self) -> int:
        """Turn new requests away, let the running ones finish up to the grace period, end the rest.
        Returns how many had to be ended."""
        self.draining = True
        deadline = time.monotonic() + self.grace
        while self.active and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        ended = len(self.active)
        for request in list(self.active):
            request.forced.set()
        deadline = time.monotonic() + 5
        while self.active and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return ended


class DrainMiddleware:
    def __init__(self, app, drain: Drain):
        self.app, self.drain = app, drain

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.drain.draining:
            raise shutting_down()
        request = _Request()
        pending: list[asyncio.Future] = []

        async def tracked_receive():
            if request.forced.is_set():
                return _DISCONNECT
            if not pending:
                pending.append(asyncio.ensure_future(receive()))
            forced = asyncio.ensure_future(request.forced.wait())
            try:
                await asyncio.wait((pending[0], forced), return_when=asyncio.FIRST_COMPLETED)
            finally:
                forced.cancel()
            if pending[0].done():
                return pending.pop().result()
            return _DISCONNECT

        async def tracked_send(message):
            if request.forced.is_set():
                return  # the middleware ends this response itself
            if message["type"] == "http.response.start":
                request.started = True
                ctype = dict(message.get("headers") or []).get(b"content-type", b"")
                request.sse = ctype.startswith(b"text/event-stream")
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                request.complete = True
            await send(message)

        self.drain.active.add(request)
        try:
            await self.app(scope, tracked_receive, tracked_send)
        finally:
            self.drain.active.discard(request)
            for p in pending:
                p.cancel()
        if request.forced.is_set() and not request.complete:
            await self._end(request, send)

    @staticmethod
    async def _end(request: _Request, send) -> None:
        error = shutting_down()
        if not request.started:
            body = json.dumps({"error": {"message": error.message, "type": error.type, "param": None,
                                         "code": error.code}}).encode()
            await send({"type": "http.response.start", "status": 503, "headers": [
                (b"content-type", b"application/json"), (b"retry-after", b"5"),
                (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        body = b""
        if request.sse:
            event = {"error": {"message": error.message, "type": error.type, "param": None, "code": error.code}}
            body = b"data: " + json.dumps(event).encode() + b"\n\n"
        await send({"type": "http.response.body", "body": body})


class Server(uvicorn.Server):
    """uvicorn, with the drain on the first signal, no re-raised signal (exit 0), and exit 1 when
    the model fails to load at startup."""

    def __init__(self, config: uvicorn.Config, drain: Drain, engine=None, on_started=None):
        super().__init__(config)
        self.drain, self.engine, self.exit_code, self.on_started = drain, engine, 0, on_started
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task] = set()

    async def serve(self, sockets=None) -> None:
        self._loop = asyncio.get_running_loop()
        self._spawn(self._watch_load())
        await super().serve(sockets)

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit and self.on_started:
            self.on_started()

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def handle_exit(self, sig, frame) -> None:  # a signal handler: no uvicorn re-raise afterwards
        if self.drain.draining or self._loop is None or not self.started:
            self.force_exit = self.should_exit or self.drain.draining  # a second signal: quit now
            self.should_exit = True
            return
        self.drain.draining = True  # at once: a request arriving before the task runs gets the 503
        self._loop.call_soon_threadsafe(self._spawn, self._drain())

    async def _drain(self) -> None:
        running = len(self.drain.active)
        if running:
            print(f"hearth: shutting down: letting {running} running request(s) finish "
                  f"(up to {self.drain.grace:g} s); new requests get 503", file=sys.stderr, flush=True)
        ended = await self.drain.run()
        if ended:
            print(f"hearth: ended {ended} request(s) still running at the deadline", file=sys.stderr, flush=True)
        self.should_exit = True

    async def _watch_load(self) -> None:
        while not self.started and not self.should_exit:
            await asyncio.sleep(0.05)
        state = getattr(self.engine, "state", None)
        while state is not None and getattr(state, "value", state) == "loading":
            await asyncio.sleep(0.1)
            state = getattr(self.engine, "state", None)
        if state is not None and getattr(state, "value", state) == "failed":
            reason = getattr(self.engine, "load_error", None) or "see --verbose for llama.cpp's reason"
            print(f"hearth: could not load the model: {reason}", file=sys.stderr, flush=True)
            self.exit_code = 1
            self.should_exit = True

