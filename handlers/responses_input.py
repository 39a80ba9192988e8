"""A Responses API request -> the chat-shaped body that handlers/shared/structured.py enforces (pure).

What maps to what:
- `instructions` -> a first system message; `input` (a string, or items) -> messages: a message item
  (`developer` as `system`; text parts joined), consecutive `function_call` / `custom_tool_call` items ->
  one assistant message's `tool_calls`, their `*_output` items -> `tool` messages, `reasoning` items and
  the items of built-in tools Hearth does not run -> left out; images and files -> 400 (no vision model).
- tools: `function` -> chat's function tool; `custom` -> chat's custom tool (free text or a grammar);
  `namespace` -> its tools, flattened under the name `namespace.tool` (a call reports `name` and
  `namespace` apart again); any other type is a built-in tool: accepted, echoed, left out of the prompt.
- `tool_choice`: the modes as they are; {type: function|custom, name} -> that one tool; `allowed_tools`.
- `text.format` -> `response_format` (json_object / json_schema).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hearth.errors import ApiError

CALL_ITEMS = ("function_call", "custom_tool_call")
OUTPUT_ITEMS = ("function_call_output", "custom_tool_call_output")
SKIPPED_ITEMS = frozenset({  # items of tools Hearth does not run, and reasoning: accepted, not shown to the model
    "reasoning", "web_search_call", "file_search_call", "image_generation_call", "code_interpreter_call",
    "computer_call", "computer_call_output", "local_shell_call", "local_shell_call_output", "shell_call",
    "shell_call_output", "apply_patch_call", "apply_patch_call_output", "mcp_call", "mcp_list_tools",
    "mcp_approval_request", "mcp_approval_response", "tool_search_call", "tool_search_output", "compaction",
})
TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text", "reasoning_text", "refusal"})


def bad(param: str, message: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, code=code, param=param)


@dataclass
class Tools:
    """The request's tools in chat's shape, and how a called name maps back."""

    chat: list[dict] = field(default_factory=list)  # function and custom tools, namespaces flattened
    kinds: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)  # flat name -> (kind, name, namespace)
    hosted: list[str] = field(default_factory=list)  # built-in tool types, left out

    def origin(self, flat: str) -> tuple[str, str, str | None]:
        return self.kinds.get(flat, ("function", flat, None))


def flat_name(name: str, namespace: str | None) -> str:
    return f"{namespace}.{name}" if namespace else name


def tools(raw: list[dict] | None) -> Tools:
    out = Tools()

    def add(tool: dict, param: str, namespace: str | None = None) -> None:
        kind = tool.get("type")
        if kind == "namespace" and namespace is None:
            ns = tool.get("name")
            if not ns:
                raise bad(f"{param}.name", "A namespace tool needs a `name`.", "missing_required_parameter")
            for j, inner in enumerate(tool.get("tools") or []):
                if inner.get("type") not in ("function", "custom"):
                    raise bad(f"{param}.tools[{j}].type", "A namespace holds function and custom tools only.")
                add(inner, f"{param}.tools[{j}]", ns)
            return
        if kind not in ("function", "custom"):
            out.hosted.append(str(kind))
            return
        name = tool.get("name")
        if not name:
            raise bad(f"{param}.name", f"A {kind} tool needs a `name`.", "missing_required_parameter")
        flat = flat_name(name, namespace)
        if flat in out.kinds:
            raise bad(f"{param}.name", f"Two tools are named {flat!r}.")
        out.kinds[flat] = (kind, name, namespace)
        if kind == "function":
            fn = {"name": flat, "description": tool.get("description") or "", "parameters": tool.get("parameters")}
            if fn["parameters"] is None:
                del fn["parameters"]
            out.chat.append({"type": "function", "function": fn})
        else:
            out.chat.append({"type": "custom", "custom": {"name": flat, "description": tool.get("description") or "",
                                                          "format": tool.get("format")}})

    for i, tool in enumerate(raw or []):
        add(tool, f"tools[{i}]")
    return out


def tool_choice(choice: Any, t: Tools) -> Any:
    """Responses' tool_choice -> chat's; None when the request has none."""
    if choice is None or isinstance(choice, str):
        if choice in ("auto", "required") and not t.chat:
            if choice == "required":
                raise bad("tool_choice", "tool_choice is `required` but the request has no function or custom tool "
                                         "Hearth can call (built-in tools are not run).")
            return None  # only built-in tools: nothing to call
        return choice
    kind = choice.get("type")
    if kind in ("function", "custom"):
        name = flat_name(choice.get("name") or "", choice.get("namespace"))
        if name not in t.kinds:
            raise bad("tool_choice", f"tool_choice names the {kind} tool {name!r}, which is not among `tools`.")
        return {"type": "function", "function": {"name": name}}
    if kind == "allowed_tools":
        names = [flat_name(x.get("name") or "", x.get("namespace")) for x in choice.get("tools") or []
                 if x.get("type") in ("function", "custom")]
        missing = [n for n in names if n not in t.kinds]
        if missing:
            raise bad("tool_choice", f"allowed_tools names tools that are not among `tools`: {missing}.")
        if not names:
            if choice.get("mode") == "required":
                raise bad("tool_choice", "allowed_tools allows no function or custom tool Hearth can call.")
            return "none"
        return {"type": "allowed_tools", "allowed_tools": {
            "mode": choice.get("mode") or "auto",
            "tools": [{"type": "function", "function": {"name": n}} for n in names]}}
    raise bad("tool_choice", f"tool_choice {kind!r} names a built-in tool, which Hearth does not run; choose "
                             "`auto`, `required`, `none`, a function or a custom tool.")


def response_format(text: dict | None) -> dict | None:
    fmt = (text or {}).get("format") or {"type": "text"}
    kind = fmt.get("type")
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        if "schema" not in fmt:
            raise bad("text.format.schema", "text.format json_schema needs a `schema`.", "missing_required_parameter")
        if not fmt.get("name"):
            raise bad("text.format.name", "text.format json_schema needs a `name`.", "missing_required_parameter")
        return {"type": "json_schema", "json_schema": {"name": fmt["name"], "schema": fmt["schema"],
                                                       "strict": fmt.get("strict")}}
    return None


def _text(content: Any, param: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind in TEXT_PARTS:
            texts.append(part.get("text") or part.get("refusal") or "")
        elif kind in ("input_image", "input_file", "input_audio", "image_url", "image"):
            raise bad(f"{param}[{j}]", f"{kind} content is not supported: the loaded model reads text only.",
                      "unsupported_content")
        else:
            raise bad(f"{param}[{j}].type", f"Unknown content part type {kind!r}.")
    return "".join(texts)


def normalize(raw: str | list | None) -> list[dict]:
    """`input` as a list of items (a string is one user message)."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    return [dict(item) for item in raw]


