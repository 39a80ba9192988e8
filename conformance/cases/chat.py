"""POST /chat/completions replayed through the official SDK, plain and streamed."""
from __future__ import annotations

from conformance.cases.common import FINISH, sdk_create, usage_adds_up, usage_chunk_last, wire_stream
from conformance.checks import expect, ok_json
from conformance.runner import case
from conformance.target import Target

ROUTE = "/chat/completions"
R = "POST /chat/completions"
MESSAGES = [{"role": "user", "content": "Name three colors."}]
GREEDY = {"temperature": 0, "max_tokens": 12, "seed": 7}
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
LIST = [{"role": "user", "content": "Write a list of fruits."}]  # long, repetitive greedy answers: penalties show


def create(t: Target, **kwargs):
    kwargs.setdefault("model", t.model)
    kwargs.setdefault("messages", MESSAGES)
    return sdk_create(t, t.sdk.chat.completions, "POST", ROUTE, **kwargs)


def answer(t: Target, **kwargs) -> str:
    return create(t, **kwargs)[1].choices[0].message.content or ""


def greedy_text(t: Target) -> str:
    if "chat.greedy" not in t.notes:
        _, parsed = create(t, **GREEDY)
        t.notes["chat.greedy"] = parsed.choices[0].message.content or ""
    return t.notes["chat.greedy"]


@case("chat.plain", R, "plain", "openai")
def plain(t: Target) -> None:
    body, parsed = create(t, max_tokens=8)
    expect(body.get("object") == "chat.completion", f"object {body.get('object')!r}, expected 'chat.completion'")
    expect(len(parsed.choices) == 1, f"{len(parsed.choices)} choices, expected 1")
    choice = parsed.choices[0]
    expect(choice.index == 0, f"choices[0].index {choice.index}")
    expect(choice.message.role == "assistant", f"message.role {choice.message.role!r}, expected 'assistant'")
    expect(isinstance(choice.message.content, str) and choice.message.content, "message.content is not a non-empty string")
    expect(choice.finish_reason in FINISH, f"finish_reason {choice.finish_reason!r}, expected stop or length")
    usage_adds_up(body.get("usage"), 8)


@case("chat.max_tokens", R, "sampling", "openai")
def max_tokens_length(t: Target) -> None:
    body, parsed = create(t, messages=[{"role": "user", "content": "Count from one to fifty in words."}], max_tokens=2, temperature=0)
    expect(parsed.choices[0].finish_reason == "length", f"finish_reason {parsed.choices[0].finish_reason!r} at max_tokens=2, expected 'length'")
    expect(body["usage"]["completion_tokens"] == 2, f"completion_tokens {body['usage']['completion_tokens']}, expected 2")


@case("chat.roles", R, "messages", "openai")
def roles(t: Target) -> None:
    """Every role reaches the model: a system message, and an earlier assistant turn, each change the
    (greedy) answer to the same question; the reply's role is assistant."""
    alone = answer(t, messages=QUESTION, **GREEDY)
    system = answer(t, messages=[{"role": "system", "content": "You are a pirate. Always talk like a pirate."}, *QUESTION], **GREEDY)
    expect(system != alone, f"a system message did not change the greedy answer {alone!r}: the system role is ignored")
    turns = [{"role": "user", "content": "Let's talk about cooking."}, {"role": "assistant", "content": "Sure! I love cooking pasta."}]
    body, parsed = create(t, messages=[*turns, *QUESTION], **GREEDY)
    expect(parsed.choices[0].message.role == "assistant", f"reply role {parsed.choices[0].message.role!r}, expected 'assistant'")
    expect(parsed.choices[0].message.content != alone, f"earlier user/assistant turns did not change the greedy answer {alone!r}")


@case("chat.stream", R, "streaming", "openai")
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


@case("chat.stream.wire", R, "streaming", "openai")
def stream_wire(t: Target) -> None:
    response, events = t.stream(ROUTE, t.chat_body(max_tokens=6, stream=True))
    wire_stream(t, ROUTE, response, events)
    finishes = [c["choices"][0].get("finish_reason") for c in events.chunks if c.get("choices")]
    expect(finishes and finishes[-1] in FINISH, f"last finish_reason {finishes[-1:]!r}")
    expect(all(f is None for f in finishes[:-1]), "finish_reason must be null (present) on every chunk but the last")


@case("chat.stream.usage", R, "streaming", "openai")
def stream_usage(t: Target) -> None:
    response, events = t.stream(ROUTE, t.chat_body(max_tokens=6, stream=True, stream_options={"include_usage": True}))
    wire_stream(t, ROUTE, response, events)
    last = usage_chunk_last(events, 6)
    n_content = sum(1 for c in events.chunks[:-1] for ch in c["choices"] if ch.get("delta", {}).get("content"))
    expect(n_content <= last["usage"]["completion_tokens"] + 1, "more content chunks than completion tokens")


