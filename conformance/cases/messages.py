"""Anthropic's Messages API (POST /v1/messages, /v1/messages/count_tokens), judged by the anthropic SDK's
own types (Message, RawMessageStreamEvent, MessageTokensCount): the message, the stream's events and
their order, tool_choice any / none enforced, count_tokens, and Anthropic's error shape."""
from __future__ import annotations

import json
from typing import Any

import jsonschema

from conformance.checks import body_of, expect
from conformance.runner import case
from conformance.target import Target

ROUTE = "/messages"
R = "POST /messages"
WEATHER = {"name": "get_weather", "description": "Current weather for a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30}},
                            "required": ["city"], "additionalProperties": False}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
HEADERS = {"anthropic-version": "2023-06-01"}


def body(t: Target, **extra: Any) -> dict:
    return {"model": t.model, "max_tokens": 40, "messages": [{"role": "user", "content": "Say hello."}], **extra}


def message(t: Target, **extra: Any) -> dict:
    """POST /messages; the 200 body validated by the anthropic SDK's Message type."""
    from anthropic.types import Message
    from pydantic import ValidationError

    r = t.post(ROUTE, body(t, **extra), headers=HEADERS)
    expect(r.status_code == 200, f"expected 200, got {r.status_code}: {r.text[:200]}")
    data = body_of(r)
    try:
        Message.model_validate(data)
    except ValidationError as e:
        raise AssertionError(f"not an anthropic Message: {str(e).splitlines()[0:3]}") from None
    return data


@case("messages.create", R, "messages", "reference")
def create(t: Target) -> None:
    """A message: type/role, a text block, a valid stop_reason, usage."""
    m = message(t)
    expect(m["type"] == "message" and m["role"] == "assistant", f"type/role {m['type']!r}/{m['role']!r}")
    expect(m["content"] and m["content"][0]["type"] == "text", f"content {m['content']!r}")
    expect(m["stop_reason"] in ("end_turn", "max_tokens", "stop_sequence"), f"stop_reason {m['stop_reason']!r}")
    expect(m["usage"]["output_tokens"] > 0, f"usage {m['usage']}")


@case("messages.stream", R, "messages", "reference")
def stream(t: Target) -> None:
    """message_start first, message_stop last, blocks opened and closed in order, each event a valid
    RawMessageStreamEvent (ping aside), no [DONE]."""
    from anthropic.types import RawMessageStreamEvent
    from pydantic import TypeAdapter, ValidationError

    response, s = t.stream(ROUTE, body(t, stream=True))
    expect(response.status_code == 200, f"expected 200, got {response.status_code}")
    events = s.chunks
    adapter = TypeAdapter(RawMessageStreamEvent)
    for i, e in enumerate(events):
        if e.get("type") == "ping":
            continue
        try:
            adapter.validate_python(e)
        except ValidationError as exc:
            raise AssertionError(f"event {i} ({e.get('type')}) is not a RawMessageStreamEvent: "
                                 f"{str(exc).splitlines()[0:2]}") from None
    kinds = [e["type"] for e in events if e["type"] != "ping"]
    expect(kinds and kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"],
           f"events {kinds[:2]}...{kinds[-2:]}, expected message_start ... message_delta, message_stop")
    expect(not s.done, "a `data: [DONE]` line in an Anthropic stream")
    open_block = None
    for e in events:
        if e["type"] == "content_block_start":
            expect(open_block is None, "a block started before the last one stopped")
            open_block = e["index"]
        elif e["type"] in ("content_block_delta", "content_block_stop"):
            expect(e["index"] == open_block, f"{e['type']} for block {e['index']}, open is {open_block}")
            if e["type"] == "content_block_stop":
                open_block = None
    expect(open_block is None, "a block never stopped")


@case("messages.tool_choice.any", R, "messages", "reference")
def tool_any(t: Target) -> None:
    """tool_choice any: tool_use blocks whose input validates against input_schema; stop_reason tool_use."""
    m = message(t, messages=ASK, tools=[WEATHER], tool_choice={"type": "any", "disable_parallel_tool_use": True},
                max_tokens=100, temperature=0)
    uses = [b for b in m["content"] if b["type"] == "tool_use"]
    expect(uses, f"no tool_use block: {[b['type'] for b in m['content']]}")
    expect(m["stop_reason"] == "tool_use", f"stop_reason {m['stop_reason']!r} beside a tool_use")
    try:
        jsonschema.validate(uses[0]["input"], WEATHER["input_schema"])
    except jsonschema.ValidationError as e:
        raise AssertionError(f"input {json.dumps(uses[0]['input'])[:80]} does not validate: {e.message}") from None


@case("messages.tool_choice.none", R, "messages", "reference")
def tool_none(t: Target) -> None:
    """tool_choice none: no tool_use block, whatever the model would rather do."""
    m = message(t, messages=ASK, tools=[WEATHER], tool_choice={"type": "none"}, max_tokens=40)
    expect(all(b["type"] != "tool_use" for b in m["content"]), "a tool_use block under tool_choice none")


@case("messages.count_tokens", "POST /messages/count_tokens", "messages", "reference")
def count_tokens(t: Target) -> None:
    """input_tokens counts the prompt: more with a tool described than without."""
    from anthropic.types import MessageTokensCount

    counts = []
    for extra in ({}, {"tools": [WEATHER]}):
        r = t.post(f"{ROUTE}/count_tokens", {"model": t.model, "messages": ASK, **extra}, headers=HEADERS)
        expect(r.status_code == 200, f"expected 200, got {r.status_code}: {r.text[:200]}")
        counts.append(MessageTokensCount.model_validate(body_of(r)).input_tokens)
    expect(0 < counts[0] < counts[1], f"input_tokens {counts[0]} without the tool, {counts[1]} with it")


@case("messages.errors", R, "messages", "reference")
def errors(t: Target) -> None:
    """A request without max_tokens: 400 with Anthropic's body, {"type": "error", "error": {type, message}}."""
    from anthropic.types import ErrorResponse

    r = t.post(ROUTE, {"model": t.model, "messages": ASK}, headers=HEADERS)
    expect(r.status_code == 400, f"expected 400, got {r.status_code}")
    data = body_of(r)
    expect(isinstance(data, dict) and data.get("type") == "error", f"not Anthropic's error body: {r.text[:200]}")
    parsed = ErrorResponse.model_validate(data)
    expect(parsed.error.type == "invalid_request_error", f"error.type {parsed.error.type!r}")
