"""What a request constrains, as one llguidance grammar: a JSON schema, any JSON object, or tool calls.

Everything here is pure (no model, no llama.cpp): it turns request fields into grammar text (Lark, as
llguidance reads it) and proves the text compiles, or raises GrammarError naming the request field and
the schema feature at fault (a 400). `constraint.py` turns the text into a per-sequence token mask.

Why llguidance and not llama.cpp's grammar sampler (measured on SmolLM2's 49,152-token vocabulary, see
`benchmarks/grammar_cost.py`): llama.cpp checks a whole vocabulary in ~20 ms per step (a decode step is
~5 ms) and aborts the process on some grammars; llguidance computes a mask in ~0.02-0.1 ms and reports
bad grammars and dead ends as states.

Not every hostile input is a state, though: a $ref chain ~3,000 deep overflows llguidance's stack and
kills the process. So before llguidance sees a schema it is bounded here (size, nesting depth through
$refs, local JSON-pointer refs only), and compilation runs on a thread with a large stack (`run`).
"""
from __future__ import annotations

import asyncio
import json
import re
import threading
from typing import Any, Callable, Sequence

from llguidance import LLMatcher, LLParserLimits

from hearth.structured import tool_format

MAX_SCHEMA_CHARS = 100_000  # serialized; 10,000 properties (~300 KB) take ~2 s to compile
MAX_DEPTH = 64  # nested schemas, following $refs (OpenAI allows 10); llguidance overflows at ~2,500
MAX_TOOLS = 128
MAX_PARALLEL_CALLS = 16  # calls in one answer when parallel calls are allowed (a bound, so every answer ends)
STACK_BYTES = 256 << 20  # the compile thread's stack: virtual, only touched pages are committed

# Whitespace inside JSON: present or not, but bounded, so a weak model cannot spend its whole budget
# on newlines ({"a":\n\n\n\n...); 16 is enough for pretty-printing a few levels deep.
JSON_OPTIONS = {"whitespace_pattern": r"[\x20\x0A\x0D\x09]{1,16}"}


def limits() -> LLParserLimits:
    return LLParserLimits()  # llguidance's defaults bound per-step work (~15 ms worst) and grammar size


