"""POST /v1/responses through the real openai SDK against the real server and model: create, stream,
parse, function calls and their outputs across turns, custom tools with grammars, hosted tools, stored
responses. Every body and event is judged by OpenAI's published schema and by openapi/responses.yaml."""
from __future__ import annotations

import json

import httpx
import jsonschema
import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel
from support import RunningServer, assert_openai, assert_ours, parse_patch, sse_events

WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather for a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30}},
                          "required": ["city"], "additionalProperties": False}, "strict": True}
ASK = "What is the weather like in Paris today?"

# The patch language of Codex's apply_patch tool, written here as a Lark grammar in the same form Codex
# sends (rules, regex terminals, an alias, an imported LF)
PATCH_GRAMMAR = r"""
start: begin_patch hunk+ end_patch
begin_patch: "*** Begin Patch" LF
end_patch: "*** End Patch" LF?
hunk: add_hunk | delete_hunk | update_hunk
add_hunk: "*** Add File: " filename LF add_line+
delete_hunk: "*** Delete File: " filename LF
update_hunk: "*** Update File: " filename LF change_move? change?
filename: /(.+)/
add_line: "+" /(.*)/ LF -> line
change_move: "*** Move to: " filename LF
change: (change_context | change_line)+ eof_line?
change_context: ("@@" | "@@ " /(.+)/) LF
change_line: ("+" | "-" | " ") /(.*)/ LF
eof_line: "*** End of File" LF
%import common.LF
"""
APPLY_PATCH = {"type": "custom", "name": "apply_patch",
               "description": "Edit files with a patch. Example, adding a file notes.txt with one line:\n"
                              "*** Begin Patch\n*** Add File: notes.txt\n+first line\n*** End Patch",
               "format": {"type": "grammar", "syntax": "lark", "definition": PATCH_GRAMMAR}}


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    store = tmp_path_factory.mktemp("store") / "responses.sqlite3"
    server = RunningServer("--store-path", str(store), "--parallel", "2")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(running):
    with OpenAI(base_url=running.url, api_key="x", max_retries=0, timeout=600) as c:
        yield c


def post(running, body: dict) -> httpx.Response:
    return httpx.post(f"{running.url}/responses", json=body, timeout=600)


def stream_events(running, body: dict) -> list[dict]:
    with httpx.stream("POST", f"{running.url}/responses", json={**body, "stream": True}, timeout=600) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.iter_lines())
    for name, e in events:
        assert name == e["type"]  # `event:` names each event as its type
        assert_openai("ResponseStreamEvent", e)
    data = [e for _, e in events]
    assert [e["sequence_number"] for e in data] == list(range(len(data)))
    return data


def create(client, **kwargs):
    """responses.create through the SDK, and its body as sent (judged by both schemas)."""
    raw = client.responses.with_raw_response.create(**kwargs)
    judged(raw.http_response.json())
    return raw.parse()


def judged(body: dict) -> dict:
    assert_openai("Response", body)
    assert_ours("responses", "Response", body)
    return body


# --- text ----------------------------------------------------------------------------------------
def test_create_answers_text(client):
    r = create(client, model="any", input="Say hello.", max_output_tokens=40, temperature=0)
    assert r.object == "response" and r.status in ("completed", "incomplete")
    assert r.output_text.strip()
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


def test_instructions_and_message_items(client):
    r = client.responses.create(model="any", instructions="Answer in one word.", temperature=0, max_output_tokens=30,
                                input=[{"role": "developer", "content": "Be polite."},
                                       {"type": "message", "role": "user",
                                        "content": [{"type": "input_text", "text": "Say hi."}]}])
    assert r.instructions == "Answer in one word." and r.output_text.strip()


def test_stream_helper_sees_openai_order(client):
    with client.responses.stream(model="any", input="Say hello.", max_output_tokens=200, temperature=0) as s:
        kinds = [e.type for e in s]
        final = s.get_final_response()
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert "response.output_text.delta" in kinds
    assert final.status == "completed" and final.output_text.strip()


