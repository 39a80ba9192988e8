"""Structured output: response_format json_object and json_schema (strict or not), plain and streamed.

When finish_reason is "stop" the content validates against the schema, every time; a schema feature
the server cannot enforce is a 400 with param response_format, never silently ignored."""
from __future__ import annotations

import json

import jsonschema

from conformance.cases.common import sdk_create
from conformance.checks import expect, ok_json
from conformance.runner import case
from conformance.target import Target

ROUTE = "/chat/completions"
R = "POST /chat/completions"
FILM = {"type": "object", "properties": {
    "title": {"type": "string", "maxLength": 40},
    "year": {"type": "integer", "minimum": 1900, "maximum": 2030},
    "genres": {"type": "array", "items": {"type": "string", "enum": ["drama", "comedy", "horror"]}, "minItems": 1, "maxItems": 2},
}, "required": ["title", "year", "genres"], "additionalProperties": False}
ASK = [{"role": "user", "content": "Invent a film and describe it as JSON."}]


def create(t: Target, **kwargs):
    kwargs.setdefault("model", t.model)
    kwargs.setdefault("messages", ASK)
    kwargs.setdefault("max_tokens", 200)
    return sdk_create(t, t.sdk.chat.completions, "POST", ROUTE, **kwargs)


def schema_format(schema: dict, strict: bool | None) -> dict:
    spec = {"name": "answer", "schema": schema}
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


def validates(content: str | None, schema: dict) -> None:
    try:
        jsonschema.validate(json.loads(content or ""), schema)
    except ValueError:
        raise AssertionError(f"content is not JSON: {(content or '')[:80]!r}") from None
    except jsonschema.ValidationError as e:
        raise AssertionError(f"content {content[:80]!r} does not validate: {e.message}") from None


@case("structured.completions", "POST /completions", "structured output", "hearth")
def completions_json_schema(t: Target) -> None:
    """response_format on /completions (an extension of OpenAI's legacy API, as llama-server and LM Studio
    accept it): the text after the prompt validates when finish_reason is stop; json_object is an object."""
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                               "age": {"type": "integer", "minimum": 0, "maximum": 130}},
              "required": ["name", "age"], "additionalProperties": False}
    for response_format, check in ((schema_format(schema, True), schema), ({"type": "json_object"}, {"type": "object"})):
        body = ok_json(t, t.post("/completions", t.completion_body("A person, as JSON:", max_tokens=80, temperature=0,
                                                                 response_format=response_format)),
                       "POST", "/completions")
        choice = body["choices"][0]
        expect(choice["finish_reason"] == "stop", f"finish_reason {choice['finish_reason']!r} with {response_format['type']}")
        validates(choice["text"], check)


@case("structured.json_object", R, "structured output", "openai")
def json_object(t: Target) -> None:
    stopped = 0
    for seed in (1, 2):
        _, parsed = create(t, response_format={"type": "json_object"}, temperature=0.9, seed=seed, max_tokens=150,
                           messages=[{"role": "user", "content": "Describe a cat as a JSON object."}])
        choice = parsed.choices[0]
        if choice.finish_reason == "stop":
            stopped += 1
            try:
                value = json.loads(choice.message.content)
            except ValueError:
                raise AssertionError(f"json_object content is not JSON: {choice.message.content[:80]!r}") from None
            expect(isinstance(value, dict), f"json_object content is a {type(value).__name__}, not an object")
        else:
            expect((choice.message.content or "").lstrip().startswith("{"), "json_object content does not start an object")
    expect(stopped, "no answer finished (finish_reason stop) within max_tokens: nothing was checked")


@case("structured.json_schema.strict", R, "structured output", "openai")
def json_schema_strict(t: Target) -> None:
    _, parsed = create(t, response_format=schema_format(FILM, True), temperature=0)
    choice = parsed.choices[0]
    expect(choice.finish_reason == "stop", f"finish_reason {choice.finish_reason!r} within 200 tokens, expected stop")
    validates(choice.message.content, FILM)


@case("structured.json_schema.not_strict", R, "structured output", "openai")
def json_schema_loose(t: Target) -> None:
    """Not strict: OpenAI promises less, this suite still asks that a finished answer validates."""
    stopped = 0
    for seed in (1, 2, 3):
        _, parsed = create(t, response_format=schema_format(FILM, None), temperature=1.0, seed=seed)
        if parsed.choices[0].finish_reason == "stop":
            stopped += 1
            validates(parsed.choices[0].message.content, FILM)
    expect(stopped, "no answer finished (finish_reason stop): nothing was checked")


@case("structured.json_schema.stream", R, "structured output", "openai")
def json_schema_stream(t: Target) -> None:
    chunks = list(t.sdk.chat.completions.create(model=t.model, messages=ASK, response_format=schema_format(FILM, True),
                                                temperature=0, max_tokens=200, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    expect(finishes == ["stop"], f"finish reasons {finishes}, expected ['stop']")
    validates(text, FILM)


@case("structured.unsupported_feature", R, "errors", "openai")
def unsupported(t: Target) -> None:
    """A schema keyword the server cannot enforce is refused with 400 and param response_format (here
    `uniqueItems`, outside OpenAI's supported subset), never silently ignored."""
    schema = {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}},
              "required": ["tags"], "additionalProperties": False}
    r = t.post(ROUTE, {"model": t.model, "messages": ASK, "max_tokens": 4, "response_format": schema_format(schema, True)})
    expect(r.status_code == 400, f"status {r.status_code}, expected 400 for an unenforceable schema")
    err = r.json().get("error") if r.headers.get("content-type", "").startswith("application/json") else None
    expect(isinstance(err, dict), f"the 400 is not OpenAI's error body: {r.text[:200]}")
    expect(err.get("param") == "response_format", f"param {err.get('param')!r}, expected 'response_format'")
