"""Tools: tool_choice none/auto/required/named, parallel_tool_calls, streamed calls, tool history.

A constraint in the request is a promise: every call names an allowed function and its arguments
validate against that function's `parameters` (OpenAI's strict function calling). The model under test
may be weak; only enforcement makes these pass."""
from __future__ import annotations

import json

import jsonschema

from conformance.cases.common import sdk_create
from conformance.checks import expect
from conformance.runner import case
from conformance.target import Target

ROUTE = "/chat/completions"
R = "POST /chat/completions"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30},
                                                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {"name": "get_time", "description": "The current time.",
                                         "parameters": {"type": "object", "properties": {}, "additionalProperties": False}}}
TOOLS = [WEATHER, TIME]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
ASK = [{"role": "user", "content": "What is the weather like in Paris today?"}]
BASE = {"temperature": 0, "max_tokens": 120, "seed": 11}


def create(t: Target, **kwargs):
    kwargs.setdefault("model", t.model)
    kwargs.setdefault("messages", ASK)
    for k, v in BASE.items():
        kwargs.setdefault(k, v)
    return sdk_create(t, t.sdk.chat.completions, "POST", ROUTE, **kwargs)


def check_calls(calls, allowed) -> None:
    expect(calls, "no tool_calls in the answer")
    for c in calls:
        expect(c.type == "function", f"tool call type {c.type!r}, expected 'function'")
        expect(isinstance(c.id, str) and c.id, "a tool call without an id")
        expect(c.function.name in allowed, f"called {c.function.name!r}, allowed: {sorted(allowed)}")
        try:
            args = json.loads(c.function.arguments)
        except ValueError:
            raise AssertionError(f"arguments are not JSON: {c.function.arguments[:80]!r}") from None
        try:
            jsonschema.validate(args, SCHEMAS[c.function.name])
        except jsonschema.ValidationError as e:
            raise AssertionError(f"arguments {c.function.arguments[:80]!r} do not validate: {e.message}") from None


@case("tools.required", R, "tools", "openai")
def required(t: Target) -> None:
    """tool_choice "required": the answer is a call (content null, finish_reason tool_calls), valid."""
    _, parsed = create(t, tools=TOOLS, tool_choice="required", parallel_tool_calls=False)
    choice = parsed.choices[0]
    expect(choice.finish_reason == "tool_calls", f"finish_reason {choice.finish_reason!r}, expected 'tool_calls'")
    expect(choice.message.content is None, f"content {choice.message.content!r}, expected null beside only calls")
    check_calls(choice.message.tool_calls, set(SCHEMAS))


@case("tools.parallel_ends", R, "tools", "hearth")
def parallel_ends(t: Target) -> None:
    """tool_choice "required" with parallel calls allowed (the default): the answer still ends with
    complete, valid, distinct calls and finish_reason tool_calls, not calls repeated until max_tokens
    (Hearth's policy: a verbatim repeat of an earlier call ends the answer; at most 16 calls)."""
    _, parsed = create(t, tools=TOOLS, tool_choice="required", max_tokens=400)
    choice = parsed.choices[0]
    expect(choice.finish_reason == "tool_calls", f"finish_reason {choice.finish_reason!r}, expected 'tool_calls'")
    check_calls(choice.message.tool_calls, set(SCHEMAS))
    seen = [(c.function.name, c.function.arguments) for c in choice.message.tool_calls]
    expect(len(set(seen)) == len(seen), f"the same call repeated verbatim: {seen}")


@case("tools.named", R, "tools", "openai")
def named(t: Target) -> None:
    """A named tool_choice forces that function (the question asks for the other one)."""
    _, parsed = create(t, tools=TOOLS, tool_choice={"type": "function", "function": {"name": "get_time"}})
    check_calls(parsed.choices[0].message.tool_calls, {"get_time"})


@case("tools.parallel_false", R, "tools", "openai")
def parallel_false(t: Target) -> None:
    """parallel_tool_calls false: at most one call, across several answers (the greedy one is where a small
    model allowed parallel calls makes several distinct ones; sampled ones often end at a verbatim repeat)."""
    for seed, temperature in ((11, 0), (1, 1.0), (2, 1.0), (3, 1.0)):
        _, parsed = create(t, tools=TOOLS, tool_choice="required", parallel_tool_calls=False, temperature=temperature,
                           seed=seed)
        calls = parsed.choices[0].message.tool_calls or []
        expect(len(calls) == 1, f"{len(calls)} calls with parallel_tool_calls false (seed {seed})")
        check_calls(calls, set(SCHEMAS))


@case("tools.none", R, "tools", "openai")
def none(t: Target) -> None:
    """The same question that "required" answers with a call gets text under "none" (a server that ignores
    tools fails the first half, one that ignores tool_choice the second)."""
    _, forced = create(t, tools=TOOLS, tool_choice="required", parallel_tool_calls=False)
    check_calls(forced.choices[0].message.tool_calls, set(SCHEMAS))
    _, parsed = create(t, tools=TOOLS, tool_choice="none", max_tokens=40)
    msg = parsed.choices[0].message
    expect(not msg.tool_calls, f"tool_choice none, yet {len(msg.tool_calls or [])} call(s)")
    expect(isinstance(msg.content, str), "tool_choice none: no text content")
    expect(parsed.choices[0].finish_reason in ("stop", "length"), f"finish_reason {parsed.choices[0].finish_reason!r}")


