"""One streamed request over HTTP (SSE), timed: TTFT, tokens, finish reason, failures.

Works against any OpenAI-compatible server. Tokens come from the final usage chunk
(`stream_options.include_usage`); a server that sends none is counted by content chunks instead.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class StreamResult:
    ok: bool = False  # HTTP 200, a [DONE] (or clean end), no error
    status: int | None = None
    error: str | None = None
    t_send: float = 0.0  # perf_counter when the request was sent
    ttft: float | None = None  # seconds from send to the first non-empty content
    t_last: float | None = None  # seconds from send to the last content chunk
    total: float | None = None  # seconds from send to the end of the stream
    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    tokens_from_usage: bool = False
    content_chunks: int = 0
    finish_reason: str | None = None
    text: str = ""

    @property
    def tokens(self) -> int:
        return self.completion_tokens if self.completion_tokens is not None else self.content_chunks

    def complete(self, want_tokens: int | None) -> bool:
        """Finished, by length, with exactly the tokens asked for (when `want_tokens` is given)."""
        if not self.ok:
            return False
        if want_tokens is None:
            return True
        return self.finish_reason == "length" and self.tokens == want_tokens

    def failure(self, want_tokens: int | None) -> str | None:
        if not self.ok:
            return self.error or f"HTTP {self.status}"
        if want_tokens is not None and self.finish_reason != "length":
            return f"short: finish_reason={self.finish_reason} after {self.tokens} tokens"
        if want_tokens is not None and self.tokens != want_tokens:
            return f"short: {self.tokens} of {want_tokens} tokens"
        return None


@dataclass
class Target:
    base_url: str  # e.g. http://127.0.0.1:1234/v1
    model: str  # the id sent in requests
    include_usage: bool = True  # send stream_options.include_usage
    extra: dict = field(default_factory=dict)  # merged into every body
    label: str = "server"  # its name in logs, tables and files
    pid: int | None = None  # the local process serving it (its CPU time is told apart), if known


def _content(chunk: dict) -> tuple[str, str | None]:
    text, finish = "", None
    for choice in chunk.get("choices") or []:
        if "delta" in choice:
            text += (choice.get("delta") or {}).get("content") or ""
        else:
            text += choice.get("text") or ""
        finish = choice.get("finish_reason") or finish
    return text, finish


async def stream(
    client: httpx.AsyncClient,
    target: Target,
    *,
    prompt: str | None = None,
    messages: list[dict] | None = None,
    max_tokens: int = 128,
    temperature: float = 0.0,
    seed: int | None = 1234,
    timeout: float = 300.0,
) -> StreamResult:
    """POST one streaming completion (text `prompt`) or chat completion (`messages`) and time it."""
    body: dict = {"model": target.model, "max_tokens": max_tokens, "temperature": temperature, "stream": True}
    if seed is not None:
        body["seed"] = seed
    if target.include_usage:
        body["stream_options"] = {"include_usage": True}
    if messages is not None:
        path, body["messages"] = "/chat/completions", messages
    else:
        path, body["prompt"] = "/completions", prompt
    body.update(target.extra)

    r = StreamResult()
    r.t_send = t0 = time.perf_counter()
    try:
        async with client.stream("POST", target.base_url + path, json=body, timeout=timeout) as resp:
            r.status = resp.status_code
            if resp.status_code != 200:
                detail = (await resp.aread()).decode("utf-8", "replace")[:300]
                r.error = f"HTTP {resp.status_code}: {detail}"
                return r
            done = False
            async for line in resp.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                chunk = json.loads(data)
                if "error" in chunk:
                    r.error = f"error event: {json.dumps(chunk['error'])[:300]}"
                    return r
                text, finish = _content(chunk)
                now = time.perf_counter() - t0
                if text:
                    r.content_chunks += 1
                    r.text += text
                    r.t_last = now
                    if r.ttft is None:
                        r.ttft = now
                if finish:
                    r.finish_reason = finish
                usage = chunk.get("usage")
                if usage:
                    r.completion_tokens = usage.get("completion_tokens")
                    r.prompt_tokens = usage.get("prompt_tokens")
                    r.tokens_from_usage = True
            r.total = time.perf_counter() - t0
            r.ok = done or r.finish_reason is not None
            if not r.ok:
                r.error = "stream ended without finish_reason or [DONE]"
    except (httpx.HTTPError, json.JSONDecodeError, OSError) as e:
        r.error = f"{type(e).__name__}: {e}"[:300]
        r.total = time.perf_counter() - t0
    return r


def make_client(concurrency: int = 16) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(300.0, connect=10.0))


def list_models(base_url: str, timeout: float = 5.0) -> list[str]:
    resp = httpx.get(base_url + "/models", timeout=timeout)
    resp.raise_for_status()
    return [m["id"] for m in resp.json().get("data", [])]
