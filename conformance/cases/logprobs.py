"""logprobs, top_logprobs and logit_bias on /chat/completions and /completions, plain and streamed.

What is checked is what a client relies on: the tokens spell the text they come with (their bytes,
decoded, are the content), there is one per completion token, top alternatives are ordered and at
temperature 0 the chosen token is the most likely one; logit_bias +100 forces a token and -100 bans
it (checked without knowing any token's text: ids 1000 and 1001 exist in every real vocabulary).
"""
from __future__ import annotations

from conformance.cases.common import sdk_create, wire_stream
from conformance.checks import error, expect, ok_json
from conformance.runner import case
from conformance.target import Target

CHAT, COMPLETIONS = "/chat/completions", "/completions"
RC, RT = "POST /chat/completions", "POST /completions"
# a prompt whose answer is longer than max_tokens: finish_reason "length", so no end-of-generation
# token is in question and the token count must equal max_tokens exactly
LONG = [{"role": "user", "content": "Écris une longue histoire en français sur un dragon nommé 日本."}]
N = 10
CHAT_LP = {"temperature": 0, "max_tokens": N, "logprobs": True, "top_logprobs": 3}


def spelled(tokens) -> str:
    """The text a list of chat logprob entries spells (an incomplete last character reads as U+FFFD)."""
    return b"".join(bytes(t.get("bytes") or b"") for t in tokens).decode("utf-8", errors="replace")


def chat_entries(t: Target, route_body: dict) -> list[dict]:
    body, _ = sdk_create(t, t.sdk.chat.completions, "POST", CHAT, **route_body)
    lp = body["choices"][0].get("logprobs")
    expect(isinstance(lp, dict) and isinstance(lp.get("content"), list), f"choices[0].logprobs.content missing: {lp!r}")
    t.notes["logprobs.chat.body"] = body
    return lp["content"]


@case("logprobs.chat.plain", RC, "logprobs", "openai")
def chat_plain(t: Target) -> None:
    entries = chat_entries(t, dict(model=t.model, messages=LONG, **CHAT_LP))
    body = t.notes["logprobs.chat.body"]
    choice, usage = body["choices"][0], body["usage"]
    content = choice["message"]["content"] or ""
    expect(choice["finish_reason"] == "length", f"finish_reason {choice['finish_reason']!r} at max_tokens={N}, expected length")
    expect(len(entries) == usage["completion_tokens"] == N,
           f"{len(entries)} logprob entries, completion_tokens {usage['completion_tokens']}, max_tokens {N}: expected all equal")
    for e in entries:
        expect(all(k in e for k in ("token", "logprob", "bytes", "top_logprobs")), f"a content entry lacks a field: {e!r}")
        expect(e["logprob"] <= 0, f"logprob {e['logprob']} > 0 for {e['token']!r}")
    expect(spelled(entries) == content, f"the tokens' bytes spell {spelled(entries)!r}, the content is {content!r}")


@case("logprobs.chat.top", RC, "logprobs", "openai")
def chat_top(t: Target) -> None:
    """top_logprobs: as many as asked, most likely first, and at temperature 0 the chosen token leads."""
    entries = chat_entries(t, dict(model=t.model, messages=LONG, **CHAT_LP))
    for i, e in enumerate(entries):
        top = e["top_logprobs"]
        expect(len(top) == 3, f"token {i}: {len(top)} top_logprobs, expected 3")
        values = [a["logprob"] for a in top]
        expect(values == sorted(values, reverse=True), f"token {i}: top_logprobs not in descending order: {values}")
        expect(top[0]["token"] == e["token"] and abs(top[0]["logprob"] - e["logprob"]) < 1e-4,
               f"token {i}: temperature 0 chose {e['token']!r} ({e['logprob']}), the most likely is "
               f"{top[0]['token']!r} ({top[0]['logprob']})")


