"""Anthropic's Messages API <-> chat's shapes (pure).

In: `system` (a string or text blocks) -> a system message; `messages` -> chat messages (`text` blocks
joined; an assistant's `tool_use` blocks -> its `tool_calls`; a user's `tool_result` blocks -> `tool`
messages, before the user's own text; `thinking` blocks left out; images and documents -> 400); tools
(`input_schema`) -> chat's function tools (server tools, with another `type`, left out); `tool_choice`
auto / any / tool / none -> chat's auto / required / named / none, `disable_parallel_tool_use` ->
parallel_tool_calls false; structured outputs (`output_config.format`) -> a json_schema response_format.

Out (`Blocks`): the deltas of one generation -> content blocks (text, tool_use) and the stream events
Anthropic sends for them: content_block_start, content_block_delta (text_delta / input_json_delta),
content_block_stop, one block after another, each with its index.
"""
from __future__ import annotations

import json
from typing import Any

from hearth.errors import ApiError

TEXT_BLOCKS = frozenset({"text"})
SKIPPED_BLOCKS = frozenset({"thinking", "redacted_thinking", "server_tool_use", "web_search_tool_result",
                            "web_fetch_tool_result", "code_execution_tool_result", "container_upload",
                            "search_result"})
MEDIA_BLOCKS = frozenset({"image", "document"})
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def bad(param: str, message: str) -> ApiError:
    return ApiError(400, message, code="invalid_value", param=param)


def _text(content: Any, param: str) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for j, block in enumerate(content or []):
        kind = block.get("type")
        if kind in TEXT_BLOCKS:
            texts.append(block.get("text") or "")
        elif kind in MEDIA_BLOCKS:
            raise bad(f"{param}[{j}]", f"{kind} blocks are not supported: the loaded model reads text only.")
        elif kind not in SKIPPED_BLOCKS:
            raise bad(f"{param}[{j}].type", f"A {kind!r} block is not supported here.")
    return "".join(texts)


def system(raw: Any) -> str:
    return _text(raw, "system") if raw else ""


def messages(raw: list[dict], system_text: str = "") -> list[dict]:
    out: list[dict] = [{"role": "system", "content": system_text}] if system_text else []
    for i, m in enumerate(raw):
        role, content, param = m.get("role"), m.get("content"), f"messages[{i}].content"
        if role == "system":
            out.append({"role": "system", "content": _text(content, param)})
            continue
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        if role == "assistant":
            calls = []
            for j, block in enumerate(content):
                if block.get("type") == "tool_use":
                    if not block.get("id") or not block.get("name"):
                        raise bad(f"{param}[{j}]", "A tool_use block needs `id` and `name`.")
                    calls.append({"id": block["id"], "type": "function", "function": {
                        "name": block["name"], "arguments": json.dumps(block.get("input") or {}, ensure_ascii=False)}})
            text = _text([b for b in content if b.get("type") != "tool_use"], param)
            out.append({"role": "assistant", "content": text, **({"tool_calls": calls} if calls else {})})
            continue
        rest = []
        for j, block in enumerate(content):
            if block.get("type") == "tool_result":
                if not block.get("tool_use_id"):
                    raise bad(f"{param}[{j}].tool_use_id", "A tool_result block needs `tool_use_id`.")
                result = _text(block.get("content") or "", f"{param}[{j}].content")
                if block.get("is_error"):
                    result = f"Error: {result}"
                out.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": result})
            else:
                rest.append(block)
        if rest or not any(b.get("type") == "tool_result" for b in content):
            out.append({"role": "user", "content": _text(rest, param)})
    return out


def tools(raw: list[dict] | None) -> list[dict]:
    """Client tools in chat's shape; server tools (`type` other than custom) are left out."""
    out = []
    for t in raw or []:
        if t.get("type") not in (None, "custom"):
            continue
        fn = {"name": t["name"], "description": t.get("description") or ""}
        if t.get("input_schema") is not None:
            fn["parameters"] = {k: v for k, v in t["input_schema"].items() if k != "$schema"}
        out.append({"type": "function", "function": fn})
    return out


