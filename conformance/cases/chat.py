"""POST /chat/completions replayed through the official SDK, plain and streamed."""
from __future__ import annotations

from conformance.cases.common import FINISH, sdk_create, usage_adds_up, usage_chunk_last, wire_stream
from conformance.checks import expect, ok_json
from conformance.runner import Skipped, case
from conformance.target import Target

ROUTE = "/chat/completions"
R = "POST /chat/completions"
MESSAGES = [{"role": "user", "content": "Name three colors."}]
GREEDY = {"temperature": 0, "max_tokens": 12, "seed": 7}


def create(t: Target, **kwargs):
    kwargs.setdefault("model", t.model)
    kwargs.setdefault("messages", MESSAGES)
    return sdk_create(t, t.sdk.chat.completions, "POST", ROUTE, **kwargs)


def greedy_text(t: Target) -> str:
    if "chat.greedy" not in t.notes:
        _, parsed = create(t, **GREEDY)
        t.notes["chat.greedy"] = parsed.choices[0].message.content or ""
    return t.notes["chat.greedy"]


@case("chat.plain", R, "plain")
def plain(t: Target) -> None:
    body, parsed = create(t, max_tokens=8)
    expect(body.get("object") == "chat.completion", f"object {body.get('object')!r}, expected 'chat.completion'")
    expect(len(parsed.choices) == 1, f"{len(parsed.choices)} choices, expected 1")
    choice = parsed.choices[0]
    expect(choice.index == 0, f"choices[0].index {choice.index}")
    expect(choice.message.role == "assistant", f"message.role {choice.message.role!r}, expected 'assistant'")
    expect(isinstance(choice.message.content, str), "message.content is not a string")
    expect(choice.finish_reason in FINISH, f"finish_reason {choice.finish_reason!r}, expected stop or length")
    usage_adds_up(body.get("usage"), 8)


@case("chat.max_tokens", R, "sampling")
def max_tokens_length(t: Target) -> None:
    body, parsed = create(t, messages=[{"role": "user", "content": "Count from one to fifty in words."}], max_tokens=2, temperature=0)
    expect(parsed.choices[0].finish_reason == "length", f"finish_reason {parsed.choices[0].finish_reason!r} at max_tokens=2, expected 'length'")
    expect(body["usage"]["completion_tokens"] == 2, f"completion_tokens {body['usage']['completion_tokens']}, expected 2")


@case("chat.roles", R, "messages")
def roles(t: Target) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi."},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Name a fruit."},
    ]
    _, parsed = create(t, messages=messages, max_tokens=6)
    expect(parsed.choices[0].message.role == "assistant", "reply role is not assistant")


@case("chat.stream", R, "streaming")
def stream(t: Target) -> None:
    """Deltas through the SDK: role first, content assembles to the plain (greedy) answer, one finish_reason."""
    expected = greedy_text(t)
    chunks = list(t.sdk.chat.completions.create(model=t.model, messages=MESSAGES, stream=True, **GREEDY))
    expect(chunks, "no chunks")
    expect(chunks[0].choices and chunks[0].choices[0].delta.role == "assistant", "the first chunk's delta has no role 'assistant'")
    for chunk in chunks:
        expect(chunk.object == "chat.completion.chunk", f"object {chunk.object!r}, expected 'chat.completion.chunk'")
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    expect(finishes[-1] in FINISH, f"last finish_reason {finishes[-1]!r}, expected stop or length")
    expect(all(f is None for f in finishes[:-1]), "finish_reason set before the last chunk")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    expect(text == expected, f"streamed text {text!r} differs from the plain answer {expected!r} (temperature 0, same seed)")


