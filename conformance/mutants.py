"""The mutant table: each entry breaks exactly one behaviour the suite claims to check.

A mutant is applied by conformance/proxy.py in front of a real server. `catches` lists the cases that
must fail against it: `tests/conformance/test_mutants.py` runs each mutant against those cases in CI;
`python -m conformance.mutation --base-url URL` runs the full mutant x case matrix and writes the score.

Adding a mutant for a new case (logprobs, tools, structured output, model routes...) is one entry:

    Mutant("logprobs_dropped", "choices[].logprobs is null even when asked for",
           catches=("chat.logprobs",), on_response=edit_body("/chat/completions", _null_logprobs),
           names=("logprobs",)),

`names` says what a catching case's failure must name (a field, a parameter, a status): a case that fails
against the mutant for another reason has not shown that it checks that behaviour
(tests/conformance/test_matrix.py checks every recorded catch of the committed matrix).
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

Json = Any


@dataclass
class Exchange:
    """One request as the proxy saw it; a request hook may edit `body` and `headers`."""

    method: str
    path: str  # upstream path, e.g. /v1/chat/completions
    headers: dict[str, str]
    body: Json
    original: Json = field(init=False)
    state: dict = field(default_factory=dict)  # what a stream hook remembers between one request's events

    def __post_init__(self) -> None:
        self.original = copy.deepcopy(self.body)

    @property
    def body_changed(self) -> bool:
        return json.dumps(self.body, sort_keys=True) != json.dumps(self.original, sort_keys=True)

    def on(self, route: str, method: str = "POST") -> bool:
        """This request is METHOD route (after the base URL's /v1); a route may end in a regex, e.g. /models/.+"""
        return self.method == method and is_route(self.path, route)


def is_route(path: str, route: str) -> bool:
    return re.fullmatch(r"(/v\d+)?" + route, path) is not None


RequestHook = Callable[[Exchange], "tuple[int, Json] | None"]  # a (status, body) answers without the upstream
ResponseHook = Callable[[Exchange, int, dict, Json], "tuple[int, dict, Json]"]
EventHook = Callable[[Exchange, int, Json], list]  # one upstream SSE event -> the events to send ("[DONE]" is a str)


@dataclass(frozen=True)
class Mutant:
    name: str
    breaks: str  # the one behaviour it breaks, for the table
    catches: tuple[str, ...] = ()  # the cases that must fail against it
    on_request: RequestHook | None = None
    on_response: ResponseHook | None = None
    on_event: EventHook | None = None
    cut_after: int | None = None  # end the stream after this many upstream events
    needs: str = "ready"  # "loading": only observable while the upstream is still loading its model
    names: tuple[str, ...] = ()  # what a catching case's failure must name (any one, any case): the field,
    #                              parameter or behaviour broken; a failure naming none caught it for another reason

    def named_by(self, reason: str | None) -> bool:
        """Whether a case's failure reason names what this mutant broke."""
        return any(word.lower() in (reason or "").lower() for word in self.names)


# -- hook builders ----------------------------------------------------------------------------------
def drop(route: str, *fields: str) -> RequestHook:
    """The server ignores these request fields."""
    def hook(ex: Exchange):
        if ex.on(route) and isinstance(ex.body, dict):
            for name in fields:
                ex.body.pop(name, None)
    return hook


def set_fields(route: str, **values: Any) -> RequestHook:
    def hook(ex: Exchange):
        if ex.on(route) and isinstance(ex.body, dict):
            ex.body.update(values)
    return hook


def edit_request(route: str, edit: Callable[[dict], None]) -> RequestHook:
    def hook(ex: Exchange):
        if ex.on(route) and isinstance(ex.body, dict):
            edit(ex.body)
    return hook


def answer(route: str, status: int, body: Json, method: str = "POST", when: Callable[[Exchange], bool] = lambda ex: True) -> RequestHook:
    """The server answers this route by itself (e.g. a route that is gone)."""
    def hook(ex: Exchange):
        if ex.on(route, method) and when(ex):
            return status, body
    return hook


def edit_body(route: str, edit: Callable[[Json], None], status: int = 200, method: str = "POST") -> ResponseHook:
    """Edit a JSON response body of this route and status in place."""
    def hook(ex: Exchange, code: int, headers: dict, body: Json):
        if ex.on(route, method) and code == status and isinstance(body, dict):
            edit(body)
        return code, headers, body
    return hook


def restatus(old: int, new: int) -> ResponseHook:
    """Rewrite one status to another (the body is kept)."""
    def hook(ex: Exchange, code: int, headers: dict, body: Json):
        if code == old:
            code = new
        return code, headers, body
    return hook


def edit_error(edit: Callable[[dict], None]) -> ResponseHook:
    def hook(ex: Exchange, code: int, headers: dict, body: Json):
        if code >= 400 and isinstance(body, dict) and isinstance(body.get("error"), dict):
            edit(body["error"])
        return code, headers, body
    return hook


def edit_headers(edit: Callable[[int, dict], None]) -> ResponseHook:
    def hook(ex: Exchange, code: int, headers: dict, body: Json):
        edit(code, headers)
        return code, headers, body
    return hook


def edit_chunks(route: str, edit: Callable[[int, dict], None]) -> EventHook:
    """Edit every JSON chunk of this route's streams (index counts upstream events from 0)."""
    def hook(ex: Exchange, index: int, event: Json):
        if is_route(ex.path, route) and isinstance(event, dict):
            edit(index, event)
        return [event]
    return hook


def both(*hooks: RequestHook) -> RequestHook:
    def hook(ex: Exchange):
        for h in hooks:
            h(ex)
    return hook


# -- edits ------------------------------------------------------------------------------------------
def _choices(body: dict) -> list:
    return body.get("choices") or []


def _no_cors(code: int, headers: dict, only_errors: bool = False) -> None:
    if only_errors and code < 400:
        return
    for key in [k for k in headers if k.lower().startswith("access-control-")]:
        del headers[key]


def _past_max_tokens(body: dict) -> None:
    """Not dropped: without a limit a server's default runs to its context ceiling (minutes per case)."""
    if isinstance(body.get("max_tokens"), int) and body["max_tokens"] > 0:
        body["max_tokens"] += 32


def _strip_system(body: dict) -> None:
    body["messages"] = [m for m in body.get("messages", []) if not (isinstance(m, dict) and m.get("role") in ("system", "developer"))]


def _last_user_only(body: dict) -> None:
    users = [m for m in body.get("messages", []) if isinstance(m, dict) and m.get("role") == "user"]
    if users:
        body["messages"] = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") in ("system", "developer")] + users[-1:]


def _embeddings_shifted(body: dict) -> None:
    """Vectors paired with the wrong inputs: data rotated by one, indexes still 0..n-1."""
    data = body.get("data") or []
    if len(data) > 1:
        vectors = [d["embedding"] for d in data]
        for i, d in enumerate(data):
            d["embedding"] = vectors[(i + 1) % len(vectors)]


def _embeddings_scaled(body: dict) -> None:
    for d in body.get("data") or []:
        if isinstance(d.get("embedding"), list):
            d["embedding"] = [2 * x for x in d["embedding"]]


def _embeddings_short_last(body: dict) -> None:
    data = body.get("data") or []
    if len(data) > 1 and isinstance(data[-1].get("embedding"), list):
        data[-1]["embedding"] = data[-1]["embedding"][:-1]


def _usage_on_last_content(ex: Exchange, index: int, event: Json) -> list:
    """llama-cpp-python's way: the usage rides on the last content chunk, no `choices: []` chunk."""
    if isinstance(event, dict) and event.get("usage") and event.get("choices") == []:
        return []  # the separate usage chunk disappears...
    if isinstance(event, dict) and any(c.get("finish_reason") for c in _choices(event)):
        event["usage"] = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}  # ...and rides here
    return [event]