@case("chat.stop", R, "sampling", "openai")
def stop(t: Target) -> None:
    """Greedy answer, then the same request with a stop string from its middle: the text ends before it."""
    text = answer(t, messages=[{"role": "user", "content": "Count from 1 to 10."}], temperature=0, max_tokens=24, seed=7)
    expect(len(text) >= 6, f"greedy answer too short to pick a stop string from: {text!r}")
    middle = len(text) // 2
    needle = text[middle:middle + 3]
    before = text[:text.index(needle)]
    got = create(t, messages=[{"role": "user", "content": "Count from 1 to 10."}], temperature=0, max_tokens=24, seed=7, stop=[needle])[1]
    content = got.choices[0].message.content or ""
    expect(needle not in content, f"stop string {needle!r} appears in {content!r}")
    expect(got.choices[0].finish_reason == "stop", f"finish_reason {got.choices[0].finish_reason!r}, expected 'stop'")
    expect(content.strip() == before.strip(), f"{content!r} is not the greedy answer cut before {needle!r}: {before!r}")


@case("chat.seed", R, "sampling", "openai")
def seed(t: Target) -> None:
    """At temperature 1 the same seed gives the same text twice, and different seeds give different texts."""
    kwargs = dict(messages=[{"role": "user", "content": "Write a random sentence."}], temperature=1.0, max_tokens=12)
    a, b = answer(t, seed=1234, **kwargs), answer(t, seed=1234, **kwargs)
    expect(a == b, f"seed 1234 gave {a!r} then {b!r}")
    others = {answer(t, seed=s, **kwargs) for s in (1, 2)}
    expect(len(others | {a}) > 1, f"seeds 1234, 1 and 2 all gave {a!r} at temperature 1: the seed or the temperature is ignored")


@case("chat.model_routing", R, "model routing", "reference")
def model_routing(t: Target) -> None:
    """Any non-empty model string routes to the loaded model: the same greedy answer as its true id."""
    expected = greedy_text(t)
    body = ok_json(t, t.post(ROUTE, {"model": "some-placeholder-model", "messages": MESSAGES, **GREEDY}), "POST", ROUTE)
    expect(body["choices"], "no choices")
    got = body["choices"][0]["message"].get("content")
    expect(got == expected, f"model 'some-placeholder-model' answered {got!r}, the loaded model {expected!r}")


@case("chat.extra_fields", R, "request fields", "hearth")
def extra_fields(t: Target) -> None:
    """Unknown extra request fields are accepted and without effect: the same greedy answer as without."""
    expected = greedy_text(t)
    body = ok_json(t, t.post(ROUTE, {"model": t.model, "messages": MESSAGES, **GREEDY, "x_unknown_field": {"a": 1},
                                     "another_unknown": [1, "two"]}), "POST", ROUTE)
    got = body["choices"][0]["message"].get("content")
    expect(got == expected, f"with unknown fields the greedy answer is {got!r}, without {expected!r}")


@case("chat.n", R, "request fields", "openai")
def n_choices(t: Target) -> None:
    """n=3: three distinct choices (temperature 1), indexes 0, 1, 2, each with its own finish_reason."""
    body, parsed = create(t, messages=[{"role": "user", "content": "Write a random sentence."}], temperature=1.0, max_tokens=12,
                          seed=5, n=3)
    indexes = [c.index for c in parsed.choices]
    expect(sorted(indexes) == [0, 1, 2], f"n=3 answered with choice indexes {indexes}, expected 0, 1, 2")
    texts = [c.message.content for c in parsed.choices]
    expect(len(set(texts)) == 3, f"n=3 at temperature 1 gave {texts}: choices are not distinct")
    expect(all(c.finish_reason in FINISH for c in parsed.choices), "a choice without finish_reason")


@case("chat.penalties", R, "sampling", "openai")
def penalties(t: Target) -> None:
    """presence_penalty and frequency_penalty each make a long, repetitive greedy answer repeat less, and a
    negative one (OpenAI allows -2..2) repeat at least as much: a penalty applied backwards fails."""
    kwargs = dict(messages=LIST, temperature=0, max_tokens=40, seed=7)

    def repeats(text: str) -> int:
        words = text.lower().split()
        return len(words) - len(set(words))

    plain_text = answer(t, **kwargs)
    for name in ("presence_penalty", "frequency_penalty"):
        penalised, encouraged = answer(t, **kwargs, **{name: 1.5}), answer(t, **kwargs, **{name: -1.5})
        expect(penalised != plain_text, f"{name}=1.5 left the greedy answer unchanged ({plain_text[:60]!r}...): ignored")
        expect(repeats(penalised) < repeats(encouraged),
               f"{name}=1.5 repeats {repeats(penalised)} words and {name}=-1.5 {repeats(encouraged)}: the penalty "
               f"does not discourage repetition ({penalised[:60]!r}...)")
