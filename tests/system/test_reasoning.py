"""Reasoning split out of the answer on every protocol: chat's `reasoning_content` (as llama-server and LM
Studio return it), a Responses `reasoning` item, an Anthropic `thinking` block.

SmolLM2 does not reason by itself, so the conversation shows it two earlier answers that begin with a
<think> block (it copies the form, temperature 0); a second model file, SmolLM2's weights under a
template whose generation prompt opens the block itself (as DeepSeek-R1 distills' do), covers answers
that start inside it (tests/system/tool_template.py writes the file)."""
from __future__ import annotations

import anthropic
import httpx
import pytest
from openai import OpenAI
from support import RunningServer, assert_openai, sse_events
from tool_template import with_chat_template

from hearth.models.defaults import default_model_path

SHOWN = [{"role": "user", "content": "Hi"},
         {"role": "assistant", "content": "<think>\nThe user greets me. I greet back.\n</think>\nHello!"},
         {"role": "user", "content": "Hello"},
         {"role": "assistant", "content": "<think>\nThe user greets me. I greet back.\n</think>\nHi there!"},
         {"role": "user", "content": "Hey"}]
OPENS_THINK = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
               "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n<think>\\n' }}{% endif %}")


def test_chat_reasoning_content(server):
    client = OpenAI(base_url=server, api_key="x", max_retries=0)
    message = client.chat.completions.create(model="m", messages=SHOWN, temperature=0, max_tokens=60).choices[0].message
    thought = message.model_extra["reasoning_content"]
    assert thought.startswith("The user greets me") and "<think>" not in message.content
    assert "</think>" not in message.content and message.content.strip()
    chunks = list(client.chat.completions.create(model="m", messages=SHOWN, temperature=0, max_tokens=60, stream=True))
    streamed = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for c in chunks if c.choices)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert (streamed, content) == (thought, message.content)


def test_responses_reasoning_item(server):
    body = {"model": "m", "input": SHOWN, "temperature": 0, "max_output_tokens": 60}
    r = httpx.post(f"{server}/responses", json=body, timeout=120).json()
    assert_openai("Response", r)
    kinds = [o["type"] for o in r["output"]]
    assert kinds == ["reasoning", "message"]
    assert r["output"][0]["content"][0]["text"].startswith("The user greets me")
    assert r["usage"]["output_tokens_details"]["reasoning_tokens"] > 0
    with httpx.stream("POST", f"{server}/responses", json={**body, "stream": True}, timeout=120) as s:
        events = [e for _, e in sse_events(s.iter_lines())]
    for e in events:
        assert_openai("ResponseStreamEvent", e)
    thought = "".join(e["delta"] for e in events if e["type"] == "response.reasoning_text.delta")
    assert thought == r["output"][0]["content"][0]["text"]


def test_messages_thinking_block(server):
    with anthropic.Anthropic(base_url=server.removesuffix("/v1"), api_key="x", max_retries=0) as client:
        m = client.messages.create(model="m", max_tokens=60, messages=SHOWN[:-1] + [SHOWN[-1]],
                                   extra_body={"temperature": 0})
        assert [b.type for b in m.content] == ["thinking", "text"]
        assert m.content[0].thinking.startswith("The user greets me")
        with client.messages.stream(model="m", max_tokens=60, messages=SHOWN, extra_body={"temperature": 0}) as s:
            final = s.get_final_message()
        assert final.content[0].thinking == m.content[0].thinking and final.content[1].text == m.content[1].text


@pytest.fixture(scope="module")
def opens_think(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "test/Think-GGUF/think-Q4_1.gguf"
    path.parent.mkdir(parents=True)
    with_chat_template(default_model_path(), path, OPENS_THINK)
    running = RunningServer("--models-dir", str(path.parents[2]), "--model", str(path), "--ctx-size", "1024",
                            "--parallel", "1", "--no-store")
    yield running
    running.stop()


def test_a_template_that_opens_the_block(opens_think):
    client = OpenAI(base_url=opens_think.url, api_key="x", max_retries=0)
    message = client.chat.completions.create(model="m", messages=SHOWN, temperature=0, max_tokens=60).choices[0].message
    assert message.model_extra["reasoning_content"].startswith("The user greets me")
    assert message.content.strip() and "</think>" not in message.content
    cut = client.chat.completions.create(model="m", messages=SHOWN, temperature=0, max_tokens=3).choices[0]
    assert cut.finish_reason == "length" and cut.message.content == "" and cut.message.model_extra["reasoning_content"]
