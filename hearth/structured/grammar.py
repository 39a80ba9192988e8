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

# JSON on one line, with one space after `,` and `:` ({"city": "Paris", "unit": "celsius"}, Python's
# json.dumps style, as the tool-call blocks themselves are written): no other whitespace between tokens,
# so a weak model cannot spend its budget on newlines ({"a":\n\n\n...) and a forced call takes fewer
# tokens (benchmarks/forced_calls.py, SmolLM2: median tokens per forced two-field call 43 -> 38.5, per
# three-field structured answer 28 -> 23). Fully compact separators saved ~2 tokens more but sent
# SmolLM2 astray on a json_object completion (`{", ":123456...` to max_tokens). Strings keep their text.
JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
# A free-form value (json_object, a schema that names no keys): the model chooses the keys, and forced onto
# one line SmolLM2 lost its way there too (the same `{", ":1234...`); pretty-printed it found them. So its
# layout stays free, but one line break (with its indentation) or one space at most between tokens.
FREE_JSON_OPTIONS = {"whitespace_pattern": r"(\n {0,16}| )?"}
_FIXED_SHAPE = frozenset({"properties", "$ref", "anyOf", "oneOf", "allOf", "items", "prefixItems", "enum", "const",
                          "patternProperties"})


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
        return {"x-guidance": FREE_JSON_OPTIONS} if schema else schema
    if not isinstance(schema, dict):
        return schema
    options = JSON_OPTIONS if _FIXED_SHAPE & set(schema) else FREE_JSON_OPTIONS
    return {**schema, "x-guidance": {**options, **schema.get("x-guidance", {})}}


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
    """Tool calls in `tool_format`'s shape. `tools` are chat's {"type":"function","function":{...}} and
    {"type":"custom","custom":{"name", "format"}} (free text, or text a Lark or regex grammar accepts).

    choice "required": one or more calls (one with parallel=False, at most MAX_PARALLEL_CALLS) and nothing else; a {"type":"function",
    "function":{"name":...}} choice: exactly one call, to that tool (function or custom); "auto": free text
    (or, with `content_schema`, JSON that validates) OR calls, the choice made at the call marker. `allowed`
    restricts the callable tools to those names (every tool's schema is still checked).

    With custom grammars the result is llguidance's JSON form (the main Lark grammar first, each custom
    tool's grammar after it by name, referenced as @name); otherwise Lark text.
    """
    if len(tools) > MAX_TOOLS:
        raise GrammarError(f"tools: at most {MAX_TOOLS} tools are supported.", "tools")
    named = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    if named is not None:  # forcing one function means one call to it, as OpenAI answers it (and small
        allowed, parallel = {named}, False  # models otherwise repeat the same call until max_tokens)
    rules, functions, customs, subs = [], [], [], []
    for i, tool in enumerate(tools):
        if tool_format.is_custom(tool):
            spec = tool.get("custom") or {}
            body = _custom_body(spec.get("format"), f"tools[{i}].custom.format", f"custom_{i}", subs)
            if allowed is None or spec.get("name") in allowed:
                rules.append(f"ct_{i}: {_lit(tool_format.custom_head(spec.get('name') or ''))} {body}")
                customs.append(f"ct_{i}")
            continue
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
        functions.append(f"fn_{i}")
    if named is not None and not (functions or customs):
        raise GrammarError(f"tool_choice names the tool {named!r}, which is not among `tools`.", "tool_choice")
    bodies = ([f"({' | '.join(functions)}) {_lit(tool_format.CALL_TAIL)}"] if functions else []) + customs
    call = f"call_body: {' | '.join(bodies)}"
    more = f' ({_lit(tool_format.BETWEEN_CALLS + tool_format.CALL_OPEN)} call_body){{0,{MAX_PARALLEL_CALLS - 1}}}' \
        if parallel else ""
    lines = ["%llguidance {}", call, *rules]
    if any("CUSTOM_TEXT" in r for r in rules):  # a free-text custom tool's input: anything up to the close tag
        close = _regex_lit(tool_format.CALL_CLOSE)  # (the text never holds the close tag, even without its newline)
        lines += [f"CUSTOM_BODY: /(?s:.*)/ & ~/(?s:.*){close}(?s:.*)/",
                  f"CUSTOM_TEXT: CUSTOM_BODY /{_regex_lit(tool_format.CUSTOM_TAIL)}/"]
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
    main = "\n".join(lines) + "\n"
    if subs:
        main = json.dumps({"grammars": [{"lark_grammar": main}, *({"name": n, "lark_grammar": g} for n, g in subs)]})
    return _validate(main, "tools", "these tools")


MAX_GRAMMAR_CHARS = 100_000  # a custom tool's grammar definition


def _custom_body(fmt: Any, param: str, name: str, subs: list) -> str:
    """The Lark for a custom tool's input and its close tag: free text (format absent or `text`), or
    text the tool's own Lark or regex grammar accepts (added to `subs` as (name, lark) and referenced as
    @name), checked here so that an error names the tool."""
    fmt = fmt or {"type": "text"}
    kind = fmt.get("type")
    if kind in (None, "text"):
        return "CUSTOM_TEXT"
    if kind != "grammar":
        raise GrammarError(f"{param}: a custom tool's format type must be `text` or `grammar`, not {kind!r}.", param)
    syntax, definition = fmt.get("syntax"), fmt.get("definition")
    if not isinstance(definition, str) or not definition.strip():
        raise GrammarError(f"{param}.definition: a grammar format needs its `definition`.", f"{param}.definition")
    if len(definition) > MAX_GRAMMAR_CHARS:
        raise GrammarError(f"{param}.definition: the grammar is {len(definition)} characters long; at most "
                           f"{MAX_GRAMMAR_CHARS} are supported.", f"{param}.definition")
    if syntax == "regex":
        lark = f"start: /{_slash_escaped(definition)}/\n"
    elif syntax == "lark":
        lark = definition
    else:
        raise GrammarError(f"{param}.syntax: a grammar's syntax must be `lark` or `regex`, not {syntax!r}.",
                           f"{param}.syntax")
    _validate(lark, f"{param}.definition", f"this {syntax} grammar")
    subs.append((name, lark))
    return f"@{name} {_lit(tool_format.CUSTOM_TAIL)}"


def _slash_escaped(regex: str) -> str:
    """A regex as the body of a Lark /.../ literal: its unescaped slashes escaped."""
    out, escaped = [], False
    for c in regex:
        out.append("\\/" if c == "/" and not escaped else c)
        escaped = c == "\\" and not escaped
    return "".join(out)


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
