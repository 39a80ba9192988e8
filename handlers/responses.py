"""POST /v1/responses (and the stored responses' routes): OpenAI's Responses API as a wire format over
the same engine path as chat. The request becomes chat messages, tools and a grammar
(handlers/responses_input.py, handlers/shared/structured.py); the deltas become output items and events
(handlers/responses_output.py); a stored response is kept in hearth/store.py."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

from generated.responses import CreateResponseRequest, DeletedResponse, InputTokensResponse, Response, ResponseItemList
from handlers import responses_input as ri
from handlers.responses_output import Builder, new_id, usage
from handlers.shared import choices, common, reasoning, structured
from handlers.shared.named_sse import NamedEventStream
from hearth import limits, store as response_store
from hearth.engine import api
from hearth.errors import ApiError, invalid_value
from hearth.models.request import FAILED, Request

LOGPROBS = "message.output_text.logprobs"
DEFAULT_TEMPERATURE, DEFAULT_TOP_P = 0.8, 0.95  # Hearth's, as chat's


def not_found(response_id: str) -> ApiError:
    return ApiError(404, f"No response with id {response_id!r} is stored.", code="response_not_found")


def unsupported(param: str, message: str) -> ApiError:
    return ApiError(400, message, code="unsupported_parameter", param=param)


@dataclass
class Plan:
    """What one request asks the engine for, and what its answer needs to be built."""

    tools: ri.Tools
    prompt: api.Prompt
    structured: structured.Structured
    history: list[dict]  # the items of the responses it continues (input and output), oldest first
    items: list[dict]  # this request's own input items, with ids


async def _history(body: dict, store) -> list[dict]:
    previous = body.get("previous_response_id")
    if not previous:
        return []
    if store is None:
        raise ApiError(400, f"Previous response {previous!r} not found: this server stores no responses (--no-store).",
                       code="previous_response_not_found", param="previous_response_id")
    try:
        chain = await store.conversation(previous)
    except response_store.ChainBroken as e:
        raise ApiError(400, f"Previous response {previous!r} continues {e.missing!r}, which is no longer stored.",
                       code="previous_response_not_found", param="previous_response_id") from None
    if chain is None:
        raise ApiError(400, f"Previous response with id {previous!r} not found.", code="previous_response_not_found",
                       param="previous_response_id")
    items = []
    for inputs, response in chain:
        items += inputs + ri.output_as_input(response.get("output", []))
    return items


def _with_ids(items: list[dict]) -> list[dict]:
    """The input items as they are stored and listed: each with an id, messages with `type` and parts."""
    out = []
    for item in items:
        if (item.get("type") or "message") == "message" and "role" in item:
            content = item.get("content")
            if isinstance(content, str):
                kind = "output_text" if item["role"] == "assistant" else "input_text"
                content = [{"type": kind, "text": content}]
            item = {**item, "type": "message", "content": content}
        if not item.get("id"):
            prefix = {"message": "msg", "function_call_output": "fco", "custom_tool_call_output": "ctco"}.get(
                item.get("type") or "message", "item")
            item = {**item, "id": new_id(prefix)}
        out.append(item)
    return out


async def plan(body: dict, drop: int = 0) -> Plan:
    """The request -> prompt and constraint. `drop`: the oldest conversation messages left out (truncation auto)."""
    if body.get("background"):
        raise unsupported("background", "background responses are not supported; leave `background` out.")
    if body.get("conversation") is not None:
        raise unsupported("conversation", "conversations are not supported; continue with `previous_response_id`.")
    history = await _history(body, response_store.current())
    items = _with_ids(ri.normalize(body.get("input")))
    tools = ri.tools(body.get("tools"))
    known = {item["id"]: item for item in history + items if item.get("id")}
    messages = ri.messages(history + items, tools, body.get("instructions"), first_param=len(history),
                           resolve=known.get)
    if drop:
        messages = _truncated(messages, drop)
    chat = {"messages": messages, "tools": tools.chat or None, "tool_choice": ri.tool_choice(body.get("tool_choice"), tools),
            "parallel_tool_calls": body.get("parallel_tool_calls"), "response_format": ri.response_format(body.get("text"))}
    if chat["tool_choice"] is None:
        del chat["tool_choice"]
    plan_ = await structured.prepare(chat)
    prompt = api.Prompt(messages=tuple(api.ChatMessage(m["role"], m["content"]) for m in plan_.messages),
                        native=plan_.native)
    return Plan(tools, prompt, plan_, history, items)


def _truncated(messages: list[dict], drop: int) -> list[dict]:
    """Without the `drop` oldest non-system messages (a tool result goes with the call before it)."""
    system = [m for m in messages if m["role"] == "system"]
    rest = [m for m in messages if m["role"] != "system"][drop:]
    while rest and rest[0]["role"] == "tool":
        rest = rest[1:]
    if not rest:
        raise ApiError(400, "The input does not fit in the model's context even with the older items dropped.",
                       code="context_length_exceeded", param="input")
    return system + rest


def sampling(req: CreateResponseRequest, body: dict, info: api.ModelInfo, p: Plan) -> api.SamplingParams:
    max_tokens = req.max_output_tokens
    if info.n_ctx and max_tokens is not None and max_tokens > info.n_ctx:
        raise invalid_value("max_output_tokens", f"max_output_tokens ({max_tokens}) exceeds the model's context "
                                                 f"ceiling ({info.n_ctx} tokens).")
    want = LOGPROBS in (body.get("include") or [])
    return api.SamplingParams(
        temperature=DEFAULT_TEMPERATURE if req.temperature is None else req.temperature,
        top_p=DEFAULT_TOP_P if req.top_p is None else req.top_p,
        max_tokens=limits.cap_max_tokens(1, max_tokens, info.n_ctx, "max_output_tokens"),
        logprobs=(req.top_logprobs or 0) if want else None,
        constraint=p.structured.constraint, tool_parser=p.structured.tool_parser,
    )


def _echo_tool(tool: dict) -> dict:
    """A tool as the Response lists it: its known fields only, in OpenAI's shape."""
    kind = tool.get("type")
    if kind == "function":
        return {"type": "function", "name": tool.get("name"), "description": tool.get("description"),
                "parameters": tool.get("parameters"), "strict": tool.get("strict") is not False}
    if kind == "custom":
        out = {"type": "custom", "name": tool.get("name")}
        if tool.get("description") is not None:
            out["description"] = tool["description"]
        if tool.get("format"):
            out["format"] = {k: v for k, v in tool["format"].items() if k in ("type", "syntax", "definition")}
        return out
    return {"type": "namespace", "name": tool.get("name"), "description": tool.get("description") or "",
            "tools": [_echo_tool(t) for t in tool.get("tools") or []]}


