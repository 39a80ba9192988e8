"""POST /v1/messages and /v1/messages/count_tokens through the real anthropic SDK against the real server:
create, stream, tool use (tool_choice auto / any / tool / none, enforced), tool results across turns,
count_tokens, the headers and query Claude Code sends, and Anthropic's error shape on every failure.
Bodies and events are judged by the anthropic SDK's own types and by openapi/anthropic.yaml."""
from __future__ import annotations

import json

import anthropic
import httpx
import jsonschema
import pytest
from anthropic.types import Message, MessageTokensCount, RawMessageStreamEvent
from pydantic import BaseModel, TypeAdapter
from support import RunningServer, assert_ours, sse_events

WEATHER = {"name": "get_weather", "description": "Current weather for a city.",
           "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                            "properties": {"city": {"type": "string", "maxLength": 30}}, "required": ["city"],
                            "additionalProperties": False}}
ASK = [{"role": "user", "content": "What is the weather like in Paris today?"}]
EVENT = TypeAdapter(RawMessageStreamEvent)


@pytest.fixture(scope="module")
def running():
    server = RunningServer("--parallel", "2")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(running):
    with anthropic.Anthropic(base_url=running.url.removesuffix("/v1"), api_key="x", max_retries=0,
                             timeout=600) as c:
        yield c


def post(running, body, path="/messages", **kwargs) -> httpx.Response:
    return httpx.post(f"{running.url}{path}", json=body, timeout=600, **kwargs)


def judged(body: dict) -> Message:
    assert_ours("anthropic", "Message", body)
    return Message.model_validate(body)


def stream(running, body: dict) -> list[dict]:
    with httpx.stream("POST", f"{running.url}/messages", json={**body, "stream": True}, timeout=600) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.iter_lines())
    for name, e in events:
        assert name == e["type"]
        if e["type"] != "ping":
            EVENT.validate_python(e)
    return [e for _, e in events]


def test_create_text_with_system_blocks(client, running):
    m = client.messages.create(model="any", max_tokens=40, extra_body={"temperature": 0, "top_k": 40}, metadata={"user_id": "u1"},
                               system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
                               messages=[{"role": "user", "content": "Say hello."}])
    assert m.type == "message" and m.role == "assistant" and m.content[0].type == "text" and m.content[0].text
    assert m.stop_reason in ("end_turn", "max_tokens") and m.usage.input_tokens > 0 and m.usage.output_tokens > 0
    raw = post(running, {"model": "any", "max_tokens": 20, "messages": [{"role": "user", "content": "Hi"}]})
    judged(raw.json())


