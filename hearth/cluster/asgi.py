"""Run an ASGI app in process, one request at a time, its response as a stream of message batches.

This is how a replica serves Hearth's own app without a socket: the ingress ships the request's scope
and body through a deployment handle, the replica calls the app with them, and every batch of ASGI
messages the app sends (`http.response.start`, then `http.response.body` chunks) goes back as one item
of a streamed handle response. Closing the stream early (the client went away, the ingress cancelled
the call) is the app's `http.disconnect`: Hearth cancels the request and frees its slot, exactly as
when a socket closes. No Ray here: tests drive it directly.
"""
from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator

Message = tuple  # ("start", status, headers) | ("body", bytes, more_body)

SCOPE_KEYS = ("method", "path", "raw_path", "query_string", "headers", "http_version", "scheme", "client", "server",
              "root_path")


def portable_scope(scope: dict) -> dict:
    """What of an HTTP scope crosses to a replica: plain values only (no app, no state, no extensions)."""
    out = {k: scope[k] for k in SCOPE_KEYS if k in scope}
    out["headers"] = [(bytes(k), bytes(v)) for k, v in scope.get("headers", [])]
    out["raw_path"] = bytes(out.get("raw_path") or out.get("path", "/").encode())
    out["root_path"] = ""
    for k in ("client", "server"):
        if out.get(k) is not None:
            out[k] = tuple(out[k])
    return out


def _compact(message: dict) -> Message | None:
    kind = message.get("type")
    if kind == "http.response.start":
        return ("start", message["status"], [(bytes(k), bytes(v)) for k, v in message.get("headers", [])])
    if kind == "http.response.body":
        return ("body", bytes(message.get("body", b"")), bool(message.get("more_body", False)))
    return None


def collect(messages: list[Message]) -> tuple[int, list, bytes]:
    """(status, headers, body) of a whole response's messages (other items are skipped)."""
    start = next(m for m in messages if m[0] == "start")
    return start[1], start[2], b"".join(m[1] for m in messages if m[0] == "body")


class InProcessApp:
    def __init__(self, app):
        self.app = app
        self._state: dict = {}
        self._lifespan_in: asyncio.Queue | None = None
        self._lifespan_task: asyncio.Task | None = None

    # lifespan: the app's startup (Hearth loads its models) and shutdown (closes them) ----------------
    async def start(self) -> None:
        self._lifespan_in = asyncio.Queue()
        started: asyncio.Future = asyncio.get_running_loop().create_future()
        self._stopped = asyncio.get_running_loop().create_future()

        async def send(message):
            kind = message["type"]
            if kind == "lifespan.startup.complete" and not started.done():
                started.set_result(None)
            elif kind == "lifespan.startup.failed" and not started.done():
                started.set_exception(RuntimeError(message.get("message") or "the app failed to start"))
            elif kind.startswith("lifespan.shutdown") and not self._stopped.done():
                self._stopped.set_result(None)

        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self._state}
        self._lifespan_task = asyncio.create_task(self.app(scope, self._lifespan_in.get, send))
        self._lifespan_task.add_done_callback(
            lambda t: started.done() or started.set_exception(RuntimeError("the app's lifespan ended at startup")))
        await self._lifespan_in.put({"type": "lifespan.startup"})
        await started

    async def stop(self, timeout: float = 10.0) -> None:
        if self._lifespan_task is None or self._lifespan_task.done():
            return
        await self._lifespan_in.put({"type": "lifespan.shutdown"})
        with contextlib.suppress(asyncio.TimeoutError, Exception):
            await asyncio.wait_for(asyncio.shield(self._stopped), timeout)

    # one request -------------------------------------------------------------------------------------
    async def call(self, scope: dict, body: bytes) -> tuple[int, list, bytes]:
        """The whole response: (status, headers, body)."""
        return collect([m for batch in [b async for b in self.stream(scope, body)] for m in batch])

    async def stream(self, scope: dict, body: bytes, *, linger: float = 5.0) -> AsyncIterator[list[Message]]:
        """The response's messages, batched: each batch is every message the app sent since the last one
        was taken (one per streamed token when the consumer keeps up, fewer, larger batches when not)."""
        scope = {**scope, "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
                 "state": dict(self._state)}
        outbox: asyncio.Queue = asyncio.Queue()
        gone = asyncio.Event()
        delivered = False

        async def receive():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            if gone.is_set():
                raise OSError("the client went away")  # what a closed socket gives the app
            compact = _compact(message)
            if compact is not None:
                outbox.put_nowait(compact)

        task = asyncio.create_task(self.app(scope, receive, send))
        task.add_done_callback(lambda _t: outbox.put_nowait(None))
        finished = False
        try:
            while True:
                item = await outbox.get()
                batch = [item] if item is not None else []
                while item is not None and not outbox.empty():
                    item = outbox.get_nowait()
                    if item is not None:
                        batch.append(item)
                if batch:
                    yield batch
                if item is None:
                    finished = True
                    break
            await task  # an exception the app let escape (never for Hearth: it answers 500 itself)
        finally:
            if not finished:  # the consumer left: the app sees its client disconnect
                gone.set()
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(asyncio.shield(task), linger)
                if not task.done():
                    task.cancel()