@case("chat.stream.wire", R, "streaming")
def stream_wire(t: Target) -> None:
    response, events = t.stream(ROUTE, t.chat_body(max_tokens=6, stream=True))
    wire_stream(t, ROUTE, response, events)
    finishes = [c["choices"][0].get("finish_reason") for c in events.chunks if c.get("choices")]
    expect(finishes and finishes[-1] in FINISH, f"last finish_reason {finishes[-1:]!r}")
    expect(all(f is None for f in finishes[:-1]), "finish_reason must be null (present) on every chunk but the last")


@case("chat.stream.usage", R, "streaming")
def stream_usage(t: Target) -> None:
    response, events = t.stream(ROUTE, t.chat_body(max_tokens=6, stream=True, stream_options={"include_usage": True}))
    wire_stream(t, ROUTE, response, events)
    last = usage_chunk_last(events, 6)
    n_content = sum(1 for c in events.chunks[:-1] for ch in c["choices"] if ch.get("delta", {}).get("content"))
    expect(n_content <= last["usage"]["completion_tokens"] + 1, "more content chunks than completion tokens")


@case("chat.stop", R, "sampling")
def stop(t: Target) -> None:
    """Greedy answer, then the same request with a stop string from its middle: the text ends before it."""
    text = greedy_text(t)
    words = [w for w in text.split() if len(w) > 2]
    if len(words) < 2:
        raise Skipped(f"greedy answer too short to pick a stop string: {text!r}")
    needle = words[1]
    _, parsed = create(t, stop=[needle], **GREEDY)
    choice = parsed.choices[0]
    expect(needle not in (choice.message.content or ""), f"stop string {needle!r} appears in {choice.message.content!r}")
    expect(choice.finish_reason == "stop", f"finish_reason {choice.finish_reason!r}, expected 'stop'")
    expect(text.startswith(choice.message.content or ""), f"{choice.message.content!r} is not a prefix of {text!r}")


@case("chat.seed", R, "sampling")
def seed(t: Target) -> None:
    """Same seed at temperature 1: the same text twice."""
    kwargs = dict(messages=[{"role": "user", "content": "Invent a word."}], temperature=1.0, seed=1234, max_tokens=10)
    _, a = create(t, **kwargs)
    _, b = create(t, **kwargs)
    expect(a.choices[0].message.content == b.choices[0].message.content,
           f"seed 1234 gave {a.choices[0].message.content!r} then {b.choices[0].message.content!r}")


@case("chat.model_routing", R, "model routing")
def model_routing(t: Target) -> None:
    """Any non-empty model string routes to the loaded model (reference documents)."""
    body = ok_json(t, t.post(ROUTE, {**t.chat_body(max_tokens=2), "model": "some-placeholder-model"}), "POST", ROUTE)
    expect(body["choices"], "no choices")


@case("chat.extra_fields", R, "request fields")
def extra_fields(t: Target) -> None:
    """Unknown extra request fields are accepted and ignored (real clients send them)."""
    ok_json(t, t.post(ROUTE, t.chat_body(max_tokens=2, user="conformance", x_unknown_field={"a": 1})), "POST", ROUTE)


@case("chat.n", R, "request fields")
def n_choices(t: Target) -> None:
    """n=2: two choices, or an explicit 4xx error; never one choice silently."""
    response = t.post(ROUTE, t.chat_body(max_tokens=2, n=2))
    if response.status_code == 200:
        body = ok_json(t, response, "POST", ROUTE)
        expect(len(body["choices"]) == 2, f"n=2 answered with {len(body['choices'])} choice(s): silently ignored")
    else:
        expect(400 <= response.status_code < 500, f"n=2 gave HTTP {response.status_code}, expected 200 or a 4xx error")


@case("chat.penalties", R, "sampling")
def penalties(t: Target) -> None:
    """presence_penalty and frequency_penalty (documented parameters) are honoured, not fatal."""
    for value in (0.5, -0.5):
        _, parsed = create(t, max_tokens=6, presence_penalty=value, frequency_penalty=value)
        expect(parsed.choices[0].finish_reason in FINISH, f"penalties {value}: finish_reason {parsed.choices[0].finish_reason!r}")