def _echo_tools(raw: list[dict] | None) -> list[dict]:
    """The tools the model was offered: function, custom and namespace tools. Built-in tools Hearth does not
    run are accepted but not listed (the model never had them)."""
    return [_echo_tool(t) for t in raw or [] if t.get("type") in ("function", "custom", "namespace")]


def base(body: dict, req: CreateResponseRequest, model: str, stored: bool) -> dict[str, Any]:
    """The Response's fields that echo the request."""
    text = body.get("text") or {}
    reasoning = body.get("reasoning") or {}
    fields = {
        "id": new_id("resp"), "object": "response", "created_at": int(time.time()), "background": False,
        "instructions": req.instructions, "max_output_tokens": req.max_output_tokens,
        "max_tool_calls": req.max_tool_calls, "model": model, "parallel_tool_calls": req.parallel_tool_calls is not False,
        "previous_response_id": req.previous_response_id,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "service_tier": "default", "store": stored,
        "temperature": DEFAULT_TEMPERATURE if req.temperature is None else req.temperature,
        "text": {"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity") or "medium"},
        "tool_choice": body.get("tool_choice") or "auto", "tools": _echo_tools(body.get("tools")),
        "top_logprobs": req.top_logprobs or 0, "top_p": DEFAULT_TOP_P if req.top_p is None else req.top_p,
        "truncation": req.truncation or "disabled", "metadata": body.get("metadata") or {},
    }
    if req.user is not None:
        fields["user"] = req.user
    return fields


def _check(response: dict) -> dict:
    """The response, as the spec's Response model reads it (a bug here is a 500 with a trace, not a bad body)."""
    Response.model_validate(response)
    return response