@case("logprobs.chat.stream", RC, "logprobs", "openai")
def chat_stream(t: Target) -> None:
    """Streamed: each chunk's tokens spell that chunk's content, and all of them the plain answer's."""
    plain = chat_entries(t, dict(model=t.model, messages=LONG, **CHAT_LP))
    response, events = t.stream(CHAT, {"model": t.model, "messages": LONG, "stream": True, **CHAT_LP})
    wire_stream(t, CHAT, response, events)
    streamed, text = [], ""
    for chunk in events.chunks:
        for c in chunk.get("choices") or []:
            piece = (c.get("delta") or {}).get("content") or ""
            entries = (c.get("logprobs") or {}).get("content") or []
            expect(spelled(entries) == piece or not entries,
                   f"a chunk's tokens spell {spelled(entries)!r}, its content is {piece!r}")
            streamed += entries
            text += piece
    expect(spelled(streamed) == text, f"the streamed logprobs' tokens spell {spelled(streamed)!r}, the content is {text!r}")
    expect([e["token"] for e in streamed] == [e["token"] for e in plain],
           "the streamed tokens differ from the plain answer's (temperature 0)")


@case("logprobs.chat.off", RC, "logprobs", "openai")
def chat_off(t: Target) -> None:
    body, _ = sdk_create(t, t.sdk.chat.completions, "POST", CHAT, model=t.model, messages=LONG, max_tokens=2)
    lp = body["choices"][0].get("logprobs", "absent")
    expect(lp is None, f"choices[0].logprobs is {lp!r} without logprobs requested, expected null")
    fp = body.get("system_fingerprint", "absent")
    expect(fp == "absent" or isinstance(fp, str), f"system_fingerprint {fp!r}: OpenAI's schema says string (omit it or fill it)")


@case("logprobs.completions", RT, "logprobs", "openai")
def completions(t: Target) -> None:
    body, _ = sdk_create(t, t.sdk.completions, "POST", COMPLETIONS, model=t.model, prompt="Il était une fois, à 日本,",
                         max_tokens=N, temperature=0, logprobs=2)
    choice = body["choices"][0]
    lp, text = choice.get("logprobs"), choice["text"]
    expect(isinstance(lp, dict), f"choices[0].logprobs is {lp!r}, expected an object")
    tokens, values, tops, offsets = (lp.get(k) for k in ("tokens", "token_logprobs", "top_logprobs", "text_offset"))
    expect(all(isinstance(x, list) for x in (tokens, values, tops, offsets)), f"logprobs lists missing: {lp!r}")
    expect(len(tokens) == len(values) == len(tops) == len(offsets) == body["usage"]["completion_tokens"],
           f"{len(tokens)} tokens, {len(values)} logprobs, {len(tops)} tops, {len(offsets)} offsets, "
           f"completion_tokens {body['usage']['completion_tokens']}: expected all equal")
    whole = [tok for tok in tokens if not tok.startswith("bytes:")]
    if len(whole) == len(tokens):
        expect("".join(tokens) == text, f"tokens join to {''.join(tokens)!r}, the text is {text!r}")
    expect(offsets == sorted(offsets), f"text_offset not ascending: {offsets}")
    for tok, v, top in zip(tokens, values, tops):
        expect(isinstance(top, dict) and 1 <= len(top) <= 3, f"top_logprobs entry {top!r}: expected 1 to logprobs+1 entries")
        expect(abs(max(top.values()) - v) < 1e-4, f"temperature 0 chose {tok!r} ({v}) but {top} has a likelier token")


def without_first_prompt_token(body: dict) -> dict:
    """OpenAI sends the prompt's first token with a null logprob (echo), a form its published schema
    (numbers only) does not describe: the shape is judged without that entry."""
    for choice in body.get("choices") or []:
        lp = choice.get("logprobs") or {}
        for key in ("tokens", "token_logprobs", "top_logprobs", "text_offset"):
            if isinstance(lp.get(key), list) and lp[key]:
                lp[key] = lp[key][1:]
    return body


