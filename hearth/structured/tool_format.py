"""How tools and tool calls are written in the prompt and in the model's answer.

One format for calls, whatever the model: the Hermes/Qwen convention many open models were tuned on,

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

(one block per call, a newline between blocks). The grammar (`grammar.tool_calls`) makes the model
write exactly this, and the parser (`tool_parser`) reads it back into OpenAI's `tool_calls`.

The prompt: a model whose own chat template renders tools in this same convention (it takes `tools`
and writes `<tool_call>` blocks: Qwen 2.5/3, Hermes, SmolLM3) renders the conversation itself, given
`tools=` as transformers' apply_chat_template does (`renders_tools`, `template_messages`; see
hearth/engine/model.py). Every other model gets the generic rendering below, made of plain
system/user/assistant messages, which every chat template can render (SmolLM2's has no tool support):
- the tools are described in a system section (appended to the first system message, or a new one);
- an assistant message's `tool_calls` become the blocks above, after its text;
- `tool` results become a user message of `<tool_response>` blocks (consecutive results share one).
Either way the answer is held to the same grammar and read by the same parser.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
BETWEEN_CALLS = "\n"
CALL_TAIL = "}\n" + CALL_CLOSE  # closes the call object, then the block


def call_head(name: str) -> str:
    """What follows CALL_OPEN up to the arguments object."""
    return '\n{"name": ' + json.dumps(name, ensure_ascii=False) + ', "arguments": '


def render_call(name: str, arguments: str) -> str:
    """One call block; `arguments` is the JSON text of the arguments (as OpenAI carries it)."""
    args = arguments.strip() or "{}"
    return CALL_OPEN + call_head(name) + args + CALL_TAIL


TOOLS_PREAMBLE = (
    "# Tools\n\n"
    "You may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
)
TOOLS_INSTRUCTIONS = (
    "\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n"
    "<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>"
)


def tools_section(tools: Sequence[dict], choice: Any = "auto") -> str:
    lines = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    text = TOOLS_PREAMBLE + lines + TOOLS_INSTRUCTIONS
    if choice == "required":
        text += "\n\nAnswer with at least one function call."
    elif isinstance(choice, dict):
        text += f"\n\nAnswer by calling the function {choice.get('function', {}).get('name')}."
    return text


def generic_messages(messages: Sequence[dict], tools: Sequence[dict] | None, choice: Any = "auto") -> list[dict]:
    """OpenAI-shaped messages (role, content, tool_calls, tool_call_id) -> plain role/content messages."""
    out: list[dict] = []
    for m in messages:
        role, content = m["role"], m.get("content") or ""
        if role == "assistant" and m.get("tool_calls"):
            blocks = [render_call(c["function"]["name"], c["function"].get("arguments") or "{}")
                      for c in m["tool_calls"]]
            out.append({"role": "assistant", "content": "\n".join(([content] if content else []) + blocks)})
        elif role == "tool":
            block = f"<tool_response>\n{content}\n</tool_response>"
            if out and out[-1].get("_tool"):
                out[-1]["content"] += "\n" + block
            else:
                out.append({"role": "user", "content": block, "_tool": True})
        else:
            out.append({"role": role, "content": content})
    for m in out:
        m.pop("_tool", None)
    if tools:
        section = tools_section(tools, choice)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": (out[0]["content"] + "\n\n" + section).lstrip()}
        else:
            out.insert(0, {"role": "system", "content": section})
    return out


def template_messages(messages: Sequence[dict]) -> list[dict]:
    """OpenAI-shaped messages as tool-aware Jinja templates expect them (Hugging Face's convention):
    a call's `arguments` as an object, not a JSON string."""
    out = []
    for m in messages:
        m = dict(m)
        if m.get("tool_calls"):
            calls = []
            for c in m["tool_calls"]:
                try:
                    args = json.loads(c["function"].get("arguments") or "{}")
                except ValueError:
                    args = c["function"].get("arguments")
                calls.append({**c, "function": {**c["function"], "arguments": args}})
            m["tool_calls"] = calls
        if m.get("content") is None:
            m["content"] = ""
        out.append(m)
    return out


def renders_tools(source: str | None) -> bool:
    """Whether a Jinja chat template renders `tools` and tool calls in this module's convention: it names
    the `tools` variable and writes `<tool_call>` (llama.cpp detects its Hermes 2 Pro format by the same
    marker). A template that never names `tools` cannot describe them."""
    return bool(source) and "tools" in source and CALL_OPEN in source


def tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators=None,
           sort_keys: bool = False) -> str:
    """Jinja's `tojson` as transformers defines it for chat templates (jinja2's own escapes <, >, & and ')."""
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
