"""Structured output and tool calls over the real server and model, through real clients.

SmolLM2-135M is weak: left alone it rarely writes valid JSON or a well-formed call. What makes every
answer here valid is the grammar, so these tests fail if enforcement breaks. Seeded or greedy."""
from __future__ import annotations

import json
from typing import Literal

import httpx
import jsonschema
import pytest
from openai import OpenAI
from pydantic import BaseModel, Field

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 30}, "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "description": "The current time.",
                                         "parameters": {"type": "object", "properties": {}}}}
ASK = [{"role": "user", "content": "What is the weather like in Paris today?"}]
PARAMS = {WEATHER["function"]["name"]: WEATHER["function"]["parameters"],
          TIME["function"]["name"]: TIME["function"]["parameters"]}


@pytest.fixture(scope="module")
def client(server):
    return OpenAI(base_url=server, api_key="lm-studio", max_retries=0, timeout=600)


def valid_calls(calls, allowed=("get_weather", "get_time")):
    assert calls
    for c in calls:
        assert c.type == "function" and c.id.startswith("call_")
        assert c.function.name in allowed
        jsonschema.validate(json.loads(c.function.arguments), PARAMS[c.function.name])


# --- response_format ----------------------------------------------------------------------------
class Person(BaseModel):
    name: str = Field(max_length=24)
    age: int = Field(ge=0, le=130)
    languages: list[str] = Field(max_length=3)


def test_sdk_parse_returns_the_pydantic_model(client):
    completion = client.chat.completions.parse(
        model="m", response_format=Person, temperature=0, max_tokens=200,
        messages=[{"role": "user", "content": "Ada is 36 and speaks English and French. Describe her."}])
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "stop"
    assert isinstance(message.parsed, Person)
    assert Person.model_validate_json(message.content) == message.parsed


def test_json_schema_not_strict_validates_when_stop(client):
    """Every answer that stops validates, and at least one stops: a run where every seed hits max_tokens
    would validate nothing, so it fails instead of passing on no evidence."""
    schema = {"type": "object", "properties": {
        "title": {"type": "string", "maxLength": 40},
        "year": {"type": "integer", "minimum": 1800, "maximum": 2100},
        "genres": {"type": "array", "items": {"enum": ["drama", "comedy", "horror"]}, "minItems": 1, "maxItems": 2},
        "rating": {"type": ["number", "null"]},
    }, "required": ["title", "year", "genres"]}
    validated = []
    for seed in (1, 2, 3):
        r = client.chat.completions.create(
            model="m", seed=seed, temperature=1.0, max_tokens=300,
            messages=[{"role": "user", "content": "Invent a film."}],
            response_format={"type": "json_schema", "json_schema": {"name": "film", "schema": schema}})
        choice = r.choices[0]
        assert choice.finish_reason in ("stop", "length")
        if choice.finish_reason == "stop":
            jsonschema.validate(json.loads(choice.message.content), schema)
            validated.append(seed)
    assert validated, "every seed stopped at max_tokens: no answer was validated against the schema"


def test_json_object_is_always_an_object(client):
    parsed = 0
    for seed in (5, 6):
        r = client.chat.completions.create(
            model="m", seed=seed, temperature=0.9, max_tokens=120, response_format={"type": "json_object"},
            messages=[{"role": "user", "content": "Give me a JSON object describing a cat."}])
        if r.choices[0].finish_reason == "stop":
            assert isinstance(json.loads(r.choices[0].message.content), dict)
            parsed += 1
        else:  # cut by max_tokens: still the start of an object
            assert r.choices[0].message.content.lstrip().startswith("{")
    assert parsed, "both seeds stopped at max_tokens: no answer was parsed as a whole object"


