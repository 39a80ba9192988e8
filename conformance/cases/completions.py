"""POST /completions (prompt string) replayed through the official SDK, plain and streamed."""
from __future__ import annotations

from conformance.cases.common import FINISH, sdk_create, usage_adds_up, usage_chunk_last, wire_stream
from conformance.checks import expect
from conformance.runner import case
from conformance.target import Target

ROUTE = "/completions"
R = "POST /completions"
PROMPT = "The three primary colors are"
GREEDY = {"temperature": 0, "max_tokens": 10, "seed": 7}


def create(t: Target, **kwargs):
    kwargs.setdefault("model", t.model)
    kwargs.setdefault("prompt", PROMPT)
    return sdk_create(t, t.sdk.completions, "POST", ROUTE, **kwargs)


@case("completions.plain", R, "plain", "openai")
def plain(t: Target) -> None:
    body, parsed = create(t, **GREEDY)
    expect(body.get("object") == "text_completion", f"object {body.get('object')!r}, expected 'text_completion'")
    expect(len(parsed.choices) == 1, f"{len(parsed.choices)} choices, expected 1")
    choice = parsed.choices[0]
    expect(isinstance(choice.text, str), "choices[0].text is not a string")
    expect(choice.finish_reason in FINISH, f"finish_reason {choice.finish_reason!r}")
    usage_adds_up(body.get("usage"), GREEDY["max_tokens"])
    t.notes["completions.greedy"] = choice.text


@case("completions.max_tokens", R, "sampling", "openai")
def length(t: Target) -> None:
    body, parsed = create(t, prompt="One, two, three, four,", max_tokens=3, temperature=0)
    expect(parsed.choices[0].finish_reason == "length", f"finish_reason {parsed.choices[0].finish_reason!r} at max_tokens=3")
    expect(body["usage"]["completion_tokens"] == 3, f"completion_tokens {body['usage']['completion_tokens']}, expected 3")


@case("completions.stream", R, "streaming", "openai")
def stream(t: Target) -> None:
    if "completions.greedy" not in t.notes:
        t.notes["completions.greedy"] = create(t, **GREEDY)[1].choices[0].text
    chunks = list(t.sdk.completions.create(model=t.model, prompt=PROMPT, stream=True, **GREEDY))
    expect(chunks, "no chunks")
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    expect(finishes and finishes[-1] in FINISH, f"last finish_reason {finishes[-1:]!r}")
    expect(all(f is None for f in finishes[:-1]), "finish_reason set before the last chunk")
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    expected = t.notes["completions.greedy"]
    expect(text == expected, f"streamed text {text!r} differs from the plain answer {expected!r}")


@case("completions.stream.wire", R, "streaming", "openai")
def stream_wire(t: Target) -> None:
    response, events = t.stream(ROUTE, t.completion_body(max_tokens=6, stream=True))
    wire_stream(t, ROUTE, response, events)
    for chunk in events.chunks:
        expect(chunk.get("object") == "text_completion", f"chunk object {chunk.get('object')!r}, expected 'text_completion'")


@case("completions.stream.usage", R, "streaming", "openai")
def stream_usage(t: Target) -> None:
    response, events = t.stream(ROUTE, t.completion_body(max_tokens=6, stream=True, stream_options={"include_usage": True}))
    wire_stream(t, ROUTE, response, events)
    usage_chunk_last(events, 6)


@case("completions.seed", R, "sampling", "openai")
def seed(t: Target) -> None:
    """At temperature 1 the same seed gives the same text twice, and different seeds give different texts."""
    def text(seed: int) -> str:
        return create(t, prompt="My favourite animal is", temperature=1.0, seed=seed, max_tokens=8)[1].choices[0].text

    a, b = text(99), text(99)
    expect(a == b, f"seed 99 gave {a!r} then {b!r}")
    expect(len({a, text(100), text(101)}) > 1, f"seeds 99, 100 and 101 all gave {a!r} at temperature 1: the seed or the temperature is ignored")
