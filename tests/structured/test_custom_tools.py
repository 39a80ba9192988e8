"""Custom tools (free text, or a Lark / regex grammar) in the tool-call grammar and parser, over SmolLM2's
real vocabulary: what the grammar admits and refuses, and how the parser streams the text back."""
import json
import re

import pytest

from hearth.structured import grammar as G
from hearth.structured import tool_format
from hearth.structured.tool_parser import CallArgs, CallStart, Content, ToolCallParser

PATCH = r"""
start: "*** Begin Patch" LF op+ "*** End Patch" LF?
op: "*** Add File: " /(.+)/ LF line+
line: "+" /(.*)/ LF -> added
%import common.LF
"""
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
    {"type": "custom", "custom": {"name": "apply_patch", "format": {"type": "grammar", "syntax": "lark",
                                                                     "definition": PATCH}}},
    {"type": "custom", "custom": {"name": "ticket", "format": {"type": "grammar", "syntax": "regex",
                                                                "definition": r"T-[0-9]{2}/[a-z]+"}}},
    {"type": "custom", "custom": {"name": "note", "description": "free text"}},
]
VALID_PATCH = "*** Begin Patch\n*** Add File: a.txt\n+hello\n*** End Patch\n"


def feed(grammars, model, lark: str, text: str):
    """(every token allowed and accepted, the grammar then accepting)."""
    c = grammars.compile(lark, "tools")
    for tok in model.tokenize(text, add_special=False):
        if not c.allows(tok) or not c.accept(tok):
            return False, False
    return True, c.accepting


def call(name: str, text: str) -> str:
    return tool_format.render_custom_call(name, text)


@pytest.mark.parametrize("choice", ["required", "auto"])
def test_a_custom_call_is_held_to_its_grammar(grammars, model, choice):
    lark = G.tool_calls(TOOLS, choice)
    assert feed(grammars, model, lark, call("apply_patch", VALID_PATCH)) == (True, True)
    assert feed(grammars, model, lark, call("apply_patch", VALID_PATCH.rstrip("\n"))) == (True, True)  # LF?
    for broken in ("*** Begin Patch\n*** End Patch\n", "*** Begin Patch\n*** Add File: a.txt\nhello\n*** End Patch\n",
                   "Begin Patch\n"):
        assert feed(grammars, model, lark, call("apply_patch", broken))[0] is False, broken
    assert feed(grammars, model, lark, call("ticket", "T-12/abc")) == (True, True)
    assert feed(grammars, model, lark, call("ticket", "T-1/abc"))[0] is False
    assert feed(grammars, model, lark, call("note", "anything at all\n<b>even tags</b>")) == (True, True)
    assert feed(grammars, model, lark, call("note", "no </tool_call> inside"))[0] is False
    both = tool_format.render_call("get_weather", '{"city": "Paris"}') + "\n" + call("ticket", "T-99/x")
    assert feed(grammars, model, lark, both) == (True, True)


def test_a_named_custom_tool_allows_only_it(grammars, model):
    lark = G.tool_calls(TOOLS, {"type": "function", "function": {"name": "ticket"}})
    assert feed(grammars, model, lark, call("ticket", "T-12/abc")) == (True, True)
    assert feed(grammars, model, lark, call("note", "x"))[0] is False
    assert feed(grammars, model, lark, call("ticket", "T-12/abc") + "\n" + call("ticket", "T-13/abc"))[0] is False


@pytest.mark.parametrize("fmt, param", [
    ({"type": "grammar", "syntax": "lark", "definition": "start: nowhere"}, "tools[0].custom.format.definition"),
    ({"type": "grammar", "syntax": "regex", "definition": "(unclosed"}, "tools[0].custom.format.definition"),
    ({"type": "grammar", "syntax": "ebnf", "definition": "x"}, "tools[0].custom.format.syntax"),
    ({"type": "grammar", "syntax": "lark"}, "tools[0].custom.format.definition"),
    ({"type": "xml"}, "tools[0].custom.format"),
])
def test_grammars_that_cannot_be_enforced_name_the_tool(fmt, param):
    with pytest.raises(G.GrammarError) as e:
        G.tool_calls([{"type": "custom", "custom": {"name": "c", "format": fmt}}], "required")
    assert e.value.param == param


def parse_in_pieces(text: str, size: int) -> list:
    p = ToolCallParser()
    events = []
    for i in range(0, len(text), size):
        events += p.feed(text[i:i + size])
    return events + p.finish()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_parser_streams_a_custom_call_in_any_split(size):
    text = "Let me patch.\n" + call("apply_patch", VALID_PATCH) + "\n" + tool_format.render_call(
        "get_weather", '{"city": "Paris"}') + "\n" + call("note", "ends with a newline\n")
    events = parse_in_pieces(text, size)
    content = "".join(e.text for e in events if isinstance(e, Content))
    starts = [e for e in events if isinstance(e, CallStart)]
    args = {}
    for e in events:
        if isinstance(e, CallArgs):
            args[e.index] = args.get(e.index, "") + e.text
    assert content == "Let me patch.\n"
    assert [s.name for s in starts] == ["apply_patch", "get_weather", "note"]
    assert args[0] == VALID_PATCH and json.loads(args[1]) == {"city": "Paris"} and args[2] == "ends with a newline\n"


def test_a_verbatim_repeat_of_a_custom_call_ends_the_answer():
    text = call("ticket", "T-12/ab") + "\n" + call("ticket", "T-12/ab") + "\n" + call("ticket", "T-13/ab")
    p = ToolCallParser()
    events = p.feed(text) + p.finish()
    assert p.done and [c.arguments for c in p.calls] == ["T-12/ab"]
    assert sum(isinstance(e, CallStart) for e in events) == 1


def test_custom_tools_are_described_with_their_form():
    messages = tool_format.generic_messages([{"role": "user", "content": "hi"}], TOOLS)
    system = messages[0]["content"]
    assert '"type": "custom"' in system and '{"name": <custom-tool-name>}' in system
    history = tool_format.generic_messages([
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "custom", "custom": {"name": "ticket", "input": "T-12/ab"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "opened"}], None)
    assert history[1]["content"] == call("ticket", "T-12/ab")
    assert re.search(r"<tool_response>\nopened\n</tool_response>", history[2]["content"])