def _bogus_finish(ex: Exchange, code: int, headers: dict, body: Json):
    if code == 200 and isinstance(body, dict):
        for c in _choices(body):
            c["finish_reason"] = "done"
    return code, headers, body


def _fingerprint_null(ex: Exchange, code: int, headers: dict, body: Json):
    if code == 200 and isinstance(body, dict) and "choices" in body:
        body["system_fingerprint"] = None
    return code, headers, body


def _reverse_top_logprobs(body: dict) -> None:
    for c in _choices(body):
        for entry in ((c.get("logprobs") or {}).get("content") or []):
            entry["top_logprobs"] = list(reversed(entry.get("top_logprobs") or []))


def _logprobs_unasked(ex: Exchange, code: int, headers: dict, body: Json):
    """choices[].logprobs filled although the request did not ask for logprobs."""
    if code == 200 and ex.on(CHAT) and isinstance(ex.body, dict) and not ex.body.get("logprobs") and isinstance(body, dict):
        for c in _choices(body):
            c["logprobs"] = {"content": [], "refusal": None}
    return code, headers, body


def _no_done(ex: Exchange, index: int, event: Json) -> list:
    return [] if event == "[DONE]" else [event]


def _strict_model(ex: Exchange):
    body = ex.body if isinstance(ex.body, dict) else {}
    if ex.on("/chat/completions") and body.get("model") == "some-placeholder-model":
        return 404, {"error": {"message": "model not found", "type": "invalid_request_error", "param": "model", "code": "model_not_found"}}


def _reject_unknown(ex: Exchange):
    known = {"model", "messages", "max_tokens", "temperature", "seed", "top_p", "stream", "stop", "n", "user",
             "presence_penalty", "frequency_penalty", "stream_options", "max_completion_tokens"}
    if ex.on("/chat/completions") and isinstance(ex.body, dict) and set(ex.body) - known:
        return 400, {"error": {"message": "Unrecognized request argument", "type": "invalid_request_error", "param": None, "code": None}}


