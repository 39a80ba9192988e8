"""OpenAI's Responses API (POST /responses): bodies and every stream event judged by OpenAI's published
schema (Response, ResponseStreamEvent), the event order the openai SDK's `responses.stream()` relies on,
text.format and tools enforced (function arguments, a custom tool's regex grammar), built-in tools
accepted, previous_response_id, and the error shape."""
from __future__ import annotations

import json
import re

import jsonschema

from conformance.cases.common import sdk_create
from conformance.checks import error, expect
from conformance.runner import case
from conformance.spec import ORACLE, load
from conformance.target import Target

ROUTE = "/responses"
R = "POST /responses"
WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather for a city.", "strict": True,
           "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30}},
                          "required": ["city"], "additionalProperties": False}}
TICKET = {"type": "custom", "name": "open_ticket", "description": "Open a ticket by its id, e.g. TICKET-1234.",
          "format": {"type": "grammar", "syntax": "regex", "definition": r"TICKET-[0-9]{4}"}}
CITY = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 30},
                                         "country": {"type": "string", "maxLength": 30}},
        "required": ["name", "country"], "additionalProperties": False}
ENDS = ("response.completed", "response.incomplete", "response.failed")


def create(t: Target, **kwargs):
    kwargs.setdefault("model", t.model)
    kwargs.setdefault("max_output_tokens", 60)
    return sdk_create(t, t.sdk.responses, "POST", ROUTE, **kwargs)


def event_problems(event: dict) -> list[str]:
    return load(ORACLE).schemas.errors({"$ref": "#/components/schemas/ResponseStreamEvent"}, event)[:2]


@case("responses.create", R, "responses", "openai")
def create_text(t: Target) -> None:
    """A response to a string input: status, one message with output_text, usage that adds up."""
    body, parsed = create(t, input="Say hello.", temperature=0)
    expect(body.get("object") == "response" and body.get("status") in ("completed", "incomplete"),
           f"object/status {body.get('object')!r}/{body.get('status')!r}")
    expect(parsed.output_text.strip() != "", "no output_text")
    usage = body.get("usage") or {}
    expect(usage.get("total_tokens") == usage.get("input_tokens", 0) + usage.get("output_tokens", 0) and
           usage.get("input_tokens", 0) > 0, f"usage does not add up: {usage}")


@case("responses.stream", R, "responses", "openai")
def stream_events(t: Target) -> None:
    """Every event validates, sequence_number counts from 0, created first and completed last, and the
    deltas add up to the final text."""
    _, stream = t.stream(ROUTE, {"model": t.model, "input": "Say hello.", "max_output_tokens": 200, "temperature": 0,
                                 "stream": True})
    events = stream.chunks
    expect(events, "no events")
    for i, e in enumerate(events):
        problems = event_problems(e)
        expect(not problems, f"event {i} ({e.get('type')}) breaks ResponseStreamEvent: {problems}")
    expect([e.get("sequence_number") for e in events] == list(range(len(events))), "sequence_number is not 0, 1, 2, ...")
    kinds = [e["type"] for e in events]
    expect(kinds[:2] == ["response.created", "response.in_progress"], f"the stream starts {kinds[:2]}")
    expect(kinds[-1] == "response.completed", f"the stream ends with {kinds[-1]}, not response.completed")
    expect(not stream.done, "a `data: [DONE]` line: the Responses stream ends with its last event")
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    final = events[-1]["response"]["output"]
    expect(final and final[0]["content"][0]["text"] == text, "the deltas do not add up to the final text")


@case("responses.json_schema", R, "responses", "openai")
def json_schema(t: Target) -> None:
    """text.format json_schema (strict): a completed answer is a value of the schema."""
    body, parsed = create(t, input="Name a city in France, as JSON.", max_output_tokens=100,
                          text={"format": {"type": "json_schema", "name": "city", "schema": CITY, "strict": True}})
    expect(body["status"] == "completed", f"status {body['status']!r}: the answer did not complete")
    try:
        jsonschema.validate(json.loads(parsed.output_text), CITY)
    except (ValueError, jsonschema.ValidationError) as e:
        raise AssertionError(f"output_text {parsed.output_text[:80]!r} is not a value of the schema: {e}") from None


@case("responses.tools.required", R, "responses", "openai")
def function_call(t: Target) -> None:
    """tool_choice required: a function_call item whose arguments validate against the function's parameters."""
    body, _ = create(t, input="What is the weather in Paris?", tools=[WEATHER], tool_choice="required",
                     parallel_tool_calls=False, max_output_tokens=80, temperature=0)
    calls = [o for o in body["output"] if o["type"] == "function_call"]
    expect(len(calls) == 1, f"expected one function_call item, got {[o['type'] for o in body['output']]}")
    expect(calls[0]["name"] == "get_weather" and calls[0]["call_id"], f"call {calls[0]}")
    try:
        jsonschema.validate(json.loads(calls[0]["arguments"]), WEATHER["parameters"])
    except (ValueError, jsonschema.ValidationError) as e:
        raise AssertionError(f"arguments {calls[0]['arguments'][:80]!r} do not validate: {e}") from None


@case("responses.tools.custom_grammar", R, "responses", "openai")
def custom_grammar(t: Target) -> None:
    """A custom tool with a regex grammar, forced: its input is text the grammar accepts (Codex's apply_patch
    is a Lark grammar of the same kind)."""
    body, _ = create(t, input="Open ticket 1234.", tools=[TICKET], tool_choice={"type": "custom", "name": "open_ticket"},
                     max_output_tokens=40)
    calls = [o for o in body["output"] if o["type"] == "custom_tool_call"]
    expect(calls, f"no custom_tool_call item: {[o['type'] for o in body['output']]}")
    expect(re.fullmatch(TICKET["format"]["definition"], calls[0]["input"]) is not None,
           f"input {calls[0]['input'][:60]!r} does not match the tool's grammar")


@case("responses.tools.hosted", R, "responses", "openai")
def hosted_tools(t: Target) -> None:
    """Built-in tools the server cannot run (web_search, ...) beside a function are accepted, not refused."""
    body, _ = create(t, input="Say hi.", max_output_tokens=20, tools=[{"type": "web_search"}, WEATHER])
    expect(body["status"] in ("completed", "incomplete"), f"status {body['status']!r}")


@case("responses.state", R, "responses", "openai")
def previous_response(t: Target) -> None:
    """store + previous_response_id: the second turn's prompt holds the first turn; GET /responses/{id} returns it."""
    first, _ = create(t, input="My name is Ada.", max_output_tokens=10, temperature=0)
    second, _ = create(t, input="What is my name?", previous_response_id=first["id"], max_output_tokens=10,
                       temperature=0)
    expect(second["usage"]["input_tokens"] > first["usage"]["input_tokens"] + first["usage"]["output_tokens"],
           "the second turn's input does not hold the first turn (previous_response_id ignored)")
    got = t.http.get(f"{ROUTE}/{second['id']}")
    expect(got.status_code == 200 and got.json().get("id") == second["id"], f"GET {ROUTE}/{{id}}: {got.status_code}")


@case("responses.errors", R, "responses", "openai")
def errors(t: Target) -> None:
    """An invalid value is refused with OpenAI's error body, before any event."""
    for stream in (False, True):
        r = t.post(ROUTE, {"model": t.model, "input": "hi", "temperature": 5, "stream": stream})
        error(t, r, "POST", ROUTE, (400, 422), param="temperature")