async def create(body: dict):
    req = CreateResponseRequest.model_validate(body)
    store = response_store.current()
    stored = req.store is not False and store is not None
    drop = 0
    while True:
        p = await plan(body, drop)
        with common.request(req.model) as request:
            params = sampling(req, body, request.info, p)
            try:
                await common.submit(request, [p.prompt], [params], "input")
                break
            except ApiError as e:
                non_system = sum(1 for m in p.structured.messages if m["role"] != "system")
                if e.code != "context_length_exceeded" or req.truncation != "auto" or non_system <= 1:
                    raise
                drop += 1  # truncation "auto": the oldest item goes, and the rest is tried again
    builder = Builder(base(body, req, request.id, stored), p.tools, with_logprobs=params.logprobs is not None)

    async def save(response: dict) -> None:
        if stored:
            await store.save(response, p.items, req.previous_response_id)

    if req.stream:
        return NamedEventStream(_events(builder, request, save), request)
    return JSONResponse(await _collect(builder, request, save))


def _usage(request: Request) -> dict:
    cached = sum(getattr(g, "cached_tokens", 0) for g in request.generations)
    return usage(request.prompt_tokens, request.completion_tokens, cached)


def _feed(builder: Builder, thought: str, d) -> list[dict]:
    events = builder.text(thought, kind="reasoning")
    if thought and not d.text:
        builder.reasoning_tokens += len(d.tokens)
    events += builder.text(d.text, d.tokens if not d.tool_calls else ())
    for c in d.tool_calls:
        events += builder.call(c.index, c.id, c.name, c.arguments)
    return events


async def _events(builder: Builder, request: Request, save):
    for e in builder.start():
        yield e
    async for thought, d in reasoning.split(request):
        if d.finish_reason == FAILED:
            error = choices.failure(d.error, "input")
            code = "rate_limit_exceeded" if error.status == 503 else "server_error"
            for e in builder.fail(error.message, code)[0]:
                yield e
            return
        for e in _feed(builder, thought, d):
            yield e
        if d.finish_reason:
            events, response = builder.finish(d.finish_reason, _usage(request))
            await save(_check(response))
            for e in events:
                yield e


async def _collect(builder: Builder, request: Request, save) -> dict:
    finish_reason = await choices.run_split(request, lambda thought, d: _feed(builder, thought, d), "input")
    response = _check(builder.finish(finish_reason, _usage(request))[1])
    await save(response)
    return response


# --- stored responses ----------------------------------------------------------------------------
def _store():
    store = response_store.current()
    if store is None:
        raise ApiError(404, "This server stores no responses (--no-store).", code="response_not_found")
    return store


async def retrieve(response_id: str):
    response = await _store().get(response_id)
    if response is None:
        raise not_found(response_id)
    return JSONResponse(response)


async def delete(response_id: str):
    if not await _store().delete(response_id):
        # OpenAI's document gives this 404 its `Error` object unwrapped: the body carries both forms
        error = not_found(response_id)
        fields = {"message": error.message, "type": error.type, "param": error.param, "code": error.code}
        return JSONResponse({"error": fields, **fields}, status_code=404)
    return JSONResponse(common.dump(DeletedResponse(id=response_id, object="response", deleted=True)))


async def input_items(response_id: str, limit: int = 20, order: str = "desc", after: str | None = None,
                      include: list | None = None):
    items = await _store().input_items(response_id)
    if items is None:
        raise not_found(response_id)
    if order == "desc":
        items = items[::-1]
    if after is not None:
        ids = [i.get("id") for i in items]
        if after not in ids:
            raise ApiError(400, f"No input item with id {after!r} in this response.", code="invalid_value", param="after")
        items = items[ids.index(after) + 1:]
    page = items[:limit]
    return JSONResponse(common.dump(ResponseItemList(
        object="list", data=page, has_more=len(items) > limit,
        first_id=page[0].get("id") if page else None, last_id=page[-1].get("id") if page else None)))


async def input_tokens(body: dict):
    """The prompt's length in tokens, as `create` would take it (common.count_prompt)."""
    p = await plan(body)
    count = await common.count_prompt(body.get("model") or "default", p.prompt, "input")
    return JSONResponse(common.dump(InputTokensResponse(object="response.input_tokens", input_tokens=count)))
