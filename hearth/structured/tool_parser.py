"""Generated text -> content and tool-call deltas, streamed the way OpenAI streams tool calls.

Fed the answer's text in pieces (any split, even mid-marker), it yields, in order:
- `Content(text)`: text outside call blocks (a tail that might become the call marker is held back);
- `CallStart(index, id, name)`: a call's first delta, once its name is complete;
- `CallArgs(index, text)`: fragments of its arguments' JSON text, as they arrive.
The blocks are `tool_format`'s (`<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`); the
grammar makes the model write them exactly, but the parser also takes any JSON whitespace around the
keys. Text that is not a well-formed block (possible only without the grammar) stays content.

A verbatim repeat ends the answer: a call whose name and arguments text equal those of an earlier call
in the same answer is not reported, and `done` becomes True (the engine then ends the sequence, finish
reason "tool_calls"). Small models given room for parallel calls otherwise call the same function
again and again until max_tokens, and the last call is cut short. While a call may still turn out to
be such a repeat (its text so far is a prefix of an earlier call of that name) its deltas are held
back, then sent at once when it diverges, so a repeat is never half-streamed.
"""
from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass, field

from hearth.structured import tool_format

_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"arguments"\s*:\s*')
_TAIL = re.compile(r"\s*\}\s*" + re.escape(tool_format.CALL_CLOSE))
_ID_CHARS = string.ascii_letters + string.digits


def new_call_id() -> str:
    return "call_" + "".join(secrets.choice(_ID_CHARS) for _ in range(24))


@dataclass
class Content:
    text: str


@dataclass
class CallStart:
    index: int
    id: str
    name: str


@dataclass
class CallArgs:
    index: int
    text: str


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str = ""


@dataclass
class _Args:
    """Where a JSON value's text ends, fed a character at a time."""

    depth: int = 0
    in_string: bool = False
    escaped: bool = False

    def feed(self, c: str) -> bool:
        """True once `c` completed the value (objects and arrays; what the grammar produces)."""
        if self.in_string:
            if self.escaped:
                self.escaped = False
            elif c == "\\":
                self.escaped = True
            elif c == '"':
                self.in_string = False
            return False
        if c == '"':
            self.in_string = True
        elif c in "{[":
            self.depth += 1
        elif c in "}]":
            self.depth -= 1
            return self.depth <= 0
        return False


@dataclass
class ToolCallParser:
    calls: list[ToolCall] = field(default_factory=list)
    content: str = ""  # all content emitted so far
    _buf: str = ""  # text not yet classified
    _state: str = "text"  # text | head | args | tail
    _scan: _Args = field(default_factory=_Args)
    _held: list | None = None  # the current call's events, while it may be a repeat of an earlier call
    done: bool = False  # a verbatim repeat ended the answer: nothing more is read

    def feed(self, text: str) -> list:
        if self.done:
            return []
        self._buf += text
        out: list = []
        while not self.done:
            before = (self._state, len(self._buf))
            {"text": self._text, "head": self._head, "args": self._in_args, "tail": self._tail}[self._state](out)
            if (self._state, len(self._buf)) == before:
                return out
        return out

    def finish(self) -> list:
        """The end of the answer: whatever is held back. A call cut short keeps what it streamed; one cut
        before its name was complete is dropped (the marker was never content: the grammar made it a call),
        and so is one cut while it could still be a repeat (nothing of it was streamed)."""
        out: list = []
        if self._state == "text" and (self._buf.strip() or not self.calls) and not self.done:
            self._emit_content(self._buf, out)  # (whitespace after the last call is dropped)
        if self._held is not None:
            self.calls.pop()
            self._held = None
        self._buf = ""
        return out

    # states ----------------------------------------------------------------------------------
    def _emit_content(self, text: str, out: list) -> None:
        if text:
            self.content += text
            out.append(Content(text))

    def _text(self, out: list) -> None:
        marker = tool_format.CALL_OPEN
        i = self._buf.find(marker)
        if i >= 0:
            if self._buf[:i].strip() or not self.calls:  # (the newline between two calls is not content)
                self._emit_content(self._buf[:i], out)
            self._buf = self._buf[i + len(marker):]
            self._state = "head"
            return
        keep = 0  # the longest tail that may still grow into the marker
        for k in range(min(len(marker) - 1, len(self._buf)), 0, -1):
            if self._buf.endswith(marker[:k]):
                keep = k
                break
        # whitespace between calls is not content: hold it until we know what follows it
        if self.calls and not self._buf[: len(self._buf) - keep].strip():
            return
        cut = len(self._buf) - keep
        self._emit_content(self._buf[:cut], out)
        self._buf = self._buf[cut:]

    def _head(self, out: list) -> None:
        m = _HEAD.match(self._buf)
        if m is None:
            if len(self._buf) > 4096 or (self._buf.strip() and not self._buf.lstrip().startswith("{")):
                self._emit_content(tool_format.CALL_OPEN, out)  # not a call: content again
                self._state = "text"
            return
        try:
            name = json.loads(m.group(1))
        except ValueError:
            name = m.group(1).strip('"')
        call = ToolCall(new_call_id(), name)
        self.calls.append(call)
        start = CallStart(len(self.calls) - 1, call.id, name)
        if any(c.name == name for c in self.calls[:-1]):
            self._held = [start]
        else:
            out.append(start)
        self._buf = self._buf[m.end():]
        self._scan = _Args()
        self._state = "args"

    def _in_args(self, out: list) -> None:
        index = len(self.calls) - 1
        if not self.calls[index].arguments:
            self._buf = self._buf.lstrip()  # JSON whitespace before the value is not part of it
        piece = self._buf
        for n, c in enumerate(self._buf):
            if self._scan.feed(c):
                piece = self._buf[: n + 1]
                self._state = "tail"
                break
        self._buf = self._buf[len(piece):]
        if not piece:
            return
        call = self.calls[index]
        call.arguments += piece
        if self._held is None:
            out.append(CallArgs(index, piece))
            return
        earlier = [c.arguments for c in self.calls[:-1] if c.name == call.name]
        if self._state == "tail" and call.arguments in earlier:  # a verbatim repeat: the answer ends here
            self.calls.pop()
            self._held, self.done, self._buf = None, True, ""
        elif self._state == "tail" or not any(a.startswith(call.arguments) for a in earlier):  # new after all
            out += self._held + [CallArgs(index, call.arguments)]
            self._held = None

    def _tail(self, out: list) -> None:  # after the arguments: "}\n</tool_call>"
        m = _TAIL.match(self._buf)
        if m is not None:
            self._buf = self._buf[m.end():]
            self._state = "text"
        elif len(self._buf) > 64:  # not the expected close: leave the rest as content
            self._state = "text"


class ToolCallSplitter:
    """The engine's tool-call parser (api.ToolCallParser): content text and api.ToolCallDelta fragments.
    A call's first fragment has its id and name and empty arguments; later ones carry arguments."""

    def __init__(self):
        self._p = ToolCallParser()

    def feed(self, text: str):
        return _split(self._p.feed(text))

    def finish(self):
        return _split(self._p.finish())

    @property
    def done(self) -> bool:
        return self._p.done


def _split(events: list):
    from hearth.engine.api import ToolCallDelta

    text, calls = [], []
    for e in events:
        if isinstance(e, Content):
            text.append(e.text)
        elif isinstance(e, CallStart):
            calls.append(ToolCallDelta(e.index, e.id, e.name, ""))
        else:
            calls.append(ToolCallDelta(e.index, None, None, e.text))
    return "".join(text), calls