@case("tools.auto", R, "tools", "openai")
def auto(t: Target) -> None:
    """tool_choice auto (the default with tools): the tools reach the prompt, and the answer is text or calls
    that validate; never a malformed call."""
    with_tools, _ = create(t, tools=TOOLS, max_tokens=1)
    without, _ = create(t, max_tokens=1)
    expect(with_tools["usage"]["prompt_tokens"] > without["usage"]["prompt_tokens"] + 20,
           f"prompt tokens with tools {with_tools['usage']['prompt_tokens']}, without {without['usage']['prompt_tokens']}: "
           "the tools were not described to the model")
    for seed in (1, 2, 3, 4):
        _, parsed = create(t, tools=TOOLS, parallel_tool_calls=False, temperature=1.0, seed=seed)
        choice = parsed.choices[0]
        if choice.message.tool_calls:
            expect(choice.finish_reason == "tool_calls", f"calls with finish_reason {choice.finish_reason!r}")
            check_calls(choice.message.tool_calls, set(SCHEMAS))
        else:
            expect("<tool_call>" not in (choice.message.content or "") and '"arguments"' not in (choice.message.content or ""),
                   f"a call left in the text: {choice.message.content[:80]!r}")


@case("tools.stream", R, "tools", "openai")
def stream(t: Target) -> None:
    """Streamed calls as OpenAI sends them: the first delta of a call has index, id, type, name and empty
    arguments; later deltas carry argument fragments; the last chunk has finish_reason tool_calls."""
    chunks = list(t.sdk.chat.completions.create(model=t.model, messages=ASK, tools=[WEATHER], tool_choice="required",
                                                parallel_tool_calls=False, stream=True, **BASE))
    pieces = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    expect(pieces, "no tool_calls deltas in the stream")
    first = pieces[0]
    expect(first.index == 0 and first.id and first.type == "function", f"first call delta {first}")
    expect(first.function and first.function.name == "get_weather", f"first call delta has no name: {first}")
    expect((first.function.arguments or "") == "", f"first call delta carries arguments {first.function.arguments!r}")
    later = [p for p in pieces[1:] if p.index == 0]
    expect(all(p.id is None and (p.function is None or p.function.name is None) for p in later),
           "a later delta repeats the call's id or name")
    args = "".join((p.function.arguments or "") for p in pieces if p.index == 0 and p.function)
    try:
        jsonschema.validate(json.loads(args), SCHEMAS["get_weather"])
    except (ValueError, jsonschema.ValidationError) as e:
        raise AssertionError(f"streamed arguments {args[:80]!r} invalid: {e}") from None
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    expect(finishes == ["tool_calls"], f"finish reasons {finishes}, expected ['tool_calls'] once, last")


@case("tools.history", R, "tools", "openai")
def history(t: Target) -> None:
    """An assistant message with tool_calls and the tool's result are accepted and reach the prompt."""
    call = {"id": "call_abc123", "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris", "unit": "celsius"})}}
    turns = [*ASK, {"role": "assistant", "content": None, "tool_calls": [call]},
             {"role": "tool", "tool_call_id": "call_abc123", "content": json.dumps({"temperature": 21, "sky": "sunny"})}]
    body, parsed = create(t, messages=turns, tools=TOOLS, tool_choice="none", max_tokens=30)
    short, _ = create(t, messages=ASK, tools=TOOLS, tool_choice="none", max_tokens=1)
    expect(body["usage"]["prompt_tokens"] > short["usage"]["prompt_tokens"],
           "the call and its result did not lengthen the prompt: history ignored")
    message = parsed.choices[0].message
    expect(isinstance(message.content, str), f"no answer after the tool result (tool_calls {message.tool_calls})")
    # what each part says reaches the prompt: 40 more words in the result, and in the call's arguments
    longer_result = [*turns[:2], {**turns[2], "content": json.dumps({"temperature": 21, "sky": "sunny " * 41})}]
    longer_call = [*turns[:1], {**turns[1], "tool_calls": [{**call, "function": {
        "name": "get_weather", "arguments": json.dumps({"city": "Paris " * 41, "unit": "celsius"})}}]}, turns[2]]
    for what, messages in (("the tool result", longer_result), ("the call's arguments", longer_call)):
        longer, _ = create(t, messages=messages, tools=TOOLS, tool_choice="none", max_tokens=1)
        grew = longer["usage"]["prompt_tokens"] - body["usage"]["prompt_tokens"]
        expect(grew >= 30, f"40 more words in {what} added {grew} prompt tokens: its content does not reach the prompt")


@case("tools.unknown_named", R, "errors", "openai")
def unknown_named(t: Target) -> None:
    """Forcing a function that is not among `tools` is a 400 naming tool_choice."""
    r = t.post(ROUTE, {"model": t.model, "messages": ASK, "tools": TOOLS, "max_tokens": 4,
                       "tool_choice": {"type": "function", "function": {"name": "no_such_function"}}})
    expect(r.status_code == 400, f"status {r.status_code} for a tool_choice naming an unknown function, expected 400")
    err = r.json().get("error")
    expect(isinstance(err, dict), f"the 400 is not OpenAI's error body: {r.text[:200]}")
    expect(err.get("param") == "tool_choice", f"param {err.get('param')!r}, expected 'tool_choice'")
