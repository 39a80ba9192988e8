"""A model whose own chat template renders tools (Qwen 2.5's way) gets its tools and tool history rendered
by that template, as transformers' apply_chat_template(tools=...) renders them; the calls it answers with
are still enforced by the grammar and parsed. The default model (no tool support) keeps the generic format.

None of the default models has such a template, so the test gives SmolLM2's weights Qwen 2.5's template
(tests/system/tool_template.py); the prompt the server built is proven by its token count, which equals that of
the template rendered here and differs from the generic rendering's."""
import json

import jinja2
import jsonschema
import pytest
from support import RunningServer
from jinja2.sandbox import ImmutableSandboxedEnvironment
from openai import OpenAI
from tool_template import QWEN25_TEMPLATE, with_chat_template

from hearth.structured import tool_format
from hearth.models.defaults import default_model_path

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30}},
                   "required": ["city"], "additionalProperties": False}}}
ASK = [{"role": "user", "content": "What is the weather like in Paris today?"}]
HISTORY = ASK + [
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "sunny", "celsius": 21}'},
]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "test/QwenStyle-GGUF/qwenstyle-Q4_1.gguf"
    path.parent.mkdir(parents=True)
    return with_chat_template(default_model_path(), path, QWEN25_TEMPLATE)


@pytest.fixture(scope="module")
def client(model_file):
    running = RunningServer("--models-dir", str(model_file.parents[2]), "--model", str(model_file),
                            "--ctx-size", "1024", "--parallel", "2")
    yield OpenAI(base_url=running.url, api_key="x", max_retries=0, timeout=600)
    running.stop()


@pytest.fixture(scope="module")
def count_tokens(model_file):
    from hearth.engine.model import Model

    model = Model(str(model_file))  # the tokenizer only (weights are mmapped, never computed with)
    yield lambda text: len(model.tokenize(text))
    model.close()


def transformers_render(messages, tools) -> str:
    """What transformers' apply_chat_template(messages, tools=tools, add_generation_prompt=True) renders."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = lambda x, **kw: json.dumps(x, ensure_ascii=False, **kw)
    msgs = []
    for m in messages:
        m = dict(m)
        if m.get("tool_calls"):
            m["tool_calls"] = [{**c, "function": {**c["function"], "arguments": json.loads(c["function"]["arguments"])}}
                               for c in m["tool_calls"]]
        m["content"] = m.get("content") or ""
        msgs.append(m)
    return env.from_string(QWEN25_TEMPLATE).render(messages=msgs, tools=tools, add_generation_prompt=True)


def generic_render(messages, tools) -> str:
    plain = tool_format.generic_messages([{**m, "content": m.get("content") or ""} for m in messages], tools)
    return transformers_render(plain, None)


def test_the_template_renders_tools_and_the_enforced_calls_parse(client, count_tokens):
    r = client.chat.completions.create(model="m", messages=ASK, tools=[WEATHER], tool_choice="required",
                                       temperature=0, max_tokens=200)
    native = transformers_render(ASK, [WEATHER])
    assert "<tools>" in native and "You are Qwen" in native
    assert r.usage.prompt_tokens == count_tokens(native) != count_tokens(generic_render(ASK, [WEATHER]))
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None and choice.message.tool_calls
    for call in choice.message.tool_calls:
        assert call.function.name == "get_weather"
        jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])


def test_the_template_renders_tool_history(client, count_tokens):
    r = client.chat.completions.create(model="m", messages=HISTORY, tools=[WEATHER], temperature=0, max_tokens=3)
    native = transformers_render(HISTORY, [WEATHER])
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>' in native
    assert "<tool_response>" in native and "<tools>" in native
    assert r.usage.prompt_tokens == count_tokens(native) != count_tokens(generic_render(HISTORY, [WEATHER]))
    # without tools to describe (tool_choice none) the history renders the same either way: the generic
    # format is this convention
    r = client.chat.completions.create(model="m", messages=HISTORY, tools=[WEATHER], tool_choice="none",
                                       temperature=0, max_tokens=2)
    assert r.usage.prompt_tokens == count_tokens(transformers_render(HISTORY, None))


def test_a_plain_chat_is_rendered_as_before(client, count_tokens):
    r = client.chat.completions.create(model="m", messages=ASK, temperature=0, max_tokens=2)
    assert r.usage.prompt_tokens == count_tokens(transformers_render(ASK, None))


def test_the_default_model_has_no_tool_template():
    assert not tool_format.renders_tools(None)
    from hearth.engine.model import Model

    model = Model(str(default_model_path()))
    try:
        assert not model.renders_tools
    finally:
        model.close()