@case("logprobs.completions.echo", RT, "logprobs", "openai")
def completions_echo(t: Target) -> None:
    """echo + logprobs (lm-evaluation-harness's loglikelihood): the prompt's tokens lead, the first with a
    null logprob, each other with its logprob given the ones before; max_tokens 0 scores the prompt only."""
    prompt = "The capital of France is Paris, and the capital of Italy is"
    body = ok_json(t, t.post(COMPLETIONS, t.completion_body(prompt, max_tokens=0, temperature=0, logprobs=2, echo=True)),
                   "POST", COMPLETIONS, without_first_prompt_token)
    choice = body["choices"][0]
    lp = choice.get("logprobs") or {}
    tokens, values, tops, offsets = (lp.get(k) or [] for k in ("tokens", "token_logprobs", "top_logprobs", "text_offset"))
    expect(choice["text"] == prompt, f"text {choice['text']!r}, expected the prompt alone at max_tokens 0")
    expect(body["usage"]["completion_tokens"] == 0, f"completion_tokens {body['usage']['completion_tokens']} at max_tokens 0")
    expect(len(tokens) == len(values) == len(tops) == len(offsets) == body["usage"]["prompt_tokens"],
           f"{len(tokens)} tokens, {len(values)} logprobs, {len(tops)} tops, {len(offsets)} offsets, prompt_tokens "
           f"{body['usage']['prompt_tokens']}: expected all equal")
    expect("".join(tokens) == prompt, f"tokens join to {''.join(tokens)!r}, the prompt is {prompt!r}")
    expect(values[0] is None and tops[0] is None, f"the first token has logprob {values[0]!r} / top {tops[0]!r}, expected null")
    for tok, off in zip(tokens, offsets):
        expect(prompt[off:off + len(tok)] == tok, f"text_offset {off} does not point at {tok!r}")
    for tok, v, top in zip(tokens[1:], values[1:], tops[1:]):
        expect(isinstance(v, (int, float)) and v <= 0, f"prompt token {tok!r} has logprob {v!r}")
        expect(isinstance(top, dict) and top.get(tok) == v and len(top) <= 3, f"top_logprobs {top!r} for {tok!r} ({v})")
    paris = tokens.index(" Paris") if " Paris" in tokens else None
    expect(paris is not None and values[paris] > -3, f"' Paris' after 'The capital of France is' has logprob "
           f"{values[paris] if paris is not None else 'absent'}: not the model's own next-token logprob")


def _chosen(body: dict) -> list:
    """The sampled tokens, read from completions logprobs (`logprobs: 0` asks for them without alternatives)."""
    lp = body["choices"][0].get("logprobs")
    tokens = lp.get("tokens") if isinstance(lp, dict) else None
    expect(isinstance(tokens, list), f"logprobs: 0 gave no logprobs.tokens to read the chosen tokens from: {str(lp)[:120]}")
    return tokens


@case("logit_bias.force_and_ban", RT, "logit_bias", "openai")
def force_and_ban(t: Target) -> None:
    """+100 forces a token; -100 alone bans: banning the block of 4,096 token ids that holds the greedy
    answer's first token changes it (found block by block, up to the end of the vocabulary)."""
    base = dict(model=t.model, prompt="The capital of France is", max_tokens=3, temperature=0, logprobs=0)
    body, _ = sdk_create(t, t.sdk.completions, "POST", COMPLETIONS, logit_bias={"1000": 100}, **base)
    forced = _chosen(body)
    expect(len(forced) == 3 and len(set(forced)) == 1, f"+100 on token 1000 gave tokens {forced}, expected one token thrice")
    one = dict(base, max_tokens=1)
    body, _ = sdk_create(t, t.sdk.completions, "POST", COMPLETIONS, **one)
    greedy = _chosen(body)
    for start in range(0, 1 << 20, 4096):
        bans = {str(i): -100 for i in range(start, start + 4096)}
        r = t.post(COMPLETIONS, {**one, "logit_bias": bans})
        if r.status_code != 200:  # past the vocabulary (ids the model does not have are refused)
            break
        if _chosen(r.json()) != greedy:
            return
    raise AssertionError(f"no block of -100 biases changed the greedy first token {greedy}: bans are ignored")


@case("logit_bias.out_of_vocabulary", RC, "logit_bias", "hearth")
def out_of_vocabulary(t: Target) -> None:
    response = t.post(CHAT, t.chat_body(max_tokens=2, logit_bias={"999999999": 5}))
    error(t, response, "POST", CHAT, 422, code="invalid_value", param="logit_bias")


@case("logprobs.top_logprobs_range", RC, "logprobs", "hearth")
def top_logprobs_range(t: Target) -> None:
    response = t.post(CHAT, t.chat_body(max_tokens=2, logprobs=True, top_logprobs=21))
    error(t, response, "POST", CHAT, 422, code="invalid_value", param="top_logprobs")
