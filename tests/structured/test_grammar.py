"""Schemas and tool lists -> grammars over SmolLM2's real vocabulary: what they admit, what they refuse.

The random walks are the enforcement proof without a model: tokens drawn at random from the mask,
until the grammar completes, always spell a value that validates."""
import json
import random

import jsonschema
import numpy as np
import pytest

from hearth.structured import grammar as G
from hearth.structured import tool_format
from hearth.structured.tool_parser import ToolCallParser

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "email": {"type": "string", "format": "email"},
        "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3},
        "kind": {"anyOf": [{"const": "x"}, {"type": "null"}]},
    },
    "required": ["name", "age", "tags"],
    "additionalProperties": False,
}
TREE = {"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"}, "kids": {
    "type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}}, "required": ["v"],
    "additionalProperties": False}}, "$ref": "#/$defs/node"}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string", "maxLength": 12},
                                         "unit": {"enum": ["C", "F"]}},
        "required": ["city", "unit"], "additionalProperties": False}}},
    {"type": "function", "function": {"name": "now"}},
]


def walk(grammars, model, lark, seed, max_tokens=300, eos_bias=0.3):
    """Random allowed tokens until the grammar is done (or max_tokens): returns (text, completed)."""
    c = grammars.compile(lark, "test")
    rng = random.Random(seed)
    out = b""
    for _ in range(max_tokens):
        if c.done:
            return out.decode(), True
        words = c._compute()
        assert words.any() and not c.failed
        eos = [t for t in grammars.eog if c.allows(t)]
        if eos and rng.random() < eos_bias:
            return out.decode(), True
        bits = np.unpackbits(words.view(np.uint8), bitorder="little")[: grammars.n_vocab]
        if int(bits.sum()) > 2000:  # a dense mask (inside a string): draw ids until one is allowed
            sample = []
            while len(sample) < 8:
                t = rng.randrange(grammars.n_vocab)
                if bits[t] and t not in grammars.eog:
                    sample.append(t)
        else:
            allowed = np.flatnonzero(bits).tolist()
            sample = rng.sample(allowed, min(len(allowed), 64))
            sample = [t for t in sample if t not in grammars.eog] or eos
        # prefer short tokens so walks finish
        tok = min(sample[:8], key=lambda t: len(model.piece(t))) if rng.random() < 0.7 else rng.choice(sample)
        if tok in grammars.eog:
            return out.decode(), True
        assert c.allows(tok)
        assert c.accept(tok), c.failed
        out += model.piece(tok)
    return out.decode(errors="replace"), False


@pytest.mark.parametrize("schema", [PERSON, TREE, {"type": "object"}, {"type": "array", "items": {"type": "number"}},
                                    {"type": "string", "pattern": "^[a-z]{2,5}-[0-9]+$"}])
def test_random_walks_through_a_schema_always_validate(grammars, model, schema):
    lark = G.json_schema(schema)
    completed = 0
    for seed in range(12):
        text, done = walk(grammars, model, lark, seed, max_tokens=1000)
        if done:
            completed += 1
            jsonschema.validate(json.loads(text), schema)
    assert completed >= 3  # the walk prefers short tokens, so many complete


@pytest.mark.parametrize("choice, parallel", [("required", True), ("required", False),
                                              ({"type": "function", "function": {"name": "get_weather"}}, True)])
def test_random_walks_through_forced_tool_calls_are_valid_calls(grammars, model, choice, parallel):
    lark = G.tool_calls(TOOLS, choice, parallel)
    by_name = {t["function"]["name"]: t["function"].get("parameters") or {"type": "object"} for t in TOOLS}
    for seed in range(10):
        text, done = walk(grammars, model, lark, seed, max_tokens=400)
        if not done:
            continue
        p = ToolCallParser()
        p.feed(text)
        p.finish()
        assert p.calls and p.content == ""
        assert len(p.calls) == 1 or parallel
        for call in p.calls:
            assert call.name in by_name
            if isinstance(choice, dict):
                assert call.name == "get_weather"
            jsonschema.validate(json.loads(call.arguments), by_name[call.name])


def test_auto_admits_text_or_calls_but_no_malformed_call(grammars, model):
    lark = G.tool_calls(TOOLS, "auto", True)
    c = grammars.compile(lark, "tools")
    text = "I will check. <tool_call>\nnot a call"
    ok = True
    for tok in model.tokenize(text, add_special=False):
        if not c.allows(tok):
            ok = False
            break
        c.accept(tok)
    assert not ok
    c = grammars.compile(lark, "tools")
    for tok in model.tokenize("Just text, no marker.", add_special=False):
        assert c.allows(tok)
        c.accept(tok)
    assert c.accepting