def test_json_schema_streamed_assembles_to_a_valid_value(client):
    schema = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}}, "required": ["answer"],
              "additionalProperties": False}
    chunks = list(client.chat.completions.create(
        model="m", temperature=0, max_tokens=40, stream=True,
        messages=[{"role": "user", "content": "Is the sky blue?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "yn", "schema": schema, "strict": True}}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    jsonschema.validate(json.loads(text), schema)


# --- tools ----------------------------------------------------------------------------------------
def test_required_tool_call(client):
    r = client.chat.completions.create(model="m", messages=ASK, tools=[WEATHER, TIME], tool_choice="required",
                                       temperature=0, max_tokens=120, parallel_tool_calls=False)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    valid_calls(choice.message.tool_calls)


def distinct_valid_calls(choice):
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    valid_calls(choice.message.tool_calls)
    seen = [(c.function.name, c.function.arguments) for c in choice.message.tool_calls]
    assert len(set(seen)) == len(seen)  # a verbatim repeat ends the answer and is not reported
    return seen


def test_required_with_parallel_calls_ends_with_complete_calls(client):
    """Left alone SmolLM2 calls get_weather again and again until max_tokens (the last call cut short):
    the answer ends at the first verbatim repeat of an earlier call, and the grammar bounds the calls."""
    plain = client.chat.completions.create(model="m", messages=ASK, tools=[WEATHER, TIME], tool_choice="required",
                                           temperature=0, max_tokens=300)
    seen = distinct_valid_calls(plain.choices[0])
    assert len(seen) > 1  # this model does make parallel calls here (else the test proves nothing)
    chunks = list(client.chat.completions.create(model="m", messages=ASK, tools=[WEATHER, TIME], temperature=0,
                                                 tool_choice="required", max_tokens=300, stream=True))
    calls: dict[int, list[str]] = {}
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            if tc.id is not None:
                assert tc.index not in calls and tc.function.arguments == ""
                calls[tc.index] = [tc.function.name, ""]
            else:
                calls[tc.index][1] += tc.function.arguments
    assert [tuple(calls[i]) for i in sorted(calls)] == seen  # the repeat was never streamed either
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


@pytest.mark.parametrize("seed", [2])
def test_required_sampled_parallel_calls_end_with_complete_calls(client, seed):
    r = client.chat.completions.create(model="m", messages=ASK, tools=[WEATHER, TIME], tool_choice="required",
                                       seed=seed, temperature=1.0, max_tokens=400)
    distinct_valid_calls(r.choices[0])


def test_named_tool_choice_and_no_parallel_calls(client):
    for seed in (1, 2, 3):
        r = client.chat.completions.create(
            model="m", messages=ASK, tools=[WEATHER, TIME], seed=seed, temperature=1.0, max_tokens=120,
            tool_choice={"type": "function", "function": {"name": "get_time"}}, parallel_tool_calls=False)
        calls = r.choices[0].message.tool_calls
        assert r.choices[0].finish_reason == "tool_calls"
        assert len(calls) == 1
        valid_calls(calls, allowed=("get_time",))


def test_streamed_tool_calls_are_shaped_like_openai(client):
    chunks = list(client.chat.completions.create(model="m", messages=ASK, tools=[WEATHER], tool_choice="required",
                                                 temperature=0, max_tokens=120, stream=True,
                                                 parallel_tool_calls=False))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    pieces = [tc for d in deltas for tc in (d.tool_calls or [])]
    first = pieces[0]
    assert first.index == 0 and first.id.startswith("call_") and first.type == "function"
    assert first.function.name == "get_weather" and first.function.arguments == ""
    assert all(p.id is None and p.function.name is None for p in pieces[1:] if p.index == 0)
    arguments = "".join(p.function.arguments or "" for p in pieces if p.index == 0)
    jsonschema.validate(json.loads(arguments), PARAMS["get_weather"])
    assert not any(d.content for d in deltas)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]


def test_sdk_stream_helper_accumulates_the_calls(client):
    with client.chat.completions.stream(model="m", messages=ASK, tools=[WEATHER], tool_choice="required",
                                        temperature=0, max_tokens=120, parallel_tool_calls=False) as stream:
        final = stream.get_final_completion()
    valid_calls(final.choices[0].message.tool_calls, allowed=("get_weather",))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_auto_gives_text_or_valid_calls(client, seed):
    r = client.chat.completions.create(model="m", messages=ASK, tools=[WEATHER, TIME], seed=seed, temperature=1.0,
                                       max_tokens=150, parallel_tool_calls=False)
    choice = r.choices[0]
    if choice.message.tool_calls:
        assert choice.finish_reason == "tool_calls"
        valid_calls(choice.message.tool_calls)
    else:
        assert choice.finish_reason in ("stop", "length")
        assert "<tool_call>" not in (choice.message.content or "")


def test_none_never_calls(client):
    r = client.chat.completions.create(model="m", messages=ASK, tools=[WEATHER], tool_choice="none", temperature=0,
                                       max_tokens=40)
    assert r.choices[0].message.tool_calls is None and r.choices[0].finish_reason in ("stop", "length")
    assert isinstance(r.choices[0].message.content, str)


def test_agent_loop_call_result_answer(client):
    tools = [WEATHER]
    messages = list(ASK)
    first = client.chat.completions.create(model="m", messages=messages, tools=tools, tool_choice="required",
                                           temperature=0, max_tokens=120, parallel_tool_calls=False)
    call = first.choices[0].message.tool_calls[0]
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 21, "sky": "sunny"})})
    final = client.chat.completions.create(model="m", messages=messages, tools=tools, temperature=0, max_tokens=60,
                                           tool_choice="none")
    assert final.choices[0].message.tool_calls is None
    assert final.choices[0].message.content
    bare = client.chat.completions.create(model="m", messages=ASK, tools=tools, tool_choice="none", max_tokens=1)
    assert final.usage.prompt_tokens > bare.usage.prompt_tokens + 20  # the call and its result are in the prompt


