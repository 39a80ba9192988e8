"""Helpers the generation cases share: SDK calls whose raw bodies are validated too, and stream checks."""
from __future__ import annotations

import json
from typing import Any

from conformance.checks import conforms, expect, shape_problems
from conformance.sse import Stream
from conformance.target import Target

FINISH = ("stop", "length")


def sdk_create(t: Target, resource: Any, method: str, route: str, **kwargs: Any) -> tuple[dict, Any]:
    """Call the SDK, validate the raw JSON against the contract, return (raw body, parsed object)."""
    raw = resource.with_raw_response.create(**kwargs)
    expect(raw.status_code == 200, f"expected 200, got {raw.status_code}")
    body = json.loads(raw.text)
    conforms(t, method, route, 200, body)
    return body, raw.parse()


def usage_adds_up(usage: dict | None, max_completion: int | None = None) -> None:
    expect(isinstance(usage, dict), f"usage missing: {usage!r}")
    p, c, total = usage.get("prompt_tokens"), usage.get("completion_tokens"), usage.get("total_tokens")
    expect(all(isinstance(v, int) for v in (p, c, total)), f"usage counts must be integers: {usage!r}")
    expect(p > 0, f"prompt_tokens {p}: a non-empty prompt has tokens")
    expect(total == p + c, f"total_tokens {total} != prompt_tokens {p} + completion_tokens {c}")
    if max_completion is not None:
        expect(0 <= c <= max_completion, f"completion_tokens {c} outside 0..max_tokens={max_completion}")


def usage_chunk_last(stream: Stream, max_completion: int) -> dict:
    """With stream_options.include_usage: the last chunk has `choices: []` and usage that adds up,
    and no chunk before it carries a usage. Returns that last chunk."""
    last = stream.chunks[-1]
    expect(last.get("choices") == [], f"the usage chunk must have choices [], got {last.get('choices')!r}")
    usage_adds_up(last.get("usage"), max_completion)
    earlier = [c.get("usage") for c in stream.chunks[:-1]]
    expect(all(u is None for u in earlier), "chunks before the last carry a usage (expected null)")
    return last


def wire_stream(t: Target, route: str, response: Any, stream: Stream) -> None:
    """SSE framing and every chunk's shape: text/event-stream, JSON events, `[DONE]` last."""
    if response.status_code != 200:
        raise AssertionError(f"expected 200, got {response.status_code}: {response.text[:200]}")
    media = response.headers.get("content-type", "")
    expect(media.startswith("text/event-stream"), f"content-type {media!r}, expected text/event-stream")
    expect(not stream.problems, "; ".join(stream.problems[:2]))
    expect(stream.chunks, "no chunks before the end of the stream")
    expect(stream.done, "the stream ended without `data: [DONE]`")
    expect(stream.after_done == 0, f"{stream.after_done} event(s) after `data: [DONE]`")
    for i, chunk in enumerate(stream.chunks):  # each distinct violation once, at the first chunk showing it
        before = len(t.schema_problems)
        shape_problems(t, "POST", route, 200, chunk, "text/event-stream", where=f"chunk {i}: ")
        if len(t.schema_problems) > before:
            break
    ids = {c.get("id") for c in stream.chunks if isinstance(c, dict)}
    expect(len(ids) == 1, f"chunks carry {len(ids)} different ids, expected one")
