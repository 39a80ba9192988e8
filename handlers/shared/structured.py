"""tools, tool_choice, parallel_tool_calls and response_format -> what the engine enforces.

`prepare()` reads those fields from the raw request body (schemas exactly as sent) and returns the
messages to render (tools described in the generic format of hearth/structured/tool_format.py, tool
history rendered), the grammar the answer must follow (compiled and checked off the event loop, so a
schema that cannot be enforced is a 400 naming the field and feature, before any token), and whether
the answer goes through the tool-call parser.

What each combination enforces:
- tools with tool_choice `required` / a named function / allowed_tools `required`: the answer is one or
  more calls (exactly one with parallel_tool_calls false) to the allowed functions, arguments valid;
- `auto` (the default with tools): text, or calls as above; with a json response_format, JSON or calls;
- `none`: no calls (tools are not described; history still renders); response_format applies alone;
- response_format `json_object`: a JSON object; `json_schema` (strict or not): a value of the schema.
Custom tools (chat's {"type": "custom", "custom": {...}}, from the Responses API) take free text or text
their grammar accepts; a conversation with them renders generically (tool_format), never natively.
`stop` together with any of these is refused: a stop string could cut the constrained text short.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from hearth.engine import api
from hearth.structured import grammar, tool_format
from hearth.structured.constraint import GrammarSpec
from hearth.structured.tool_parser import ToolCallSplitter
from hearth.errors import ApiError


@dataclass
class Structured:
    messages: list[dict]  # plain {"role", "content"} messages, tools described and history rendered
    constraint: api.ConstraintSpec | None  # the grammar the answer must follow
    tool_parser: Callable[[], api.ToolCallParser] | None  # parses the answer for tool calls
    native: Any = None  # api.Prompt.native: for a model whose own template renders tools


def bad(param: str, message: str) -> ApiError:
    return ApiError(400, message, code="invalid_value", param=param)


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def _plain_messages(messages: list[dict]) -> list[dict]:
    out = []
    for m in messages:
        role = "system" if m.get("role") == "developer" else m.get("role")
        out.append({**m, "role": role, "content": _text(m.get("content"))})
    return out


def _choice(body: dict, tools: list[dict]) -> tuple[Any, set[str] | None]:
    """(mode, the names calls may use or None for all): mode is none | auto | required | a named function."""
    choice = body.get("tool_choice")
    if choice is None:
        return ("auto" if tools else "none"), None
    if not tools and choice != "none":
        raise bad("tool_choice", "tool_choice requires tools: the request has none.")
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        names = [tool_format.tool_name(t) for t in allowed.get("tools") or []]
        known = {tool_format.tool_name(t) for t in tools}
        missing = [n for n in names if n not in known]
        if missing or not names:
            raise bad("tool_choice", f"allowed_tools names functions that are not among tools: {missing or '[]'}.")
        return allowed.get("mode", "auto"), set(names)
    return choice, None


def _response_schema(body: dict) -> tuple[str, Any]:
    """(type, schema): schema is None for text."""
    rf = body.get("response_format") or {"type": "text"}
    kind = rf.get("type")
    if kind == "json_object":
        return kind, {"type": "object"}
    if kind == "json_schema":
        spec = rf.get("json_schema")
        if not isinstance(spec, dict):
            raise bad("response_format", "response_format json_schema needs a `json_schema` object.")
        schema = spec.get("schema", True)
        return kind, True if schema == {} else schema
    return "text", None


async def response_format(body: dict) -> GrammarSpec | None:
    """What `response_format` alone constrains (legacy completions, where it extends OpenAI's API, as
    llama-server and LM Studio do); None for text. Raises ApiError (400) as prepare() does."""
    if body.get("response_format") is None:
        return None
    kind, schema = _response_schema(body)
    if schema is None:
        return None
    if body.get("stop"):
        raise bad("stop", "stop cannot be combined with a JSON response_format: a stop string could cut the "
                          "enforced output short. Leave stop out.")
    try:
        return GrammarSpec(await grammar.run(grammar.json_schema, schema, "response_format"), "response_format")
    except grammar.GrammarError as e:
        raise bad(e.param, e.message) from None


async def prepare(body: dict) -> Structured:
    """Raises ApiError (400) for what cannot be enforced."""
    tools = body.get("tools") or []
    mode, allowed = _choice(body, tools)
    kind, schema = _response_schema(body)
    calls = mode != "none"
    if (calls or schema is not None) and body.get("stop"):
        raise bad("stop", "stop cannot be combined with tools or a JSON response_format: a stop string could cut "
                          "the enforced output short. Leave stop out.")
    parallel = body.get("parallel_tool_calls") is not False
    try:
        if calls:
            content = schema if mode == "auto" else None
            text = await grammar.run(grammar.tool_calls, tools, mode, parallel, content, allowed)
            param = "tools"
        elif schema is not None:
            text = await grammar.run(grammar.json_schema, schema, "response_format")
            param = "response_format"
        else:
            text, param = None, None
    except grammar.GrammarError as e:
        raise bad(e.param, e.message) from None
    plain = _plain_messages(body["messages"])
    messages = tool_format.generic_messages(plain, tools if calls else None, mode)
    native = None
    custom = any(tool_format.is_custom(t) for t in tools) or any(
        tool_format.is_custom(c) for m in plain for c in m.get("tool_calls") or ())
    if not custom and (calls or any(m.get("tool_calls") or m.get("role") == "tool" for m in plain)):
        native = (tuple(tool_format.template_messages(plain)), tuple(tools) if calls else None)
    free_text = calls and mode == "auto" and schema is None  # content may be prose beside the calls
    return Structured(messages, GrammarSpec(text, param, free_text) if text else None,
                      ToolCallSplitter if calls else None, native)