def test_raw_stream_events_validate_and_add_up(running):
    events = stream_events(running, {"model": "any", "input": "Count to three.", "max_output_tokens": 60,
                                     "temperature": 0})
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    last = events[-1]
    assert last["type"] in ("response.completed", "response.incomplete")
    judged(last["response"])
    assert last["response"]["output"][0]["content"][0]["text"] == deltas
    done = [e for e in events if e["type"] == "response.output_text.done"]
    assert done and done[0]["text"] == deltas


def test_max_output_tokens_gives_incomplete(client):
    r = client.responses.create(model="any", input="Tell me a long story about a dragon.", max_output_tokens=5,
                                temperature=0)
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    assert r.usage.output_tokens == 5


def test_logprobs_on_request(client):
    r = client.responses.create(model="any", input="Say hi.", max_output_tokens=10, temperature=0,
                                include=["message.output_text.logprobs"], top_logprobs=2)
    part = r.output[0].content[0]
    assert part.logprobs and all(len(lp.top_logprobs) == 2 for lp in part.logprobs)
    assert "".join(lp.token for lp in part.logprobs) == part.text


# --- structured output ----------------------------------------------------------------------------
class City(BaseModel):
    name: str
    country: str


def test_parse_returns_the_model(client):
    r = client.responses.parse(model="any", input="Name a city in France.", text_format=City, max_output_tokens=200,
                               temperature=0)
    assert isinstance(r.output_parsed, City)


def test_json_object_format(client):
    r = client.responses.create(model="any", input="Describe a cat as JSON.", max_output_tokens=100,
                                text={"format": {"type": "json_object"}})
    if r.status == "completed":
        assert isinstance(json.loads(r.output_text), dict)


def test_stream_parse_with_schema(client):
    with client.responses.stream(model="any", input="Name a city in Italy.", text_format=City,
                                 max_output_tokens=200, temperature=0) as s:
        final = s.get_final_response()
    assert isinstance(final.output_parsed, City)