def _needs_key(ex: Exchange):
    if not ex.headers.get("authorization"):
        return 401, {"error": {"message": "no key", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}


def _gone(route: str, method: str = "POST") -> RequestHook:
    return answer(route, 404, {"error": {"message": "Not found", "type": "invalid_request_error", "param": None, "code": None}},
                  method=method)


def _loading_is_500(ex: Exchange, code: int, headers: dict, body: Json):
    return (500, headers, body) if code == 503 else (code, headers, body)


def _no_retry_after(code: int, headers: dict) -> None:
    for key in [k for k in headers if k.lower() == "retry-after"]:
        del headers[key]


def _detail_body(ex: Exchange, code: int, headers: dict, body: Json):
    if code >= 400 and isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = {"detail": body["error"].get("message")}
    return code, headers, body


def _plain_text_404(ex: Exchange, code: int, headers: dict, body: Json):
    if code == 404 and not ex.path.rstrip("/").endswith(("/models", "/completions", "/embeddings")) and "/models/" not in ex.path:
        headers["content-type"] = "text/plain"
        return 404, headers, None
    return code, headers, body


# -- tools and structured output -------------------------------------------------------------------
def _messages(body: dict) -> list[dict]:
    return [c["message"] for c in _choices(body) if isinstance(c.get("message"), dict)]


def _calls_as_text(body: dict) -> None:
    """No tool-call parser: the model's calls come back as raw text in `content`, finish_reason stop."""
    for c in _choices(body):
        msg = c.get("message") or {}
        calls = msg.pop("tool_calls", None)
        if calls:
            msg["content"] = "".join(f'<tool_call>{{"name": "{x["function"]["name"]}", "arguments": {x["function"]["arguments"]}}}</tool_call>'
                                     for x in calls)
            c["finish_reason"] = "stop"


def _edit_calls(edit: Callable[[dict], None]) -> Callable[[dict], None]:
    def apply(body: dict) -> None:
        for msg in _messages(body):
            for call in msg.get("tool_calls") or []:
                edit(call["function"])
    return apply


def _extra_argument(function: dict) -> None:
    args = json.loads(function["arguments"])
    function["arguments"] = json.dumps({**args, "unexpected": 1}) if isinstance(args, dict) else function["arguments"]


def _content_beside_calls(body: dict) -> None:
    for msg in _messages(body):
        if msg.get("tool_calls"):
            msg["content"] = ""


def _tool_finish_stop(c: dict) -> None:
    if c.get("finish_reason") == "tool_calls":
        c["finish_reason"] = "stop"


def _named(ex: Exchange) -> str | None:
    choice = ex.body.get("tool_choice") if isinstance(ex.body, dict) else None
    return ((choice or {}).get("function") or {}).get("name") if isinstance(choice, dict) else None


def _tool_names(body: dict) -> list[str]:
    return [(t.get("function") or {}).get("name") for t in body.get("tools") or [] if isinstance(t, dict)]


def _call_other_function(ex: Exchange, code: int, headers: dict, body: Json):
    """The named tool_choice only steers: the call names another of the request's tools."""
    wanted = _named(ex)
    others = [n for n in _tool_names(ex.original) if n != wanted] if wanted and isinstance(ex.original, dict) else []
    if code == 200 and others and isinstance(body, dict):
        for msg in _messages(body):
            for call in msg.get("tool_calls") or []:
                call["function"]["name"] = others[0]
    return code, headers, body


def _unknown_named_to_auto(body: dict) -> None:
    choice = body.get("tool_choice")
    name = ((choice or {}).get("function") or {}).get("name") if isinstance(choice, dict) else None
    if name and name not in _tool_names(body):
        body["tool_choice"] = "auto"


def _none_to_required(body: dict) -> None:
    if body.get("tool_choice") == "none":
        body["tool_choice"] = "required"


def _call_left_in_text(ex: Exchange, code: int, headers: dict, body: Json):
    """Under tool_choice auto, a call the model wrote after some text is left unparsed in `content`."""
    req = ex.original if isinstance(ex.original, dict) else {}
    if code == 200 and ex.on(CHAT) and req.get("tools") and req.get("tool_choice", "auto") == "auto" and isinstance(body, dict):
        name = _tool_names(req)[0]
        for msg in _messages(body):
            if not msg.get("tool_calls"):
                msg["content"] = (msg.get("content") or "") + f'<tool_call>{{"name": "{name}", "arguments": {{}}}}</tool_call>'
    return code, headers, body


def _penalties_backwards(body: dict) -> None:
    for name in ("presence_penalty", "frequency_penalty"):
        if isinstance(body.get(name), (int, float)):
            body[name] = -body[name]


def _bans_ignored(body: dict) -> None:
    if isinstance(body.get("logit_bias"), dict):
        body["logit_bias"] = {k: v for k, v in body["logit_bias"].items() if not (isinstance(v, (int, float)) and v < 0)}


def _tool_contents_fixed(body: dict) -> None:
    """Tool turns reach the prompt by role only: results and arguments lose what they say."""
    for m in body.get("messages", []):
        if isinstance(m, dict) and m.get("role") == "tool":
            m["content"] = "{}"
        for call in (m.get("tool_calls") or []) if isinstance(m, dict) else []:
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                call["function"]["arguments"] = "{}"


def _drop_tool_turns(body: dict) -> None:
    body["messages"] = [m for m in body.get("messages", []) if not (isinstance(m, dict) and (m.get("role") == "tool" or m.get("tool_calls")))]


def _call_deltas(event: dict) -> list[dict]:
    return [tc for c in _choices(event) for tc in ((c.get("delta") or {}).get("tool_calls") or [])]


def _repeat_id_and_name(ex: Exchange, index: int, event: Json) -> list:
    """Every streamed delta of a call repeats its id, type and name."""
    for tc in _call_deltas(event) if isinstance(event, dict) else []:
        seen = ex.state.setdefault(tc.get("index"), {})
        if tc.get("id"):
            seen.update(id=tc["id"], name=(tc.get("function") or {}).get("name"))
        elif seen:
            tc.update(id=seen["id"], type="function")
            tc.setdefault("function", {})["name"] = seen["name"]
    return [event]


def _arguments_in_first_delta(ex: Exchange, index: int, event: Json) -> list:
    """A call's first delta is held back and sent with the first argument fragment in it."""
    if not isinstance(event, dict):
        return [event]
    for tc in _call_deltas(event):
        held = ex.state.get("held")
        if tc.get("id") and held is None:
            ex.state["held"] = copy.deepcopy(event)
            return []
        if held and not tc.get("id") and (tc.get("function") or {}).get("arguments"):
            ex.state["held"] = False
            first = _call_deltas(held)[0]
            first["function"]["arguments"] = tc["function"]["arguments"]
            return [held]
    return [event]


def _format_is(kind: str, stream: bool | None = None) -> Callable[[dict], bool]:
    def test(body: dict) -> bool:
        fmt = body.get("response_format")
        return isinstance(fmt, dict) and fmt.get("type") == kind and (stream is None or bool(body.get("stream")) == stream)
    return test


def _when(test: Callable[[dict], bool], edit: Callable[[dict], None]) -> Callable[[dict], None]:
    def apply(body: dict) -> None:
        if test(body):
            edit(body)
    return apply


def _broken_json_content(ex: Exchange, code: int, headers: dict, body: Json):
    """A constrained answer that does not parse: its last character is lost, finish_reason still stop."""
    req = ex.original if isinstance(ex.original, dict) else {}
    if code == 200 and ex.on(CHAT) and isinstance(req.get("response_format"), dict) and isinstance(body, dict):
        for msg in _messages(body):
            if isinstance(msg.get("content"), str) and msg["content"]:
                msg["content"] = msg["content"][:-1]
    return code, headers, body


UNENFORCEABLE = ("uniqueItems", "not", "if", "then", "else", "contains", "patternProperties", "dependentSchemas")


def _strip_unenforceable(node: Json) -> None:
    if isinstance(node, dict):
        for key in UNENFORCEABLE:
            node.pop(key, None)
        for value in node.values():
            _strip_unenforceable(value)
    elif isinstance(node, list):
        for value in node:
            _strip_unenforceable(value)


def _accept_unenforceable(body: dict) -> None:
    """A server that cannot enforce a schema keyword drops it silently instead of refusing the request."""
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and isinstance(fmt.get("json_schema"), dict):
        _strip_unenforceable(fmt["json_schema"].get("schema"))


# -- completions echo, completions response_format, parallel calls (parity's second round) ----------
def _shift_echo_logprobs(body: dict) -> None:
    """Off by one: each prompt token carries the logprob of the token after it (the top lists kept)."""
    for c in _choices(body):
        values = (c.get("logprobs") or {}).get("token_logprobs")
        if isinstance(values, list) and len(values) > 2:
            values[1:] = values[2:] + values[-1:]


def _repeat_last_call(body: dict) -> None:
    """The answer ends with a verbatim repeat of its last call."""
    for msg in _messages(body):
        calls = msg.get("tool_calls") or []
        if calls:
            calls.append({**copy.deepcopy(calls[-1]), "id": calls[-1]["id"] + "x"})


# -- LM Studio's model routes ----------------------------------------------------------------------
LMS_LIST, LMS_LOAD, LMS_UNLOAD = "/api/v1/models", "/api/v1/models/load", "/api/v1/models/unload"


def _lmstudio_unknown_200(ex: Exchange, code: int, headers: dict, body: Json):
    if code == 404 and (ex.on(LMS_LOAD) or ex.on(LMS_UNLOAD)):
        code = 200
    return code, headers, body


CHAT, COMPLETIONS, EMBEDDINGS, MODELS = "/chat/completions", "/completions", "/embeddings", "/models"
ERRORS_400 = ("errors.malformed_json", "errors.empty_body", "errors.non_utf8_body", "errors.missing_messages", "errors.missing_model",
              "errors.empty_messages", "errors.empty_model", "errors.wrong_type", "errors.completions_missing_prompt",
              "errors.embeddings_missing_input", "errors.context_length_chat", "errors.context_length_completions",
              "http.cors_on_errors")
ERRORS_422 = ("errors.temperature_range", "errors.top_p_range", "errors.max_tokens_ceiling",
              "errors.completions_temperature_range", "errors.bad_role", "logit_bias.out_of_vocabulary",
              "logprobs.top_logprobs_range")


# -- the Responses and Messages APIs -----------------------------------------------------------------
RESPONSES, MESSAGES, COUNT_TOKENS = "/responses", "/messages", "/messages/count_tokens"


def _drop_event(kind: str) -> EventHook:
    def hook(ex: Exchange, index: int, event: Json) -> list:
        return [] if isinstance(event, dict) and event.get("type") == kind else [event]
    return hook


def _no_sequence_numbers(index: int, event: dict) -> None:
    event.pop("sequence_number", None)


def _responses_usage_off(body: dict) -> None:
    if isinstance(body.get("usage"), dict):
        body["usage"]["total_tokens"] = body["usage"].get("total_tokens", 0) + 1


def _function_arguments_extra(body: dict) -> None:
    for item in body.get("output") or []:
        if item.get("type") == "function_call":
            args = json.loads(item.get("arguments") or "{}")
            item["arguments"] = json.dumps({**args, "extra": 1})


def _custom_tools_free(body: dict) -> None:
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "custom":
            tool.pop("format", None)


def _refuse_hosted(ex: Exchange):
    if ex.on(RESPONSES) and isinstance(ex.body, dict) and any(
            isinstance(t, dict) and t.get("type") not in ("function", "custom") for t in ex.body.get("tools") or []):
        return 400, {"error": {"message": "Unsupported tool type: web_search", "type": "invalid_request_error",
                               "param": "tools", "code": None}}
    return None


def _anthropic_stop_reason(body: dict) -> None:
    if "stop_reason" in body:
        body["stop_reason"] = "stop"


def _tool_use_input_extra(body: dict) -> None:
    for block in body.get("content") or []:
        if isinstance(block, dict) and block.get("type") == "tool_use":
            block["input"] = {**(block.get("input") or {}), "extra": 1}


def _none_to_any(body: dict) -> None:
    if (body.get("tool_choice") or {}).get("type") == "none":
        body["tool_choice"] = {"type": "any"}


def _openai_error_shape(ex: Exchange, code: int, headers: dict, body: Json):
    if is_route(ex.path, MESSAGES) and code >= 400 and isinstance(body, dict) and body.get("type") == "error":
        body = {"error": {"message": body["error"].get("message"), "type": body["error"].get("type"), "param": None,
                          "code": None}}
    return code, headers, body

MUTANTS: list[Mutant] = [
    # response shapes (judged by OpenAI's schema and the contract)
    Mutant("chat_no_usage", "chat responses lose `usage`", ("chat.plain",),
           on_response=edit_body(CHAT, lambda b: b.pop("usage", None)), names=("usage",)),
    Mutant("chat_no_role", "chat messages lose `role`", ("chat.plain",),
           on_response=edit_body(CHAT, lambda b: [c.get("message", {}).pop("role", None) for c in _choices(b)]),
           names=("role",)),
    Mutant("fingerprint_null", "`system_fingerprint: null` added (OpenAI's schema says string)", ("chat.plain", "completions.plain",
                                                                                                    "logprobs.chat.off"),
           on_response=_fingerprint_null, names=("system_fingerprint",)),
    Mutant("finish_reason_bogus", "finish_reason outside the enum", ("chat.plain", "completions.plain"),
           on_response=_bogus_finish, names=("finish_reason",)),
    Mutant("model_object_missing", "GET /models entries lose `object` and `owned_by`", ("models.list", "fuzz.models_list"),
           on_response=edit_body(MODELS, lambda b: [(d.pop("object", None), d.pop("owned_by", None)) for d in b.get("data", [])], method="GET"),
           names=("'object'", "owned_by")),
    # sampling parameters ignored
    Mutant("ignore_max_tokens", "max_tokens not honoured (answers run 32 tokens past it)", ("chat.max_tokens", "completions.max_tokens"),
           on_request=both(edit_request(CHAT, _past_max_tokens), edit_request(COMPLETIONS, _past_max_tokens)),
           names=("max_tokens", "completion_tokens")),
    Mutant("ignore_temperature", "temperature ignored (always greedy)", ("chat.seed", "completions.seed", "chat.n"),
           on_request=both(set_fields(CHAT, temperature=0), set_fields(COMPLETIONS, temperature=0)), names=("temperature",)),
    Mutant("ignore_seed", "seed ignored", ("chat.seed", "completions.seed"),
           on_request=both(drop(CHAT, "seed"), drop(COMPLETIONS, "seed")), names=("seed",)),
    Mutant("ignore_stop", "stop ignored", ("chat.stop",), on_request=drop(CHAT, "stop"), names=("stop",)),
    Mutant("ignore_presence_penalty", "presence_penalty ignored", ("chat.penalties",), on_request=drop(CHAT, "presence_penalty"),
           names=("penalt",)),
    Mutant("ignore_frequency_penalty", "frequency_penalty ignored", ("chat.penalties",), on_request=drop(CHAT, "frequency_penalty"),
           names=("penalt",)),
    Mutant("penalties_backwards", "presence and frequency penalties applied with the opposite sign", ("chat.penalties",),
           on_request=edit_request(CHAT, _penalties_backwards), names=("penalt",)),
    Mutant("ignore_n", "n ignored (one choice)", ("chat.n",), on_request=drop(CHAT, "n"), names=("choice",)),
    Mutant("n_identical", "n choices all copies of the first", ("chat.n",),
           on_response=edit_body(CHAT, lambda b: b.update(choices=[{**_choices(b)[0], "index": i} for i in range(len(_choices(b)))]) if _choices(b) else None),
           names=("choices", "identical")),
    # messages
    Mutant("ignore_system", "system messages dropped", ("chat.roles",), on_request=edit_request(CHAT, _strip_system),
           names=("system",)),
    Mutant("ignore_history", "only the last user message reaches the model", ("chat.roles",),
           on_request=edit_request(CHAT, _last_user_only), names=("history", "earlier")),
    Mutant("strict_model", "an unknown model string is 404 instead of the loaded model", ("chat.model_routing",), on_request=_strict_model,
           names=("model",)),
    Mutant("reject_unknown_fields", "unknown request fields rejected with 400", ("chat.extra_fields",), on_request=_reject_unknown,
           names=("unknown", "extra", "unrecognized")),
    # streaming
    Mutant("stream_no_done", "streams end without `data: [DONE]`", ("chat.stream.wire", "completions.stream.wire"), on_event=_no_done,
           names=("[DONE]",)),
    Mutant("stream_truncated", "streams cut after two events", ("chat.stream", "completions.stream"), cut_after=2,
           names=("finish_reason", "[DONE]", "truncat", "ends with", "finish reasons []")),
    Mutant("stream_no_role", "the first chat delta lacks `role`", ("chat.stream",),
           on_event=edit_chunks(CHAT, lambda i, c: [ch.get("delta", {}).pop("role", None) for ch in _choices(c)]),
           names=("role",)),
    Mutant("stream_finish_every_chunk", "finish_reason set on every chunk", ("chat.stream.wire",),
           on_event=edit_chunks(CHAT, lambda i, c: [ch.update(finish_reason=ch.get("finish_reason") or "length") for ch in _choices(c)]),
           names=("finish_reason", "finish reasons")),
    Mutant("stream_ids_differ", "each chunk carries its own id", ("chat.stream.wire", "completions.stream.wire"),
           on_event=lambda ex, i, e: [{**e, "id": f"{e.get('id')}-{i}"} if isinstance(e, dict) else e], names=("id",)),
    Mutant("stream_usage_on_content", "include_usage rides on the last content chunk", ("chat.stream.usage", "completions.stream.usage"),
           on_event=_usage_on_last_content, names=("usage",)),
    Mutant("completion_chunk_object", "completion chunks say object 'chat.completion.chunk'", ("completions.stream.wire",),
           on_event=edit_chunks(COMPLETIONS, lambda i, c: c.update(object="chat.completion.chunk")), names=("object",)),
    # embeddings
    Mutant("embeddings_shifted", "batch vectors paired with the wrong inputs", ("embeddings.batch",),
           on_response=edit_body(EMBEDDINGS, _embeddings_shifted), names=("order", "index", "pair", "differs from")),
    Mutant("embeddings_unnormalised", "vectors not normalised to length 1", ("embeddings.single",),
           on_response=edit_body(EMBEDDINGS, _embeddings_scaled), names=("norm",)),
    Mutant("embeddings_short_vector", "the last vector of a batch one number short", ("embeddings.batch",),
           on_response=edit_body(EMBEDDINGS, _embeddings_short_last), names=("dimension", "length", "size")),
    Mutant("ignore_encoding_format", "encoding_format ignored (always floats)", ("embeddings.base64",),
           on_request=drop(EMBEDDINGS, "encoding_format"), names=("base64", "encoding_format")),
    # routes gone (a missing route fails; it never passes or skips)
    Mutant("no_embeddings_route", "POST /embeddings is gone (404)", ("embeddings.single", "embeddings.batch", "embeddings.base64",
                                                                    "embeddings.sdk", "fuzz.embeddings"), on_request=_gone(EMBEDDINGS),
           names=("404",)),
    Mutant("no_completions_route", "POST /completions is gone (404)", ("completions.plain", "completions.stream", "completions.seed",
                                                                      "fuzz.completions"), on_request=_gone(COMPLETIONS),
           names=("404",)),
    Mutant("no_chat_route", "POST /chat/completions is gone (404)", ("chat.plain", "chat.stream", "chat.roles", "chat.n",
                                                                    "fuzz.chat_completions", "http.cors_on_errors"),
           on_request=_gone(CHAT), names=("404",)),
    Mutant("no_models_route", "GET /models is gone (404)", ("models.list", "fuzz.models_list"), on_request=_gone(MODELS, "GET"),
           names=("404",)),
    Mutant("no_model_retrieve", "GET /models/{id} is 404 for the listed id too", ("models.retrieve", "fuzz.models_retrieve"),
           on_request=_gone("/models/.+", "GET"), names=("404",)),
    # the error contract
    Mutant("status_400_as_422", "400s answered as 422", ERRORS_400, on_response=restatus(400, 422), names=("422",)),
    Mutant("status_422_as_400", "422s answered as 400", ERRORS_422, on_response=restatus(422, 400), names=("400",)),
    Mutant("error_param_null", "error.param always null", ("errors.missing_messages", "errors.missing_model", "errors.bad_role",
                                                            "errors.temperature_range", "errors.context_length_chat",
                                                            "tools.unknown_named", "structured.unsupported_feature", "lmstudio.errors"),
           on_response=edit_error(lambda e: e.update(param=None)), names=("param",)),
    Mutant("error_code_null", "error.code always null", ("errors.bad_role", "errors.temperature_range", "errors.context_length_chat",
                                                          "errors.context_length_completions", "models.retrieve_unknown"),
           on_response=edit_error(lambda e: e.update(code=None)), names=("code",)),
    Mutant("error_detail_body", "errors as {'detail': ...}, not OpenAI's body", ("errors.malformed_json", "errors.temperature_range",
                                                                                 "http.unknown_route", "http.wrong_method"),
           on_response=_detail_body, names=("detail",)),
    Mutant("error_type_wrong", "error.type 'error' instead of invalid_request_error", ("errors.missing_messages", "errors.empty_body"),
           on_response=edit_error(lambda e: e.update(type="error")), names=("type",)),
    Mutant("unknown_model_200", "GET /models/{unknown} answers 200", ("models.retrieve_unknown",),
           on_request=answer("/models/no-such-model.*", 200, {"id": "no-such-model-conformance", "object": "model", "created": 0,
                                                               "owned_by": "x"}, method="GET"), names=("200",)),
    Mutant("routing_404_plain", "404 for an unknown route in plain text", ("http.unknown_route",), on_response=_plain_text_404,
           names=("json", "text/plain")),
    Mutant("status_405_as_404", "wrong method answered 404", ("http.wrong_method",), on_response=restatus(405, 404),
           names=("405",)),
    Mutant("status_415_as_400", "wrong content type answered 400", ("http.wrong_content_type",), on_response=restatus(415, 400),
           names=("415",)),
    Mutant("status_413_as_400", "a too-large body answered 400", ("http.body_too_large",), on_response=restatus(413, 400),
           names=("413",)),
    # HTTP
    Mutant("requires_api_key", "requests without a key get 401", ("http.no_api_key",), on_request=_needs_key,
           names=("401",)),
    Mutant("no_cors", "no CORS headers at all", ("http.cors_simple", "http.cors_preflight"),
           on_response=edit_headers(lambda code, h: _no_cors(code, h)), names=("access-control", "cors")),
    Mutant("no_cors_on_errors", "no CORS headers on errors", ("http.cors_on_errors",),
           on_response=edit_headers(lambda code, h: _no_cors(code, h, only_errors=True)), names=("access-control", "cors")),
    # logprobs and logit_bias (parity's cases)
    Mutant("ignore_chat_logprobs", "chat logprobs/top_logprobs ignored", ("logprobs.chat.plain", "logprobs.chat.top"),
           on_request=drop(CHAT, "logprobs", "top_logprobs"), names=("logprobs",)),
    Mutant("top_logprobs_reversed", "top_logprobs least likely first", ("logprobs.chat.top",),
           on_response=edit_body(CHAT, _reverse_top_logprobs), names=("top_logprobs", "order", "sorted")),
    Mutant("stream_logprobs_dropped", "streamed chunks lose their logprobs", ("logprobs.chat.stream",),
           on_event=edit_chunks(CHAT, lambda i, c: [ch.update(logprobs=None) for ch in _choices(c)]), names=("logprobs",)),
    Mutant("logprobs_unasked", "logprobs filled in when not asked for", ("logprobs.chat.off",), on_response=_logprobs_unasked,
           names=("logprobs",)),
    Mutant("ignore_completion_logprobs", "completions logprobs ignored", ("logprobs.completions", "logit_bias.force_and_ban"),
           on_request=drop(COMPLETIONS, "logprobs"), names=("logprobs",)),
    Mutant("logit_bias_bans_ignored", "logit_bias -100 ignored (only positive biases applied)", ("logit_bias.force_and_ban",),
           on_request=edit_request(COMPLETIONS, _bans_ignored), names=("ban", "-100")),
    Mutant("ignore_logit_bias", "logit_bias ignored", ("logit_bias.force_and_ban", "logit_bias.out_of_vocabulary"),
           on_request=both(drop(CHAT, "logit_bias"), drop(COMPLETIONS, "logit_bias")), names=("logit_bias", "bias", "+100")),
    # tools (parity's cases). CI runs each case under the first mutant listing it: cheap catchers come first
    Mutant("tool_calls_as_text", "calls left as raw text in `content`, not parsed into `tool_calls`",
           ("tools.required", "tools.named", "tools.parallel_false"), on_response=edit_body(CHAT, _calls_as_text),
           names=("tool_calls", "tool call")),
    Mutant("tool_finish_stop", "finish_reason `stop` instead of `tool_calls` beside calls (plain and streamed)",
           ("tools.required", "tools.stream"), on_response=edit_body(CHAT, lambda b: [_tool_finish_stop(c) for c in _choices(b)]),
           on_event=edit_chunks(CHAT, lambda i, c: [_tool_finish_stop(ch) for ch in _choices(c)]),
           names=("finish_reason", "finish reasons")),
    Mutant("tool_content_beside_calls", "`content: \"\"` beside calls instead of null", ("tools.required",),
           on_response=edit_body(CHAT, _content_beside_calls), names=("content",)),
    Mutant("tool_arguments_not_json", "a call's arguments lose their last character (not JSON)",
           ("tools.required", "tools.named", "tools.parallel_false"),
           on_response=edit_body(CHAT, _edit_calls(lambda f: f.update(arguments=f["arguments"][:-1]))),
           names=("arguments",)),
    Mutant("tool_arguments_unvalidated", "arguments not held to `parameters` (an extra property)",
           ("tools.required", "tools.named", "tools.parallel_false"), on_response=edit_body(CHAT, _edit_calls(_extra_argument)),
           names=("arguments",)),
    Mutant("tool_call_not_allowed", "a named tool_choice only steers: the call names another tool", ("tools.named",),
           on_response=_call_other_function, names=("name", "function", "allowed")),
    Mutant("unknown_named_as_auto", "tool_choice naming an unknown function falls back to auto (200)", ("tools.unknown_named",),
           on_request=edit_request(CHAT, _unknown_named_to_auto), names=("tool_choice", "400")),
    Mutant("ignore_parallel_tool_calls", "parallel_tool_calls false ignored", ("tools.parallel_false",),
           on_request=drop(CHAT, "parallel_tool_calls"), names=("parallel", "calls")),
    Mutant("tool_choice_none_as_required", "tool_choice none ignored: calls are forced anyway", ("tools.none", "tools.history"),
           on_request=edit_request(CHAT, _none_to_required), names=("tool_calls", "call")),
    Mutant("call_left_in_text", "under auto, a call written after text is left unparsed in `content`", ("tools.auto",),
           on_response=_call_left_in_text, names=("tool_calls", "content", "call left")),
    Mutant("tool_history_dropped", "assistant tool_calls and tool results never reach the prompt", ("tools.history",),
           on_request=edit_request(CHAT, _drop_tool_turns), names=("history", "tool")),
    Mutant("tool_history_contents_dropped", "tool turns reach the prompt by role only, not what they say",
           ("tools.history",), on_request=edit_request(CHAT, _tool_contents_fixed), names=("tool", "result")),
    Mutant("tools_ignored", "tools and tool_choice ignored (llama-server with a template without tool support)",
           ("tools.none", "tools.auto", "tools.required"), on_request=drop(CHAT, "tools", "tool_choice"), names=("tool",)),
    Mutant("stream_tool_call_repeats_name", "every streamed delta of a call repeats its id and name", ("tools.stream",),
           on_event=_repeat_id_and_name, names=("name", "id")),
    Mutant("stream_tool_call_arguments_first", "a call's first streamed delta already carries arguments", ("tools.stream",),
           on_event=_arguments_in_first_delta, names=("arguments",)),
    # structured output (parity's cases)
    Mutant("ignore_json_object", "response_format json_object ignored", ("structured.json_object",),
           on_request=edit_request(CHAT, _when(_format_is("json_object"), lambda b: b.pop("response_format"))),
           names=("json",)),
    Mutant("structured_content_not_json", "a constrained answer cut by a character, finish_reason still stop",
           ("structured.json_schema.strict", "structured.json_schema.not_strict", "structured.json_object"),
           on_response=_broken_json_content, names=("json",)),
    Mutant("json_schema_as_json_object", "a json_schema enforced as any JSON object (the schema ignored)",
           ("structured.json_schema.stream", "structured.json_schema.strict", "structured.json_schema.not_strict"),
           on_request=edit_request(CHAT, _when(_format_is("json_schema"), lambda b: b.update(response_format={"type": "json_object"}))),
           names=("schema", "validate", "'length'")),
    Mutant("ignore_json_schema_streamed", "json_schema ignored when streaming", ("structured.json_schema.stream",),
           on_request=edit_request(CHAT, _when(_format_is("json_schema", stream=True), lambda b: b.pop("response_format"))),
           names=("schema", "validate", "'length'")),
    Mutant("unenforceable_schema_accepted", "a schema keyword that cannot be enforced is dropped silently (200, not 400)",
           ("structured.unsupported_feature",), on_request=edit_request(CHAT, _accept_unenforceable),
           names=("400", "enforce")),
    Mutant("ignore_echo", "completions echo ignored (the prompt is not scored)", ("logprobs.completions.echo",),
           on_request=drop(COMPLETIONS, "echo"), names=("echo", "prompt")),
    Mutant("echo_logprobs_shifted", "echoed prompt logprobs off by one token", ("logprobs.completions.echo",),
           on_response=edit_body(COMPLETIONS, _shift_echo_logprobs), names=("echo", "prompt", "top_logprobs")),
    Mutant("ignore_completions_response_format", "response_format on /completions ignored", ("structured.completions",),
           on_request=drop(COMPLETIONS, "response_format"), names=("json", "schema")),
    Mutant("tool_calls_repeated", "the answer ends with a verbatim repeat of its last call", ("tools.parallel_ends",),
           on_response=edit_body(CHAT, _repeat_last_call), names=("repeat", "calls")),
    # LM Studio's model routes (models' cases)
    Mutant("no_lmstudio_api", "/api/v1/models, /load and /unload are gone (404)", ("lmstudio.list", "lmstudio.load_unload", "lmstudio.errors"),
           on_request=lambda ex: _gone(LMS_LIST, "GET")(ex) or _gone(LMS_LOAD)(ex) or _gone(LMS_UNLOAD)(ex), names=("404",)),
    Mutant("lmstudio_no_loaded_instances", "GET /api/v1/models reports no loaded instance", ("lmstudio.list",),
           on_response=edit_body(LMS_LIST, lambda b: [m.update(loaded_instances=[]) for m in b.get("models", [])], method="GET"),
           names=("loaded_instances",)),
    Mutant("lmstudio_load_status", "a load answers status 'loading' instead of 'loaded'", ("lmstudio.load_unload",),
           on_response=edit_body(LMS_LOAD, lambda b: b.update(status="loading")), names=("status",)),
    Mutant("lmstudio_unload_wrong_id", "an unload answers another instance_id", ("lmstudio.load_unload",),
           on_response=edit_body(LMS_UNLOAD, lambda b: b.update(instance_id=f"{b.get('instance_id')}-other")),
           names=("instance_id",)),
    Mutant("lmstudio_unknown_200", "an unknown model or instance id is answered 200 on /load and /unload", ("lmstudio.errors",),
           on_response=_lmstudio_unknown_200, names=("200",)),
    # while loading
    Mutant("loading_500", "a 500 instead of 503 while loading", ("loading.retry_after",), on_response=_loading_is_500, needs="loading",
           names=("500",)),
    Mutant("loading_no_retry_after", "503 without Retry-After while loading", ("loading.retry_after",),
           on_response=edit_headers(lambda code, h: _no_retry_after(code, h) if code == 503 else None), needs="loading",
           names=("retry-after",)),
    # the Responses API
    Mutant("responses_usage_off", "usage.total_tokens is not input + output", ("responses.create",),
           on_response=edit_body(RESPONSES, _responses_usage_off), names=("usage", "total_tokens")),
    Mutant("responses_no_completed", "the stream ends without response.completed", ("responses.stream",),
           on_event=_drop_event("response.completed"), names=("completed",)),
    Mutant("responses_no_sequence_numbers", "stream events without sequence_number", ("responses.stream",),
           on_event=edit_chunks(RESPONSES, _no_sequence_numbers), names=("sequence_number", "ResponseStreamEvent")),
    Mutant("responses_ignore_text_format", "text.format ignored (json_schema not enforced)", ("responses.json_schema",),
           on_request=drop(RESPONSES, "text"), names=("json", "schema", "incomplete")),
    Mutant("responses_arguments_unvalidated", "function_call arguments not held to parameters (an extra property)",
           ("responses.tools.required",), on_response=edit_body(RESPONSES, _function_arguments_extra), names=("arguments",)),
    Mutant("responses_custom_grammar_ignored", "a custom tool's grammar ignored (free text)",
           ("responses.tools.custom_grammar",), on_request=edit_request(RESPONSES, _custom_tools_free), names=("grammar",)),
    Mutant("responses_hosted_refused", "a request with a built-in tool refused (400)", ("responses.tools.hosted",),
           on_request=_refuse_hosted, names=("400",)),
    Mutant("responses_stateless", "previous_response_id ignored", ("responses.state",),
           on_request=drop(RESPONSES, "previous_response_id"), names=("previous",)),
    Mutant("responses_error_as_200", "an invalid value answered 200 (temperature dropped)", ("responses.errors",),
           on_request=drop(RESPONSES, "temperature"), names=("200", "temperature")),
    # Anthropic's Messages API
    Mutant("messages_stop_reason_openai", "stop_reason 'stop' (OpenAI's word) instead of Anthropic's", ("messages.create",),
           on_response=edit_body(MESSAGES, _anthropic_stop_reason), names=("stop_reason",)),
    Mutant("messages_no_message_stop", "the stream ends without message_stop", ("messages.stream",),
           on_event=_drop_event("message_stop"), names=("message_stop",)),
    Mutant("messages_tool_input_unvalidated", "tool_use input not held to input_schema (an extra property)",
           ("messages.tool_choice.any",), on_response=edit_body(MESSAGES, _tool_use_input_extra), names=("input",)),
    Mutant("messages_tool_choice_none_as_any", "tool_choice none ignored: a tool is forced", ("messages.tool_choice.none",),
           on_request=edit_request(MESSAGES, _none_to_any), names=("tool_use",)),
    Mutant("messages_count_zero", "count_tokens answers 0", ("messages.count_tokens",),
           on_response=edit_body(COUNT_TOKENS, lambda b: b.update(input_tokens=0)), names=("input_tokens",)),
    Mutant("messages_openai_error_shape", "errors on /messages in OpenAI's shape, not Anthropic's", ("messages.errors",),
           on_response=_openai_error_shape, names=("type",)),
]

BY_NAME = {m.name: m for m in MUTANTS}
assert len(BY_NAME) == len(MUTANTS), "two mutants share a name"
