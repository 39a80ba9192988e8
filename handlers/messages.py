"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API as a wire format over the
same engine path as chat (handlers/messages_convert.py does the shapes). Errors on these routes come
out in Anthropic's shape (hearth/errors.py, by route)."""
from __future__ import annotations

import uuid

from starlette.responses import JSONResponse

from generated.anthropic import CreateMessageRequest, Message, MessageTokensCount
from handlers import messages_convert as mc
from handlers.shared import choices, common, reasoning, structured
from handlers.shared.named_sse import NamedEventStream
from hearth import limits
from hearth.engine import api
from hearth.errors import ApiError, anthropic
from hearth.models.request import FAILED, Request

DEFAULT_TEMPERATURE = 1.0  # Anthropic's


async def plan(body: dict) -> structured.Structured:
    chat_tools = mc.tools(body.get("tools"))
    choice, parallel = mc.tool_choice(body.get("tool_choice"), chat_tools)
    if body.get("stop_sequences") and chat_tools and choice != "none":
        raise ApiError(400, "stop_sequences cannot be combined with tools: a stop sequence could cut a tool call "
                            "short. Leave stop_sequences out.", code="invalid_value", param="stop_sequences")
    chat = {"messages": mc.messages(body["messages"], mc.system(body.get("system"))),
            "tools": chat_tools or None, "parallel_tool_calls": parallel,
            "response_format": mc.response_format(body.get("output_config"))}
    if choice is not None:
        chat["tool_choice"] = choice
    return await structured.prepare(chat)


def prompt(p: structured.Structured) -> api.Prompt:
    return api.Prompt(messages=tuple(api.ChatMessage(m["role"], m["content"]) for m in p.messages), native=p.native)


def sampling(req: CreateMessageRequest, info: api.ModelInfo, p: structured.Structured) -> api.SamplingParams:
    """max_tokens is required by Anthropic and clients send large ones (Claude Code: 32000): more than the
    context or the per-request budget is clamped to it, not refused."""
    ceiling = min(x for x in (info.n_ctx or None, limits.current().max_request_tokens) if x)
    return api.SamplingParams(
        temperature=DEFAULT_TEMPERATURE if req.temperature is None else req.temperature,
        top_p=1.0 if req.top_p is None else req.top_p,
        max_tokens=min(req.max_tokens, ceiling),
        stop=tuple(s for s in req.stop_sequences or () if s),
        constraint=p.constraint, tool_parser=p.tool_parser,
    )


def _message(model: str, content: list, stop_reason: str | None, usage: dict) -> dict:
    return {"id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": "assistant", "content": content,
            "model": model, "stop_reason": stop_reason, "stop_sequence": None, "usage": usage}


def _usage(request: Request) -> dict:
    """Anthropic counts the prompt tokens read from the cache apart from `input_tokens`."""
    cached = sum(getattr(g, "cached_tokens", 0) for g in request.generations)
    return {"input_tokens": request.prompt_tokens - cached, "output_tokens": request.completion_tokens,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached}


def _feed(blocks: mc.Blocks, thought: str, d) -> list[dict]:
    events = blocks.thinking(thought)
    events += blocks.text(d.text)
    for c in d.tool_calls:
        events += blocks.call(c.index, c.id, c.name, c.arguments)
    return events


async def create(body: dict):
    req = CreateMessageRequest.model_validate(body)
    p = await plan(body)
    with common.request(req.model) as request:
        params = sampling(req, request.info, p)
        await common.submit(request, [prompt(p)], [params], "messages")
    if req.stream:
        return NamedEventStream(_events(request), request)
    return JSONResponse(await _collect(request))


async def _events(request: Request):
    blocks = mc.Blocks()
    start = _message(request.id, [], None, {**_usage(request), "output_tokens": 0})
    yield {"type": "message_start", "message": start}
    yield {"type": "ping"}
    async for thought, d in reasoning.split(request):
        if d.finish_reason == FAILED:
            yield {"type": "error", "error": anthropic(choices.failure(d.error, "messages"))[1]["error"]}
            return
        for e in _feed(blocks, thought, d):
            yield e
        if d.finish_reason:
            for e in blocks.finish():
                yield e
            yield {"type": "message_delta", "delta": {"stop_reason": mc.STOP_REASONS.get(d.finish_reason, "end_turn"),
                                                      "stop_sequence": None},
                   "usage": _usage(request)}
            yield {"type": "message_stop"}


async def _collect(request: Request) -> dict:
    blocks = mc.Blocks()
    finish_reason = await choices.run_split(request, lambda thought, d: _feed(blocks, thought, d), "messages")
    blocks.finish()
    message = _message(request.id, blocks.content, mc.STOP_REASONS.get(finish_reason, "end_turn"), _usage(request))
    Message.model_validate(message)  # the spec's shape (a bug here is a 500 with a trace, not a bad body)
    return message


async def count_tokens(body: dict):
    """The prompt's length in tokens, as `create` would take it (common.count_prompt)."""
    p = await plan(body)
    count = await common.count_prompt(body["model"], prompt(p), "messages")
    return JSONResponse(common.dump(MessageTokensCount(input_tokens=count)))