def test_stream_events_in_anthropic_order(client, running):
    with client.messages.stream(model="any", max_tokens=30, extra_body={"temperature": 0},
                                messages=[{"role": "user", "content": "Count to three."}]) as s:
        kinds = [e.type for e in s]
        final = s.get_final_message()
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert final.content[0].type == "text" and final.content[0].text
    events = stream(running, {"model": "any", "max_tokens": 30, "temperature": 0,
                              "messages": [{"role": "user", "content": "Count to three."}]})
    types = [e["type"] for e in events]
    assert types[:3] == ["message_start", "ping", "content_block_start"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == final.content[0].text  # temperature 0, same prompt
    delta = events[-2]
    assert delta["usage"]["output_tokens"] > 0 and delta["delta"]["stop_reason"] in ("end_turn", "max_tokens")


def check_tool_use(block) -> dict:
    assert block.type == "tool_use" and block.name == "get_weather" and block.id.startswith("toolu_")
    schema = {k: v for k, v in WEATHER["input_schema"].items() if k != "$schema"}
    jsonschema.validate(block.input, schema)
    return block.input


@pytest.mark.parametrize("choice", [{"type": "any"}, {"type": "tool", "name": "get_weather"},
                                    {"type": "any", "disable_parallel_tool_use": True}])
def test_forced_tool_use_is_valid(client, choice):
    m = client.messages.create(model="any", max_tokens=100, extra_body={"temperature": 0}, messages=ASK,
                               tools=[WEATHER], tool_choice=choice)
    uses = [b for b in m.content if b.type == "tool_use"]
    assert uses and m.stop_reason in ("tool_use", "max_tokens")
    for b in uses:
        check_tool_use(b)
    if choice.get("type") == "tool" or choice.get("disable_parallel_tool_use"):
        assert len(uses) == 1 and m.stop_reason == "tool_use"


def test_tool_choice_none_and_auto(client):
    m = client.messages.create(model="any", max_tokens=30, messages=ASK, tools=[WEATHER], tool_choice={"type": "none"})
    assert all(b.type == "text" for b in m.content)
    m = client.messages.create(model="any", max_tokens=80, messages=ASK, tools=[WEATHER])
    for b in m.content:
        if b.type == "tool_use":
            check_tool_use(b)


def test_tool_result_across_turns(client):
    first = client.messages.create(model="any", max_tokens=100, extra_body={"temperature": 0}, messages=ASK,
                                   tools=[WEATHER], tool_choice={"type": "tool", "name": "get_weather"})
    use = first.content[-1]
    second = client.messages.create(model="any", max_tokens=40, tools=[WEATHER], messages=[
        *ASK, {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                      "content": [{"type": "text", "text": "sunny, 21 C"}]},
                                     {"type": "text", "text": "Thanks. Summarise."}]}])
    assert second.role == "assistant" and second.content
    failed = client.messages.create(model="any", max_tokens=20, tools=[WEATHER], messages=[
        *ASK, {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "timeout",
                                      "is_error": True}]}])
    assert failed.content


def test_streamed_tool_use_accumulates(client, running):
    with client.messages.stream(model="any", max_tokens=100, extra_body={"temperature": 0}, messages=ASK,
                                tools=[WEATHER], tool_choice={"type": "tool", "name": "get_weather"}) as s:
        final = s.get_final_message()
    check_tool_use(final.content[0])
    events = stream(running, {"model": "any", "max_tokens": 100, "temperature": 0, "messages": ASK,
                              "tools": [WEATHER], "tool_choice": {"type": "tool", "name": "get_weather"}})
    start = next(e for e in events if e["type"] == "content_block_start")
    assert start["content_block"]["type"] == "tool_use" and start["content_block"]["input"] == {}
    partial = "".join(e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta")
    assert json.loads(partial) == final.content[0].input
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


class City(BaseModel):
    name: str
    country: str


def test_structured_output_with_parse(client):
    m = client.messages.parse(model="any", max_tokens=200, output_format=City, extra_body={"temperature": 0},
                              messages=[{"role": "user", "content": "Name a city in France."}])
    assert isinstance(m.parsed_output, City)


def test_count_tokens(client):
    plain = client.messages.count_tokens(model="any", messages=[{"role": "user", "content": "Say hello."}])
    assert isinstance(plain, MessageTokensCount) and plain.input_tokens > 0
    with_tools = client.messages.count_tokens(model="any", messages=[{"role": "user", "content": "Say hello."}],
                                              tools=[WEATHER])
    assert with_tools.input_tokens > plain.input_tokens
    m = client.messages.create(model="any", max_tokens=5, messages=[{"role": "user", "content": "Say hello."}])
    assert m.usage.input_tokens + m.usage.cache_read_input_tokens == plain.input_tokens


def test_what_claude_code_sends_is_served(running):
    """?beta=true, anthropic-* headers, max_tokens over the context (clamped), a system message inside
    messages, cache_control, thinking, output_config, context_management, stop_sequences."""
    body = {"model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": False,
            "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "system", "content": "Environment: linux"},
                         {"role": "user", "content": [{"type": "text", "text": "Say hi.",
                                                       "cache_control": {"type": "ephemeral"}}]}],
            "thinking": {"type": "enabled", "budget_tokens": 1024}, "output_config": {"effort": "low"},
            "context_management": {"edits": []}, "metadata": {"user_id": "abc"}}
    headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "claude-code-20250219,interleaved-thinking"}
    r = post(running, body, "/messages?beta=true", headers=headers)
    assert r.status_code == 200, r.text
    judged(r.json())
    r = post(running, {"model": "m", "max_tokens": 200, "stop_sequences": ["."],
                       "messages": [{"role": "user", "content": "Write two sentences."}]})
    assert r.status_code == 200 and "." not in r.json()["content"][0]["text"]