def test_json_object_refuses_other_roots(grammars, model):
    c = grammars.compile(G.json_object(), "response_format")
    assert not c.allows(model.tokenize("[", add_special=False)[0])
    assert c.allows(model.tokenize("{", add_special=False)[0])


def test_mask_sets_exactly_the_forbidden_logits_to_minus_infinity(grammars, model):
    c = grammars.compile(G.json_schema({"enum": ["yes", "no"]}), "response_format")
    logits = np.random.default_rng(0).standard_normal(grammars.n_vocab).astype(np.float32)
    before = logits.copy()
    c.mask(logits)
    allowed = [t for t in range(grammars.n_vocab) if c.allows(t)]
    assert 0 < len(allowed) < 100
    assert np.isfinite(logits).sum() == len(allowed)
    assert np.array_equal(logits[allowed], before[allowed])


def test_named_choice_must_name_a_given_tool():
    with pytest.raises(G.GrammarError) as e:
        G.tool_calls(TOOLS, {"type": "function", "function": {"name": "nope"}})
    assert e.value.param == "tool_choice"


def test_a_bad_tool_schema_names_its_tool():
    tools = TOOLS + [{"type": "function", "function": {"name": "x", "parameters": {
        "type": "object", "properties": {"a": {"type": "array", "uniqueItems": True}}}}}]
    with pytest.raises(G.GrammarError) as e:
        G.tool_calls(tools, "auto")
    assert e.value.param == "tools[2].function.parameters"
    assert "uniqueItems" in e.value.message


def test_tool_format_round_trip():
    msgs = [{"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18 C"},
            {"role": "tool", "tool_call_id": "call_2", "content": "noon"}]
    out = tool_format.generic_messages(msgs, TOOLS)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert '"name": "get_weather"' in out[0]["content"] and "<tools>" in out[0]["content"]
    p = ToolCallParser()
    p.feed(out[2]["content"])
    p.finish()
    assert [c.name for c in p.calls] == ["get_weather", "now"]
    assert out[3]["content"].count("<tool_response>") == 2


def test_objects_that_do_not_say_get_no_invented_keys(grammars, model):
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "object", "properties": {
        "c": {"type": "string"}}}}, "required": ["a"]}
    c = grammars.compile(G.json_schema(schema), "response_format")
    for tok in model.tokenize('{"a": 1, "b": {"c": "x"}}', add_special=False):
        assert c.allows(tok)
        c.accept(tok)
    assert c.accepting
    for text in ('{"a": 1, "zz"', '{"a": 1, "b": {"c": "x", "d"'):
        c = grammars.compile(G.json_schema(schema), "response_format")
        toks = model.tokenize(text, add_special=False)
        assert not all(c.allows(t) and c.accept(t) for t in toks)
    # said explicitly, or a free-form object: extra keys stay allowed
    for open_schema in ({**schema, "additionalProperties": True}, {"type": "object"}):
        c = grammars.compile(G.json_schema(open_schema), "response_format")
        assert all(c.allows(t) and c.accept(t) for t in model.tokenize('{"a": 1, "zz": 2', add_special=False))


def test_json_is_on_one_line(grammars, model):
    """JSON in one style, one space after `,` and `:` and no other whitespace between tokens; strings keep theirs."""
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "array", "items": {
        "type": "integer"}}}, "required": ["a", "b"], "additionalProperties": False}
    for text, ok in (('{"a": "x y\\n", "b": [1, 2]}', True), ('{"a":"x"', False), ('{"a": "x", "b": [1,2]', False),
                     ('{\n"a"', False), ('{"a":  "x"', False)):
        c = grammars.compile(G.json_schema(schema), "response_format")
        assert all(c.allows(t) and c.accept(t) for t in model.tokenize(text, add_special=False)) is ok, text


def test_parallel_calls_are_bounded(grammars, model):
    lark = G.tool_calls(TOOLS, "required", True)
    call = tool_format.render_call("now", "{}")
    c = grammars.compile(lark, "tools")
    tokens = model.tokenize("\n".join([call] * G.MAX_PARALLEL_CALLS), add_special=False)
    for tok in tokens:
        assert c.allows(tok)
        c.accept(tok)
    assert c.accepting
    assert not any(c.allows(t) for t in model.tokenize("\n<tool_call>", add_special=False)[:1])


def test_a_free_form_object_keeps_its_layout_but_no_blank_lines(grammars, model):
    """json_object (keys not fixed by a schema): pretty-printed is fine, one line break at a time."""
    for text, ok in (('{\n  "a": 1,\n  "b": [1, 2]\n}', True), ('{"a": 1}', True), ('{\n\n  "a": 1', False)):
        c = grammars.compile(G.json_object(), "response_format")
        assert all(c.allows(t) and c.accept(t) for t in model.tokenize(text, add_special=False)) is ok, text
