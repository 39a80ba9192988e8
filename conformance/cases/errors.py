"""The error table, each row provoked on purpose: status, OpenAI-shaped body, type/code/param, SDK class."""
from __future__ import annotations

import openai

from conformance.checks import error, sdk_raises
from conformance.runner import case
from conformance.target import Target

CHAT, COMPLETIONS, EMBEDDINGS = "/chat/completions", "/completions", "/embeddings"
LONG_PROMPT = "hello " * 40000  # well past any small model's context, well under 1 MB
HUGE_MAX_TOKENS = 10_000_000
JSON = {"Content-Type": "application/json"}


def chat_error(t: Target, body, status, **kw):
    return error(t, t.post(CHAT, body), "POST", CHAT, status, **kw)


# -- 400: malformed or structurally invalid -------------------------------------------------------
@case("errors.malformed_json", "POST /chat/completions", "400 bad request", "reference")
def malformed_json(t: Target) -> None:
    error(t, t.post(CHAT, content=b'{"model": "x", "messages": [', headers=JSON), "POST", CHAT, 400)


@case("errors.empty_body", "POST /chat/completions", "400 bad request", "reference")
def empty_body(t: Target) -> None:
    error(t, t.post(CHAT, content=b"", headers=JSON), "POST", CHAT, 400)


@case("errors.non_utf8_body", "POST /chat/completions", "400 bad request", "hearth")
def non_utf8(t: Target) -> None:
    error(t, t.post(CHAT, content=b'{"model": "\xff\xfe", "messages": []}', headers=JSON), "POST", CHAT, 400)


@case("errors.missing_messages", "POST /chat/completions", "400 bad request", "reference")
def missing_messages(t: Target) -> None:
    chat_error(t, {"model": t.model}, 400, param="messages")


@case("errors.missing_model", "POST /chat/completions", "400 bad request", "reference")
def missing_model(t: Target) -> None:
    chat_error(t, {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}, 400, param="model")


@case("errors.empty_messages", "POST /chat/completions", "400 bad request", "reference")
def empty_messages(t: Target) -> None:
    chat_error(t, {"model": t.model, "messages": [], "max_tokens": 1}, 400, param="messages")
    sdk_raises(lambda: t.sdk.chat.completions.create(model=t.model, messages=[], max_tokens=1), openai.BadRequestError, 400)


@case("errors.empty_model", "POST /chat/completions", "400 bad request", "reference")
def empty_model(t: Target) -> None:
    chat_error(t, {**t.chat_body(max_tokens=1), "model": ""}, 400, param="model")


@case("errors.wrong_type", "POST /chat/completions", "400 bad request", "hearth")
def wrong_type(t: Target) -> None:
    chat_error(t, t.chat_body(max_tokens=1, temperature="hot"), 400, param="temperature")
    sdk_raises(lambda: t.sdk.chat.completions.create(model=t.model, messages=[{"role": "user", "content": "hi"}], max_tokens="many"),
               openai.BadRequestError, 400)


@case("errors.bad_role", "POST /chat/completions", "400 bad request", "hearth")
def bad_role(t: Target) -> None:
    """An unknown role is an invalid value: 422 invalid_value naming the field (`messages[0].role`)."""
    chat_error(t, {"model": t.model, "messages": [{"role": "wizard", "content": "hi"}], "max_tokens": 1}, 422,
               code="invalid_value", param="messages[0].role")


@case("errors.completions_missing_prompt", "POST /completions", "400 bad request", "reference")
def completions_missing_prompt(t: Target) -> None:
    error(t, t.post(COMPLETIONS, {"model": t.model, "max_tokens": 1}), "POST", COMPLETIONS, 400, param="prompt")


@case("errors.embeddings_missing_input", "POST /embeddings", "400 bad request", "reference")
def embeddings_missing_input(t: Target) -> None:
    error(t, t.post(EMBEDDINGS, {"model": t.model}), "POST", EMBEDDINGS, 400, param="input")
    sdk_raises(lambda: t.sdk.embeddings.create(model=t.model, input=[]), openai.BadRequestError, 400)


# -- 422: invalid values ---------------------------------------------------------------------------
@case("errors.temperature_range", "POST /chat/completions", "422 invalid value", "reference")
def temperature_range(t: Target) -> None:
    chat_error(t, t.chat_body(max_tokens=1, temperature=2.5), 422, code="invalid_value", param="temperature")
    sdk_raises(lambda: t.sdk.chat.completions.create(model=t.model, messages=[{"role": "user", "content": "hi"}], max_tokens=1, temperature=3),
               openai.UnprocessableEntityError, 422)


@case("errors.top_p_range", "POST /chat/completions", "422 invalid value", "hearth")
def top_p_range(t: Target) -> None:
    chat_error(t, t.chat_body(max_tokens=1, top_p=1.5), 422, code="invalid_value", param="top_p")


@case("errors.max_tokens_ceiling", "POST /chat/completions", "422 invalid value", "reference")
def max_tokens_ceiling(t: Target) -> None:
    chat_error(t, t.chat_body(max_tokens=HUGE_MAX_TOKENS), 422, code="invalid_value", param="max_tokens")


@case("errors.completions_temperature_range", "POST /completions", "422 invalid value", "reference")
def completions_temperature(t: Target) -> None:
    error(t, t.post(COMPLETIONS, t.completion_body(max_tokens=1, temperature=7)), "POST", COMPLETIONS, 422,
          code="invalid_value", param="temperature")
    sdk_raises(lambda: t.sdk.completions.create(model=t.model, prompt="hi", max_tokens=1, top_p=2),
               openai.UnprocessableEntityError, 422)


# -- 400 context_length_exceeded -------------------------------------------------------------------
@case("errors.context_length_chat", "POST /chat/completions", "400 context length", "openai")
def context_chat(t: Target) -> None:
    chat_error(t, t.chat_body(LONG_PROMPT, max_tokens=1), 400, code="context_length_exceeded", param="messages")


@case("errors.context_length_completions", "POST /completions", "400 context length", "openai")
def context_completions(t: Target) -> None:
    error(t, t.post(COMPLETIONS, t.completion_body(LONG_PROMPT, max_tokens=1)), "POST", COMPLETIONS, 400,
          code="context_length_exceeded", param="prompt")
    sdk_raises(lambda: t.sdk.completions.create(model=t.model, prompt=LONG_PROMPT, max_tokens=1), openai.BadRequestError, 400)