def messages(items: list[dict], t: Tools, instructions: str | None = None, first_param: int = 0,
             resolve=None) -> list[dict]:
    """Items (the conversation so far, then this request's input) -> chat messages. `first_param` is the
    index of this request's first item in `items` (errors name `input[i]` counted from there); `resolve`
    looks an `item_reference` up (None: references are refused)."""
    out: list[dict] = [{"role": "system", "content": instructions}] if instructions else []
    for i, item in enumerate(items):
        param = f"input[{i - first_param}]" if i >= first_param else "previous_response_id"
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "item_reference":
            found = resolve(item.get("id")) if resolve else None
            if found is None:
                raise bad(f"{param}.id", f"No stored item with id {item.get('id')!r}.")
            item, kind = found, found.get("type") or "message"
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise bad(f"{param}.role", f"A message's role must be user, assistant, system or developer, not {role!r}.")
            out.append({"role": "system" if role == "developer" else role, "content": _text(item.get("content"), f"{param}.content")})
        elif kind in CALL_ITEMS:
            for key in ("call_id", "name"):
                if not item.get(key):
                    raise bad(f"{param}.{key}", f"A {kind} item needs `{key}`.", "missing_required_parameter")
            name = flat_name(item["name"], item.get("namespace"))
            if kind == "function_call":
                call = {"id": item["call_id"], "type": "function",
                        "function": {"name": name, "arguments": item.get("arguments") or "{}"}}
            else:
                call = {"id": item["call_id"], "type": "custom", "custom": {"name": name, "input": item.get("input") or ""}}
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and (last.get("tool_calls") or last.get("_open")):
                last.setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": "", "tool_calls": [call]})
        elif kind in OUTPUT_ITEMS:
            if not item.get("call_id"):
                raise bad(f"{param}.call_id", f"A {kind} item needs `call_id`.", "missing_required_parameter")
            output = item.get("output")
            text = output if isinstance(output, str) else _text(output, f"{param}.output")
            out.append({"role": "tool", "tool_call_id": item["call_id"], "content": text})
        elif kind in SKIPPED_ITEMS:
            continue
        else:
            raise bad(f"{param}.type", f"Unknown input item type {kind!r}.")
        if kind == "message" and out[-1]["role"] == "assistant":
            out[-1]["_open"] = True  # the calls that follow belong to this assistant turn
    for m in out:
        m.pop("_open", None)
    if not any(m["role"] != "system" for m in out):
        raise bad("input", "The request has no input: give `input` (a string or items).", "missing_required_parameter")
    return out


def output_as_input(output: list[dict]) -> list[dict]:
    """A stored response's output items, as input items for the turn that continues it."""
    items = []
    for item in output:
        if item.get("type") == "message":
            items.append({"type": "message", "role": "assistant", "id": item.get("id"),
                          "content": [{"type": "output_text", "text": p.get("text", "")} for p in item.get("content", [])]})
        elif item.get("type") in CALL_ITEMS or item.get("type") == "reasoning":
            items.append(item)
    return items


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