class GrammarError(Exception):
    """A constraint that cannot be enforced: 400 invalid_request_error with `param`."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.message, self.param = message, param


# --- schemas -------------------------------------------------------------------------------------
def check_schema(schema: Any, param: str) -> None:
    """Bounds llguidance relies on: size, depth through $refs, and refs it can resolve safely."""
    if not isinstance(schema, (dict, bool)):
        raise GrammarError(f"{param}: a JSON schema must be an object (or a boolean).", param)
    try:
        size = len(json.dumps(schema))
    except (ValueError, RecursionError):
        raise GrammarError(f"{param}: the schema is nested too deeply.", param) from None
    if size > MAX_SCHEMA_CHARS:
        raise GrammarError(f"{param}: the schema is {size} characters long; at most {MAX_SCHEMA_CHARS} are supported.",
                           param)
    memo: dict[int, int] = {}

    def depth(node: Any, path: tuple[int, ...]) -> int:
        if not isinstance(node, (dict, list)):
            return 0
        key = id(node)
        if key in memo:
            return memo[key]
        if key in path:  # a recursive schema: the grammar handles the cycle, it does not deepen
            return 0
        if len(path) > MAX_DEPTH:
            raise GrammarError(f"{param}: the schema is nested more than {MAX_DEPTH} levels deep "
                               "(counting $ref indirections).", param)
        inner = path + (key,)
        children = list(node.values()) if isinstance(node, dict) else node
        if isinstance(node, dict):
            if node is not schema and "$id" in node:
                raise GrammarError(f"{param}: `$id` inside a schema is not supported.", param)
            for k in ("$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor"):
                if k in node:
                    raise GrammarError(f"{param}: `{k}` is not supported; use a local `$ref` (#/$defs/...).", param)
            ref = node.get("$ref")
            if ref is not None:
                children.append(_resolve(schema, ref, param))
        d = 1 + max((depth(c, inner) for c in children), default=0)
        memo[key] = d
        return d

    depth(schema, ())


def _resolve(root: Any, ref: Any, param: str) -> Any:
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise GrammarError(f"{param}: `$ref` {ref!r} is not supported: only local references (#/...) are.", param)
    node = root
    for part in ref[1:].split("/")[1:] if ref != "#" else []:
        part = part.replace("~1", "/").replace("~0", "~")
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise GrammarError(f"{param}: `$ref` {ref!r} points to nothing in the schema.", param) from None
    return node


def _close_objects(node: Any, in_all_of: bool = False) -> Any:
    """A copy where every object schema with `properties` that says nothing about other keys forbids
    them (`additionalProperties: false`), as xgrammar's strict mode does. Every output still validates
    against the schema as sent; a small model just cannot wander off into invented keys until
    max_tokens (measured: instructor's schemas, which leave additionalProperties out, ran to the limit).
    Not inside a multi-branch allOf, whose branches each list only part of the properties."""
    if isinstance(node, list):
        return [_close_objects(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k == "allOf" and isinstance(v, list):
            out[k] = [_close_objects(x, in_all_of=len(v) > 1) for x in v]
        elif k in ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas") and isinstance(v, dict):
            out[k] = {name: _close_objects(sub) for name, sub in v.items()}
        elif k in ("const", "enum", "default", "examples", "x-guidance"):
            out[k] = v
        else:
            out[k] = _close_objects(v)
    if ("properties" in out and not in_all_of and not any(
            k in out for k in ("additionalProperties", "patternProperties", "unevaluatedProperties", "allOf",
                               "anyOf", "oneOf", "$ref"))):
        out["additionalProperties"] = False
    return out


def _with_options(schema: Any) -> Any:
    schema = _close_objects(schema)
    if isinstance(schema, bool):
        return {"x-guidance": JSON_OPTIONS} if schema else schema
    return {**schema, "x-guidance": {**JSON_OPTIONS, **schema.get("x-guidance", {})}} if isinstance(schema, dict) else schema


def _validate(lark: str, param: str, what: str) -> str:
    failed, messages = LLMatcher.validate_grammar_with_warnings(lark, None, limits=limits())
    if failed:
        raise GrammarError(f"{param}: {what} cannot be enforced: {_detail(messages[0] if messages else '')}", param)
    return lark


def _detail(message: str) -> str:
    """llguidance's error without its position prefix, grammar listing and parser state dump."""
    lines = []
    for line in message.split("<state>")[0].strip().split("\n"):
        line = line.strip()
        if re.match(r"^\d+ \|", line) or not line.strip("^ "):
            continue
        lines.append(line)
    text = re.sub(r"^at \d+\(\d+\): ", "", " ".join(lines))
    return re.sub(r"^failed to compile JSON schema: ", "", text) or "unknown error"


def json_schema(schema: Any, param: str = "response_format") -> str:
    """A grammar for exactly the JSON values `schema` accepts (or GrammarError). Slow for big schemas: use run()."""
    check_schema(schema, param)
    body = json.dumps(_with_options(schema), ensure_ascii=False)
    return _validate(f"%llguidance {{}}\nstart: %json {body}\n", param, "this schema")


def json_object() -> str:
    """Any JSON object (response_format json_object)."""
    return json_schema({"type": "object"})


# --- tool calls ----------------------------------------------------------------------------------
def _lit(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def tool_calls(tools: Sequence[dict], choice: str | dict = "auto", parallel: bool = True,
               content_schema: Any = None, allowed: set[str] | None = None) -> str:
    """Tool calls in `tool_format`'s shape. `tools` are OpenAI's {"type":"function","function":{...}}.

    choice "required": one or more calls (one with parallel=False, at most MAX_PARALLEL_CALLS) and nothing else; a {"type":"function",
    "function":{"name":...}} choice: exactly one call, to that function; "auto": free text (or, with
    `content_schema`, JSON that validates) OR calls, the choice made at the call marker. `allowed`
    restricts the callable functions to those names (every tool's schema is still checked).
    """
    if len(tools) > MAX_TOOLS:
        raise GrammarError(f"tools: at most {MAX_TOOLS} tools are supported.", "tools")
    named = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    if named is not None:  # forcing one function means one call to it, as OpenAI answers it (and small
        allowed, parallel = {named}, False  # models otherwise repeat the same call until max_tokens)
    rules, alts = [], []
    for i, tool in enumerate(tools):
        fn = tool.get("function") or {}
        name = fn.get("name")
        params = fn.get("parameters")
        param = f"tools[{i}].function.parameters"
        if params is None:  # OpenAI: omitted parameters means a function without arguments
            params = {"type": "object", "properties": {}, "additionalProperties": False}
        json_schema(params, param)  # attributes a schema error to its tool
        if allowed is not None and name not in allowed:
            continue
        head = tool_format.call_head(name)
        rules.append(f"fn_{i}: {_lit(head)} %json {json.dumps(_with_options(params), ensure_ascii=False)}")
        alts.append(f"fn_{i}")
    if named is not None and not alts:
        raise GrammarError(f"tool_choice names the function {named!r}, which is not among `tools`.", "tool_choice")
    call = f"call_body: ({' | '.join(alts)}) {_lit(tool_format.CALL_TAIL)}"
    more = f' ({_lit(tool_format.BETWEEN_CALLS + tool_format.CALL_OPEN)} call_body){{0,{MAX_PARALLEL_CALLS - 1}}}' \
        if parallel else ""
    lines = ["%llguidance {}", call, *rules]
    if choice == "auto":
        if content_schema is not None:
            check_schema(content_schema, "response_format")
            lines.insert(1, f"start: content | {_lit(tool_format.CALL_OPEN)} call_body{more}")
            lines.insert(2, f"content: %json {json.dumps(_with_options(content_schema), ensure_ascii=False)}")
        else:  # text without the marker, or text up to the marker and then calls
            marker = _regex_lit(tool_format.CALL_OPEN)
            lines.insert(1, f"start: TEXT | CALL_OPEN call_body{more}")
            lines += [f"TEXT: /(?s:.*)/ & ~/(?s:.*){marker}(?s:.*)/", f"CALL_OPEN: TEXT /{marker}/"]
    else:
        lines.insert(1, f"start: {_lit(tool_format.CALL_OPEN)} call_body{more}")
    return _validate("\n".join(lines) + "\n", "tools", "these tools")


def _regex_lit(text: str) -> str:
    """`text` as a literal inside /.../ (Rust regex syntax: escaping `<` would make it a word boundary)."""
    return "".join("\\" + c if c in "\\.+*?()|[]{}^$#&-~/" else c for c in text)


# --- running compilation off the event loop, with a deep stack -----------------------------------
async def run(fn: Callable[..., Any], *args: Any) -> Any:
    """Run `fn(*args)` on a fresh thread with a STACK_BYTES stack; awaitable; exceptions propagate."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def work() -> None:
        try:
            result, error = fn(*args), None
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            result, error = None, exc

        def deliver() -> None:
            if future.cancelled():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        loop.call_soon_threadsafe(deliver)

    with _stack_lock:
        old = threading.stack_size(STACK_BYTES)
        try:
            threading.Thread(target=work, name="hearth-grammar", daemon=True).start()
        finally:
            threading.stack_size(old)
    return await future


_stack_lock = threading.Lock()