def tool_choice(raw: dict | None, chat_tools: list[dict]) -> tuple[Any, bool]:
    """(chat's tool_choice or None, parallel calls allowed)."""
    if raw is None:
        return None, True
    parallel = not raw.get("disable_parallel_tool_use")
    kind = raw.get("type")
    if kind == "none" or not chat_tools:
        if kind in ("any", "tool"):
            raise bad("tool_choice", f"tool_choice {kind!r} needs tools Hearth can call; the request has none.")
        return "none", parallel
    if kind == "any":
        return "required", parallel
    if kind == "tool":
        names = {t["function"]["name"] for t in chat_tools}
        if raw.get("name") not in names:
            raise bad("tool_choice", f"tool_choice names the tool {raw.get('name')!r}, which is not among `tools`.")
        return {"type": "function", "function": {"name": raw["name"]}}, False
    return "auto", parallel


def response_format(output_config: dict | None) -> dict | None:
    """Structured outputs (`output_config.format`, json_schema) -> chat's response_format."""
    fmt = (output_config or {}).get("format")
    if not fmt:
        return None
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt.get("schema", {})}}


def tool_use_id(call_id: str) -> str:
    return "toolu_" + call_id.removeprefix("call_")


class Blocks:
    """Content blocks as the deltas come; each method returns the stream events it makes."""

    def __init__(self):
        self.content: list[dict] = []
        self._open: int | None = None
        self._held = ""  # whitespace that may only precede a tool call
        self._args: dict[int, str] = {}  # block index -> a tool_use's JSON text so far
        self._calls: dict[int, int] = {}  # the parser's call index -> block index

    def _start(self, block: dict) -> list[dict]:
        events = self.close()
        self.content.append(block)
        self._open = len(self.content) - 1
        return events + [{"type": "content_block_start", "index": self._open, "content_block": dict(block)}]

    def thinking(self, text: str) -> list[dict]:
        """A reasoning model's <think> text, as a thinking block (its signature empty: nothing is signed)."""
        if not text:
            return []
        events: list[dict] = []
        if self._open is None or self.content[self._open]["type"] != "thinking":
            events += self._start({"type": "thinking", "thinking": "", "signature": ""})
        self.content[self._open]["thinking"] += text
        return events + [{"type": "content_block_delta", "index": self._open,
                          "delta": {"type": "thinking_delta", "thinking": text}}]

    def text(self, text: str) -> list[dict]:
        if not text:
            return []
        events: list[dict] = []
        if self._open is None or self.content[self._open]["type"] != "text":
            if not (self._held + text).strip():
                self._held += text
                return []
            events += self._start({"type": "text", "text": ""})
            text, self._held = self._held + text, ""
        self.content[self._open]["text"] += text
        return events + [{"type": "content_block_delta", "index": self._open,
                          "delta": {"type": "text_delta", "text": text}}]

    def call(self, index: int, call_id: str | None, name: str | None, fragment: str) -> list[dict]:
        events: list[dict] = []
        if call_id is not None:
            self._held = ""
            events += self._start({"type": "tool_use", "id": tool_use_id(call_id), "name": name, "input": {}})
            self._calls[index] = self._open
            self._args[self._open] = ""
        block = self._calls.get(index)
        if block is None or not fragment:
            return events
        self._args[block] += fragment
        return events + [{"type": "content_block_delta", "index": block,
                          "delta": {"type": "input_json_delta", "partial_json": fragment}}]

    def close(self) -> list[dict]:
        if self._open is None:
            return []
        index, self._open = self._open, None
        block = self.content[index]
        events = []
        if block["type"] == "thinking":
            events.append({"type": "content_block_delta", "index": index,
                           "delta": {"type": "signature_delta", "signature": ""}})
        if block["type"] == "tool_use":
            try:
                block["input"] = json.loads(self._args[index] or "{}")
            except ValueError:  # cut short by max_tokens
                block["input"] = {}
        return events + [{"type": "content_block_stop", "index": index}]

    def finish(self) -> list[dict]:
        events = self.close()
        if not self.content:  # nothing written: one empty text block, as Anthropic answers
            events += self._start({"type": "text", "text": self._held})
            events += self.close()
        return events
