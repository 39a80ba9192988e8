"""The tool-call parser: any split of the text gives the same calls, content and deltas in order."""
import json
import random

import pytest

from hearth.structured import tool_format
from hearth.structured.tool_parser import CallArgs, CallStart, Content, ToolCallParser

CALL_A = tool_format.render_call("get_weather", '{"city": "Paris \\"}\\" </tool_call>", "days": [1, {"a": 2}]}')
CALL_B = tool_format.render_call("now", "{}")


def run(text: str, cuts: list[int]):
    p = ToolCallParser()
    events, last = [], 0
    for c in sorted(cuts) + [len(text)]:
        events += p.feed(text[last:c])
        last = c
    events += p.finish()
    return p, events


def summary(events):
    content = "".join(e.text for e in events if isinstance(e, Content))
    starts = [(e.index, e.name) for e in events if isinstance(e, CallStart)]
    args: dict[int, str] = {}
    for e in events:
        if isinstance(e, CallArgs):
            args[e.index] = args.get(e.index, "") + e.text
    return content, starts, args


@pytest.mark.parametrize("text, content, names", [
    (CALL_A, "", ["get_weather"]),
    (CALL_A + "\n" + CALL_B, "", ["get_weather", "now"]),
    ("Let me check.\n" + CALL_B, "Let me check.\n", ["now"]),
    ("No tools needed: 2 < 3 and <tool> is not a call.", "No tools needed: 2 < 3 and <tool> is not a call.", []),
    ("<tool_call> not json at all", "<tool_call> not json at all", []),
    ("Hi " + CALL_B[:18], "Hi ", []),  # cut by max_tokens before the name: no call, no marker in the content
])
def test_every_split_gives_the_same_answer(text, content, names):
    rng = random.Random(7)
    expected = None
    for trial in range(200):
        cuts = [] if trial == 0 else [rng.randrange(len(text) + 1) for _ in range(rng.randrange(1, 12))]
        if trial == 1:
            cuts = list(range(len(text)))  # one character at a time
        p, events = run(text, cuts)
        got = summary(events)
        assert got[0] == content
        assert [n for _, n in got[1]] == names
        assert p.content == content and [c.name for c in p.calls] == names
        for i, c in enumerate(p.calls):
            assert got[2].get(i, "") == c.arguments
            json.loads(c.arguments)
        # a call's start precedes its argument fragments
        seen = set()
        for e in events:
            if isinstance(e, CallStart):
                seen.add(e.index)
            if isinstance(e, CallArgs):
                assert e.index in seen
        expected = expected or got[2]
        assert got[2] == expected


def test_arguments_are_the_models_json_text():
    p, _ = run(CALL_A, [])
    assert json.loads(p.calls[0].arguments) == {"city": 'Paris "}" </tool_call>', "days": [1, {"a": 2}]}
    assert p.calls[0].id.startswith("call_") and len(p.calls[0].id) == 29
    assert p.calls[0].id != ToolCallParser().feed(CALL_A)[0].id


def test_an_unfinished_call_keeps_what_it_streamed():
    text = CALL_A[: CALL_A.index("Paris")]
    p, events = run(text, [5, 30])
    assert [c.name for c in p.calls] == ["get_weather"]
    assert p.calls[0].arguments == '{"city": "'
    assert p.content == ""


def test_first_delta_of_a_call_has_its_name_and_no_arguments_yet():
    p = ToolCallParser()
    events = p.feed(CALL_B[: CALL_B.index('"arguments": ') + len('"arguments": ')])
    assert events == [CallStart(0, p.calls[0].id, "now")]


CALL_C = tool_format.render_call("get_weather", '{"city": "Paris", "unit": "fahrenheit"}')
CALL_D = tool_format.render_call("get_weather", '{"city": "Paris", "unit": "celsius"}')


@pytest.mark.parametrize("cuts", [[], "each"])
def test_a_verbatim_repeat_of_an_earlier_call_ends_the_answer_unreported(cuts):
    text = CALL_D + "\n" + CALL_C + "\n" + CALL_D + "\n" + CALL_B
    p, events = run(text, list(range(len(text))) if cuts == "each" else [])
    assert p.done
    content, starts, args = summary(events)
    assert content == "" and [n for _, n in starts] == ["get_weather", "get_weather"]
    assert [json.loads(args[i])["unit"] for i in (0, 1)] == ["celsius", "fahrenheit"]
    assert [c.name for c in p.calls] == ["get_weather", "get_weather"]
    assert p.feed(CALL_B) == []  # nothing more is read


def test_a_call_that_could_be_a_repeat_is_held_back_then_sent_whole():
    p = ToolCallParser()
    p.feed(CALL_D + "\n")
    head = CALL_D[: CALL_D.index('"celsius"') + 3]  # same name, arguments so far a prefix of the first call's
    assert p.feed(head) == []
    events = p.feed('h')  # "ceh...": no longer the first call
    assert [type(e) for e in events] == [CallStart, CallArgs]
    assert events[0].index == 1 and events[1].text == '{"city": "Paris", "unit": "ceh'
    assert not p.done


def test_a_possible_repeat_cut_by_max_tokens_is_not_reported():
    p, events = run(CALL_D + "\n" + CALL_D[:-20], [])
    assert not p.done and [c.name for c in p.calls] == ["get_weather"]
    assert sum(isinstance(e, CallStart) for e in events) == 1