# --- errors ------------------------------------------------------------------------------------------
def post(server, **body):
    body.setdefault("model", "m")
    body.setdefault("messages", ASK)
    body.setdefault("max_tokens", 8)
    return httpx.post(f"{server}/chat/completions", json=body, timeout=120)


@pytest.mark.parametrize("body, param, words", [
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
        "type": "array", "uniqueItems": True}}}}, "response_format", "uniqueItems"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {
        "a": {"type": "string", "pattern": "(?=x)"}}}}}]}, "tools[0].function.parameters", "look-around"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice", "nope"),
    ({"tool_choice": "required"}, "tool_choice", "tools"),
    ({"response_format": {"type": "json_object"}, "stop": ["}"]}, "stop", "stop"),
])
def test_what_cannot_be_enforced_is_a_400_naming_it(server, body, param, words):
    r = post(server, **body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and words in error["message"], error


def test_hostile_schemas_get_400_or_a_valid_answer_and_the_server_keeps_serving(server):
    deep = {"type": "string"}
    for _ in range(200):
        deep = {"type": "array", "items": deep}
    chain = {"$defs": {str(i): {"$ref": f"#/$defs/{i + 1}"} for i in range(3000)}, "$ref": "#/$defs/0"}
    chain["$defs"]["3000"] = {"type": "integer"}
    schemas = [deep, chain, {"$ref": "#"}, {"type": "string", "pattern": "^(a+)+$", "maxLength": 12},
               {"enum": [f"v{i}" for i in range(3000)]}, {"type": "integer", "minimum": 5, "maximum": 1},
               {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(10000)}}]
    for schema in schemas:
        r = post(server, max_tokens=30, temperature=0,
                 response_format={"type": "json_schema", "json_schema": {"name": "h", "schema": schema}})
        assert r.status_code in (200, 400), r.text
        if r.status_code == 400:
            assert r.json()["error"]["param"] == "response_format"
        elif r.json()["choices"][0]["finish_reason"] == "stop":
            jsonschema.validate(json.loads(r.json()["choices"][0]["message"]["content"]), schema)
    assert post(server).status_code == 200


# --- LangChain ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def llm(server):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(base_url=server, api_key="lm-studio", model="m", temperature=0, max_tokens=150,
                      max_retries=0, timeout=180)


def test_langchain_bind_tools_with_tool_choice(llm):
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str, unit: Literal["celsius", "fahrenheit"]) -> str:
        """Current weather for a city."""
        return "sunny"

    @tool
    def get_time() -> str:
        """The current time."""
        return "noon"

    for choice, allowed in (("get_weather", {"get_weather"}), ("any", {"get_weather", "get_time"})):
        msg = llm.bind_tools([get_weather, get_time], tool_choice=choice, parallel_tool_calls=False).invoke(
            "What is the weather in Paris?")
        assert msg.tool_calls and not msg.invalid_tool_calls
        for call in msg.tool_calls:
            assert call["name"] in allowed
            if call["name"] == "get_weather":
                get_weather.args_schema.model_validate(call["args"])
        assert msg.response_metadata["finish_reason"] == "tool_calls"


def test_langchain_with_structured_output_json_schema(llm):
    structured = llm.with_structured_output(Person, method="json_schema")
    person = structured.invoke("Ada is 36 and speaks English and French. Describe her.")
    assert isinstance(person, Person)


# --- response_format on /v1/completions (an extension of OpenAI's legacy completions) -----------------
def test_completions_response_format_constrains_the_text_after_the_prompt(client, server):
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                               "age": {"type": "integer", "minimum": 0, "maximum": 130}},
              "required": ["name", "age"], "additionalProperties": False}
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}
    for seed in (1, 2):
        r = client.completions.create(model="m", prompt="Describe a person:", max_tokens=80, temperature=1.0, seed=seed,
                                      extra_body={"response_format": fmt})
        assert r.choices[0].finish_reason == "stop"
        jsonschema.validate(json.loads(r.choices[0].text), schema)
    streamed = client.completions.create(model="m", prompt="A cat, as JSON:", max_tokens=60, temperature=0, stream=True,
                                         echo=True, extra_body={"response_format": {"type": "json_object"}})
    text = "".join(c.choices[0].text for c in streamed)
    assert text.startswith("A cat, as JSON:") and isinstance(json.loads(text[len("A cat, as JSON:"):]), dict)
    for body, param in (({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
            "type": "array", "uniqueItems": True}}}}, "response_format"),
                        ({"response_format": {"type": "json_object"}, "stop": ["}"]}, "stop")):
        r = httpx.post(f"{server}/completions", json={"model": "m", "prompt": "x", "max_tokens": 4, **body}, timeout=60)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
