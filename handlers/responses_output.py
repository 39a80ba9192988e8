"""One generation's deltas -> a Response's output items, and the stream events OpenAI sends for them (pure).

The order is OpenAI's (what the openai SDK's `responses.stream()` checks):

    response.created, response.in_progress
    per item: response.output_item.added
      a message:  response.content_part.added, response.output_text.delta..., response.output_text.done,
                  response.content_part.done
      a function call:  response.function_call_arguments.delta..., response.function_call_arguments.done
      a custom tool call:  response.custom_tool_call_input.delta..., response.custom_tool_call_input.done
      reasoning:  response.reasoning_text.delta..., response.reasoning_text.done
    response.output_item.done
    response.completed | response.incomplete (max_output_tokens) | response.failed

Every event has `type` and a `sequence_number` counting from 0. Whitespace the model writes before its
tool calls is not a message (chat drops it the same way).
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

from handlers.shared.logprobs import token_text
from handlers.responses_input import Tools


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def logprobs(tokens) -> list[dict]:
    return [{"token": token_text(t.piece), "logprob": t.logprob, "bytes": list(t.piece),
             "top_logprobs": [{"token": token_text(a.piece), "logprob": a.logprob, "bytes": list(a.piece)}
                              for a in t.top]}
            for t in tokens if t.logprob is not None]


class Builder:
    """Feed it the deltas of one generation; it returns the events to send, and keeps the output items."""

    def __init__(self, base: dict, tools: Tools, with_logprobs: bool = False):
        self.base = base  # the Response's fields that do not change (id, model, the request's settings...)
        self.tools = tools
        self.with_logprobs = with_logprobs
        self.seq = 0
        self.output: list[dict] = []
        self._open: int | None = None  # the output index of the item being written
        self._held = ""  # whitespace not yet known to be a message's text
        self._texts: dict[int, list[str]] = {}  # output index -> text pieces (message, reasoning)
        self._logprobs: dict[int, list[dict]] = {}
        self._calls: dict[int, int] = {}  # the parser's call index -> output index
        self.reasoning_tokens = 0

    # events -------------------------------------------------------------------------------------
    def event(self, kind: str, **fields: Any) -> dict:
        e = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return e

    def response(self, status: str, usage: dict | None = None, error: dict | None = None,
                 incomplete: str | None = None) -> dict:
        r = {**self.base, "status": status, "output": self.output if status != "in_progress" else [],
             "error": error, "incomplete_details": {"reason": incomplete} if incomplete else None,
             "completed_at": int(time.time()) if status == "completed" else None}
        if usage is not None:
            r["usage"] = usage
        return r

    def start(self) -> list[dict]:
        return [self.event("response.created", response=self.response("in_progress")),
                self.event("response.in_progress", response=self.response("in_progress"))]

    # items --------------------------------------------------------------------------------------
    def _add(self, item: dict) -> list[dict]:
        self.output.append(item)
        self._open = len(self.output) - 1
        return [self.event("response.output_item.added", output_index=self._open, item=dict(item))]

    def _open_kind(self) -> str | None:
        return self.output[self._open]["type"] if self._open is not None else None

    def _start_text(self, kind: str) -> list[dict]:
        """A message (kind "message") or a reasoning item, with its one content part."""
        events = self.close()
        if kind == "message":
            events += self._add({"id": new_id("msg"), "type": "message", "role": "assistant", "status": "in_progress",
                                 "content": []})
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            events.append(self.event("response.content_part.added", item_id=self.output[self._open]["id"],
                                     output_index=self._open, content_index=0, part=part))
        else:
            events += self._add({"id": new_id("rs"), "type": "reasoning", "summary": [], "status": "in_progress"})
        self._texts[self._open] = []
        self._logprobs[self._open] = []
        return events

    def text(self, text: str, tokens=(), kind: str = "message") -> list[dict]:
        """Text of the answer (kind "message") or of its reasoning (kind "reasoning")."""
        if not text:
            return []
        events: list[dict] = []
        if self._open_kind() != kind:
            if kind == "message" and not (self._held + text).strip():
                self._held += text  # maybe only the space before a tool call
                return []
            events += self._start_text(kind)
            text, self._held = self._held + text, ""
        index = self._open
        self._texts[index].append(text)
        lp = logprobs(tokens) if self.with_logprobs and kind == "message" else []
        self._logprobs[index] += lp
        item_id = self.output[index]["id"]
        if kind == "message":
            events.append(self.event("response.output_text.delta", item_id=item_id, output_index=index,
                                     content_index=0, delta=text, logprobs=lp))
        else:
            events.append(self.event("response.reasoning_text.delta", item_id=item_id, output_index=index,
                                     content_index=0, delta=text))
        return events

    def call(self, index: int, call_id: str | None, name: str | None, fragment: str) -> list[dict]:
        """One tool-call fragment from the parser: its first names the call, later ones add arguments."""
        events: list[dict] = []
        if call_id is not None:
            self._held = ""  # whitespace before calls is not content
            events += self.close()
            kind, tool, namespace = self.tools.origin(name or "")
            if kind == "custom":
                item = {"id": new_id("ctc"), "type": "custom_tool_call", "call_id": call_id, "name": tool, "input": ""}
            else:
                item = {"id": new_id("fc"), "type": "function_call", "call_id": call_id, "name": tool, "arguments": "",
                        "status": "in_progress"}
            if namespace:
                item["namespace"] = namespace
            events += self._add(item)
            self._calls[index] = self._open
        out = self._calls.get(index)
        if out is None or not fragment:
            return events
        item = self.output[out]
        if item["type"] == "custom_tool_call":
            item["input"] += fragment
            events.append(self.event("response.custom_tool_call_input.delta", item_id=item["id"], output_index=out,
                                     delta=fragment))
        else:
            item["arguments"] += fragment
            events.append(self.event("response.function_call_arguments.delta", item_id=item["id"], output_index=out,
                                     delta=fragment))
        return events

    def close(self, status: str = "completed") -> list[dict]:
        """End the item being written (its .done events)."""
        if self._open is None:
            return []
        index, self._open = self._open, None
        item = self.output[index]
        events: list[dict] = []
        if item["type"] in ("message", "reasoning"):
            text = "".join(self._texts.pop(index))
            lp = self._logprobs.pop(index)
            if item["type"] == "message":
                part = {"type": "output_text", "text": text, "annotations": [], "logprobs": lp}
                events.append(self.event("response.output_text.done", item_id=item["id"], output_index=index,
                                         content_index=0, text=text, logprobs=lp))
                events.append(self.event("response.content_part.done", item_id=item["id"], output_index=index,
                                         content_index=0, part=dict(part)))
                item["content"] = [part]
            else:
                events.append(self.event("response.reasoning_text.done", item_id=item["id"], output_index=index,
                                         content_index=0, text=text))
                item["content"] = [{"type": "reasoning_text", "text": text}]
            item["status"] = status
        elif item["type"] == "custom_tool_call":
            events.append(self.event("response.custom_tool_call_input.done", item_id=item["id"], output_index=index,
                                     input=item["input"]))
        else:
            item["status"] = "completed" if status == "completed" or _is_json(item["arguments"]) else status
            events.append(self.event("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                                     name=item["name"], arguments=item["arguments"]))
        events.append(self.event("response.output_item.done", output_index=index, item=dict(item)))
        return events

    def finish(self, finish_reason: str, usage: dict) -> tuple[list[dict], dict]:
        """The last events and the whole response: completed, or incomplete when max_output_tokens (or the
        context) cut it short."""
        incomplete = finish_reason == "length"
        events: list[dict] = []
        if not self.output and self._open is None:  # nothing at all was written: an empty message
            events += self._start_text("message")
            self._texts[self._open].append(self._held)
        events += self.close("incomplete" if incomplete else "completed")
        usage = {**usage, "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens}}
        if incomplete:
            response = self.response("incomplete", usage, incomplete="max_output_tokens")
            events.append(self.event("response.incomplete", response=response))
        else:
            response = self.response("completed", usage)
            events.append(self.event("response.completed", response=response))
        return events, response

    def fail(self, message: str, code: str = "server_error") -> tuple[list[dict], dict]:
        events = self.close("incomplete")
        response = self.response("failed", error={"code": code, "message": message})
        events.append(self.event("response.failed", response=response))
        return events, response


def _is_json(text: str) -> bool:
    """A function call's arguments are whole (the answer may have been cut after them, by a held-back repeat)."""
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> dict:
    return {"input_tokens": prompt_tokens,
            "input_tokens_details": {"cached_tokens": cached_tokens, "cache_write_tokens": 0},
            "output_tokens": completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt_tokens + completion_tokens}


def output_text(response: dict) -> str:
    return "".join(p.get("text", "") for item in response.get("output", []) if item.get("type") == "message"
                   for p in item.get("content", []))
