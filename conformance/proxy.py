"""A mutating HTTP proxy: a real server behind it, exactly one of its behaviours broken in front.

`http://PROXY/<mutant>/v1/...` forwards to the upstream server's `/v1/...` and applies the named
mutant (conformance/mutants.py) to the request body, the response status/headers/body, or each SSE
event. `http://PROXY/none/v1/...` forwards untouched. One proxy serves every mutant, so the mutation
run starts no server per mutant.
"""
from __future__ import annotations

import contextlib
import copy
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from conformance.mutants import BY_NAME, Exchange, Mutant

HOP = {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass
class Recorded:
    """One exchange through the unmutated proxy (`none`), kept so that a mutant's hooks can be replayed
    on it offline: a mutant that changes nothing of a case's traffic cannot change its verdict."""

    method: str
    path: str
    headers: dict
    body: Any  # the request's JSON, or None
    status: int
    response_headers: dict
    response_body: Any  # the response's JSON, or None (a stream, or not JSON)
    events: list | None  # a stream's events in order ("[DONE]" is a str), or None

    def exchange(self) -> Exchange:
        return Exchange(self.method, self.path, dict(self.headers), copy.deepcopy(self.body))


def make_app(upstream: str, tape: Callable[[], list | None] = lambda: None) -> Starlette:
    """`upstream`: the real server's origin, e.g. http://127.0.0.1:1234 (paths keep their /v1).
    `tape()`: the list that every exchange the unmutated route (`none`) forwards is recorded into, as it
    is when the request arrives (None: no recording)."""
    client = httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(120.0))

    async def forward(request: Request) -> Response:
        name, _, rest = request.url.path.lstrip("/").partition("/")
        raw = request.scope.get("raw_path", b"").decode("latin-1")  # forwarded as sent: percent-encoded
        upstream_path = "/" + raw.lstrip("/").partition("/")[2] if raw else "/" + rest
        mutant = BY_NAME.get(name) if name != "none" else Mutant("none", "nothing")
        if mutant is None:
            return Response(f"no mutant {name!r}", status_code=599)
        sink = tape() if name == "none" else None
        body = await request.body()
        ex = Exchange(method=request.method, path="/" + rest, headers=dict(request.headers), body=_json(body))
        early = mutant.on_request(ex) if mutant.on_request else None
        if early is not None:  # the mutant answers by itself (e.g. a route that is gone)
            status, body = early
            return Response(json.dumps(body), status_code=status, media_type="application/json")
        if ex.body is not None and ex.body_changed:
            body = json.dumps(ex.body).encode()
        headers = {k: v for k, v in ex.headers.items() if k.lower() not in HOP | {"host"}}
        url = httpx.URL(upstream_path if upstream_path.startswith("/") else "/" + upstream_path)
        upstream_request = client.build_request(request.method, url, params=request.query_params, content=body,
                                                headers=headers)
        response = await client.send(upstream_request, stream=True)
        out_headers = {k: v for k, v in response.headers.items() if k.lower() not in HOP}
        taped = sink is not None

        def keep(body: Any, events: list | None) -> None:
            sink.append(Recorded(ex.method, ex.path, dict(ex.headers), copy.deepcopy(ex.original), response.status_code,
                            dict(out_headers), body, events))
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return StreamingResponse(_events(mutant, ex, response, keep if taped else None), status_code=response.status_code,
                                     headers=out_headers)
        body = await response.aread()
        await response.aclose()
        status = response.status_code
        if taped:
            keep(_json(body), None)
        if mutant.on_response:
            parsed = _json(body)
            status, out_headers, parsed = mutant.on_response(ex, status, out_headers, parsed)
            if parsed is not None:
                body = json.dumps(parsed).encode()
                out_headers["content-type"] = out_headers.get("content-type", "application/json")
        return Response(body, status_code=status, headers=out_headers)

    async def _events(mutant: Mutant, ex: Exchange, response: httpx.Response, keep: Callable | None):
        """Re-frame the upstream SSE stream one `data:` event at a time, through the mutant's hook. Named
        events (the Responses and Messages streams) keep their name: an event whose JSON has a `type` is
        sent as `event: <type>` when the upstream named its events."""
        seen: list = []
        named = False
        try:
            index = 0
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    named = True
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                event: Any = "[DONE]" if payload == "[DONE]" else _json(payload.encode())
                seen.append(copy.deepcopy(event))
                events = mutant.on_event(ex, index, event) if mutant.on_event else [event]
                index += 1
                for item in events:
                    if item is None:
                        continue
                    text = item if isinstance(item, str) else json.dumps(item)
                    name = f"event: {item['type']}\n" if named and isinstance(item, dict) and "type" in item else ""
                    yield f"{name}data: {text}\n\n".encode()
                if mutant.cut_after is not None and index >= mutant.cut_after:
                    return  # a truncated stream: no more events, no [DONE]
        finally:
            await response.aclose()
            if keep is not None:
                keep(None, seen)

    routes = [Route("/{path:path}", forward, methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])]
    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        await client.aclose()

    return Starlette(routes=routes, lifespan=lifespan)


class Proxy:
    """The proxy on a free loopback port, served from a thread: `url(mutant)` is a base URL (…/v1)."""

    def __init__(self, upstream_base_url: str):
        import uvicorn

        url = httpx.URL(upstream_base_url)
        origin = f"{url.scheme}://{url.netloc.decode()}"
        self.prefix = url.path.rstrip("/")  # "/v1"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.tape: list[Recorded] | None = None  # set to a list to record what the unmutated route forwards
        config = uvicorn.Config(make_app(origin, lambda: self.tape), host="127.0.0.1", port=self.port, log_level="error", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="mutating-proxy", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the mutating proxy did not start")
            time.sleep(0.02)

    def url(self, mutant: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mutant}{self.prefix}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