def test_x_api_key_is_honoured_like_a_bearer_key():
    running = RunningServer(env={"HEARTH_API_KEY": "sekrit"})
    try:
        body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]}
        assert post(running, body, headers={"x-api-key": "sekrit"}).status_code == 200
        assert post(running, body, headers={"Authorization": "Bearer sekrit"}).status_code == 200
        for headers in ({"x-api-key": "wrong"}, {}):
            r = post(running, body, headers=headers)
            assert r.status_code == 401
            assert r.json()["type"] == "error" and r.json()["error"]["type"] == "authentication_error"
        with anthropic.Anthropic(base_url=running.url.removesuffix("/v1"), api_key="sekrit", max_retries=0) as c:
            assert c.messages.create(**body).content
        with anthropic.Anthropic(base_url=running.url.removesuffix("/v1"), api_key="nope", max_retries=0) as c:
            with pytest.raises(anthropic.AuthenticationError):
                c.messages.create(**body)
    finally:
        running.stop()


@pytest.mark.parametrize("body, status, kind, mentions", [
    ({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, 400, "invalid_request_error", "max_tokens"),
    ({"model": "m", "max_tokens": 5, "messages": []}, 400, "invalid_request_error", "messages"),
    ({"model": "m", "max_tokens": 5, "temperature": 1.5, "messages": [{"role": "user", "content": "hi"}]},
     400, "invalid_request_error", "temperature"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}]},
     400, "invalid_request_error", "image"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "word " * 5000}]},
     400, "invalid_request_error", "context"),
    ({"model": "m", "max_tokens": 5, "messages": ASK, "tools": [WEATHER], "tool_choice": {"type": "tool", "name": "x"}},
     400, "invalid_request_error", "tool_choice"),
    ({"model": "m", "max_tokens": 5, "messages": ASK, "tools": [{"name": "bad", "input_schema": {
        "type": "object", "properties": {"a": {"$ref": "http://elsewhere/x"}}}}]}, 400, "invalid_request_error", "$ref"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "robot", "content": "hi"}]}, 400,
     "invalid_request_error", "role"),
])
def test_errors_have_anthropics_shape(running, body, status, kind, mentions):
    for streamed in (False, True):
        r = post(running, {**body, "stream": streamed})
        assert r.status_code == status, r.text
        error = r.json()
        assert error["type"] == "error" and error["error"]["type"] == kind and mentions in error["error"]["message"]
        assert_ours("anthropic", "ErrorResponse", error)


def test_protocol_level_errors_have_anthropics_shape(running):
    bad_json = httpx.post(f"{running.url}/messages", content=b"{not json", timeout=30,
                          headers={"content-type": "application/json"})
    wrong_type = httpx.post(f"{running.url}/messages", content=b"hi", timeout=30, headers={"content-type": "text/plain"})
    unknown = httpx.post(f"{running.url}/messages/batches", json={}, timeout=30)
    wrong_method = httpx.get(f"{running.url}/messages", timeout=30)
    for r, status in ((bad_json, 400), (wrong_type, 415), (unknown, 404), (wrong_method, 405)):
        assert r.status_code == status
        assert r.json()["type"] == "error" and r.json()["error"]["message"], r.text
    assert unknown.json()["error"]["type"] == "not_found_error"
    chat = httpx.post(f"{running.url}/chat/completions", content=b"{not json", timeout=30,
                      headers={"content-type": "application/json"})
    assert "error" in chat.json() and "type" not in chat.json()  # OpenAI's shape elsewhere