# --- function tools -------------------------------------------------------------------------------
def test_required_function_call_then_its_output(client):
    r = create(client, model="any", input=ASK, tools=[WEATHER], tool_choice="required",
               parallel_tool_calls=False, max_output_tokens=80, temperature=0)
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].status == "completed"
    jsonschema.validate(json.loads(calls[0].arguments), WEATHER["parameters"])
    follow = client.responses.create(model="any", tools=[WEATHER], max_output_tokens=60, temperature=0, input=[
        {"role": "user", "content": ASK}, calls[0],
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": '{"sky": "sunny", "celsius": 21}'}])
    assert follow.status in ("completed", "incomplete")


def test_named_function_and_stream_events(running):
    events = stream_events(running, {"model": "any", "input": ASK, "tools": [WEATHER],
                                     "tool_choice": {"type": "function", "name": "get_weather"},
                                     "max_output_tokens": 80, "temperature": 0})
    kinds = [e["type"] for e in events]
    assert "response.function_call_arguments.delta" in kinds
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert done["name"] == "get_weather"
    jsonschema.validate(json.loads(done["arguments"]), WEATHER["parameters"])
    item = next(e["item"] for e in events if e["type"] == "response.output_item.done")
    assert item["type"] == "function_call" and item["arguments"] == done["arguments"]


def test_stream_helper_accumulates_function_arguments(client):
    with client.responses.stream(model="any", input=ASK, tools=[WEATHER], tool_choice="required",
                                 parallel_tool_calls=False, max_output_tokens=80) as s:
        final = s.get_final_response()
    call = final.output[0]
    assert call.type == "function_call"
    jsonschema.validate(json.loads(call.arguments), WEATHER["parameters"])


def test_namespace_tools_are_flattened_and_named_back(client):
    crm = {"type": "namespace", "name": "crm", "description": "Customer records.", "tools": [
        {"type": "function", "name": "lookup", "description": "Find a customer.",
         "parameters": {"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]}}]}
    r = client.responses.create(model="any", input="Find the customer ann@example.com.", tools=[crm],
                                tool_choice="required", parallel_tool_calls=False, max_output_tokens=80)
    call = r.output[0]
    assert (call.type, call.name, call.namespace) == ("function_call", "lookup", "crm")
    assert "email" in json.loads(call.arguments)


def test_hosted_tools_are_served_not_refused(client):
    r = client.responses.create(model="any", input="Say hi.", max_output_tokens=20,
                                tools=[{"type": "web_search"}, WEATHER, {"type": "image_generation"}])
    assert r.status in ("completed", "incomplete")
    assert [t.type for t in r.tools] == ["function"]  # the built-in tools were not offered to the model
    only_hosted = client.responses.create(model="any", input="Say hi.", max_output_tokens=20,
                                          tools=[{"type": "web_search"}], tool_choice="auto")
    assert only_hosted.output[0].type == "message"


# --- custom tools ---------------------------------------------------------------------------------
def test_apply_patch_input_always_parses(client):
    """Every call's input is a patch the tool's Lark grammar accepts, or, cut by max_output_tokens, the
    start of one (checked by hand, line by line); most calls complete."""
    completed = 0
    for ask, temperature in [("Create a file hello.txt that says hello world.", 0),
                             ("Create a file hello.txt that says hello world.", 0.8), ("Delete the file old.txt.", 0.8),
                             ("In app.py, replace print('hi') with print('hello').", 0.8)]:
        r = create(client, model="any", input=ask, tools=[APPLY_PATCH], max_output_tokens=300, temperature=temperature,
                   tool_choice={"type": "custom", "name": "apply_patch"})
        call = r.output[0]
        assert call.type == "custom_tool_call" and call.name == "apply_patch"
        if r.status == "completed":
            parse_patch(call.input)
            completed += 1
        else:
            assert r.incomplete_details.reason == "max_output_tokens"
            parse_patch(call.input, complete=False)
    assert completed >= 2


def test_custom_tool_stream_and_regex_grammar(running):
    ticket = {"type": "custom", "name": "ticket", "description": "Open a ticket by its id.",
              "format": {"type": "grammar", "syntax": "regex", "definition": r"TICKET-[0-9]{3,5}"}}
    events = stream_events(running, {"model": "any", "input": "Open ticket 1234.", "tools": [ticket],
                                     "tool_choice": "required", "parallel_tool_calls": False,
                                     "max_output_tokens": 40})
    done = next(e for e in events if e["type"] == "response.custom_tool_call_input.done")
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta")
    assert done["input"] == deltas
    assert __import__("re").fullmatch(r"TICKET-[0-9]{3,5}", done["input"])
    assert events[-1]["response"]["output"][0]["type"] == "custom_tool_call"


def test_custom_tool_call_and_output_across_turns(client):
    note = {"type": "custom", "name": "note", "description": "Save a note (plain text)."}
    first = client.responses.create(model="any", input="Save a note saying: buy milk.", tools=[note],
                                    tool_choice="required", parallel_tool_calls=False, max_output_tokens=40)
    call = first.output[0]
    assert call.type == "custom_tool_call" and "</tool_call>" not in call.input
    second = client.responses.create(model="any", tools=[note], max_output_tokens=30, input=[
        {"role": "user", "content": "Save a note saying: buy milk."},
        {"type": "custom_tool_call", "call_id": call.call_id, "name": "note", "input": call.input},
        {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "saved"}])
    assert second.status in ("completed", "incomplete")


# --- state ----------------------------------------------------------------------------------------
def test_previous_response_id_continues_and_stored_routes(client, running):
    first = client.responses.create(model="any", input="My name is Ada.", max_output_tokens=20, temperature=0)
    second = client.responses.create(model="any", input="What is my name?", previous_response_id=first.id,
                                     max_output_tokens=20, temperature=0)
    assert second.previous_response_id == first.id
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens  # the history came along
    again = client.responses.retrieve(second.id)
    assert again.id == second.id and again.output_text == second.output_text
    judged(httpx.get(f"{running.url}/responses/{second.id}").json())
    items = client.responses.input_items.list(second.id)
    assert [i.type for i in items.data] == ["message"] and items.data[0].content[0].text == "What is my name?"
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    r = post(running, {"model": "any", "input": "Hi", "previous_response_id": second.id})
    assert r.status_code == 400 and r.json()["error"]["code"] == "previous_response_not_found"  # the chain broke


def test_store_false_keeps_nothing(client):
    r = client.responses.create(model="any", input="Hi", max_output_tokens=5, store=False)
    assert r.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)


def test_truncation_auto_drops_the_oldest_items(running):
    old = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"Item {i}: " + "word " * 150} for i in range(40)]
    body = {"model": "any", "input": old + [{"role": "user", "content": "Say hi."}], "max_output_tokens": 8}
    refused = post(running, body)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "context_length_exceeded"
    r = post(running, {**body, "truncation": "auto"})
    assert r.status_code == 200 and r.json()["truncation"] == "auto"
    assert 0 < r.json()["usage"]["input_tokens"] < 4096


def test_input_tokens_counts_the_prompt(running):
    r = httpx.post(f"{running.url}/responses/input_tokens", json={"model": "any", "input": "Say hello."}, timeout=60)
    assert r.status_code == 200 and r.json()["object"] == "response.input_tokens"
    full = post(running, {"model": "any", "input": "Say hello.", "max_output_tokens": 16}).json()
    assert r.json()["input_tokens"] == full["usage"]["input_tokens"]
    more = httpx.post(f"{running.url}/responses/input_tokens", timeout=60,
                      json={"model": "any", "input": "Say hello.", "tools": [WEATHER]}).json()
    assert more["input_tokens"] > r.json()["input_tokens"]  # the tools are described in the prompt


# --- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("body, status, param", [
    ({"input": "hi"}, 400, "model"),
    ({"model": "m", "input": "hi", "temperature": 3}, 422, "temperature"),
    ({"model": "m", "input": 5}, 400, "input"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "http://x/y.png"}]}]},
     400, "input[0].content[0]"),
    ({"model": "m", "input": [{"type": "telepathy"}]}, 400, "input"),  # (the schema names the types)
    ({"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, 400, "input[0].call_id"),
    ({"model": "m", "input": "hi", "previous_response_id": "resp_nope"}, 400, "previous_response_id"),
    ({"model": "m", "input": "hi", "max_output_tokens": 10 ** 7}, 422, "max_output_tokens"),
    ({"model": "m", "input": "hi", "tools": [WEATHER], "tool_choice": {"type": "function", "name": "nope"}},
     400, "tool_choice"),
    ({"model": "m", "input": "hi", "tools": [{"type": "web_search"}], "tool_choice": {"type": "web_search_preview"}},
     400, "tool_choice"),
    ({"model": "m", "input": "hi", "tools": [{"type": "custom", "name": "c", "format": {
        "type": "grammar", "syntax": "lark", "definition": "start: undefined_rule"}}]}, 400, "tools[0].custom.format.definition"),
    ({"model": "m", "input": "hi", "text": {"format": {"type": "json_schema", "name": "x"}}}, 400, "text.format.schema"),
    ({"model": "m", "input": "hi", "background": True}, 400, "background"),
    ({"model": "m", "input": "word " * 5000}, 400, "input"),
    ({"model": "m"}, 400, "input"),
])
def test_errors_have_openai_shape_and_status(running, body, status, param):
    for stream in (False, True):
        r = post(running, {**body, "stream": stream})
        assert r.status_code == status, r.text
        error = r.json()["error"]
        assert error["param"] == param and error["message"] and error["type"] == "invalid_request_error"
        assert_openai("ErrorResponse", r.json())


def test_unknown_stored_response_is_404(client):
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_unknown")
    with pytest.raises(openai.NotFoundError):
        client.responses.delete("resp_unknown")
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list("resp_unknown")
