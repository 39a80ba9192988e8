"""Every route through the official openai SDK against the real server over the real model."""
import base64
import math

import httpx
import numpy as np
import pytest
from openai import OpenAI

SYSTEM = {"role": "system", "content": "You are a concise technical assistant."}
USER = {"role": "user", "content": "What is quantization in the context of LLMs?"}


@pytest.fixture(scope="module")
def client(server):
    return OpenAI(base_url=server, api_key="lm-studio", max_retries=0, timeout=120)


def test_models_list_and_retrieve(client):
    models = client.models.list().data
    assert models[0].id == "smollm2-135m-instruct"  # the chat model first; an embedding model may follow
    assert all(m.id == "smollm2-135m-instruct" or m.id.startswith("text-embedding-") for m in models)
    assert client.models.retrieve(models[0].id).id == models[0].id


def test_seed_document_python_example(client):
    completion = client.chat.completions.create(
        model="lmstudio-community/Meta-Llama-3.1-8B-Instruct-GGUF",  # any string routes to the loaded model
        messages=[SYSTEM, USER], temperature=0.7, max_tokens=24,
    )
    choice = completion.choices[0]
    assert completion.object == "chat.completion" and completion.model == "smollm2-135m-instruct"
    assert choice.message.role == "assistant" and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length") and choice.logprobs is None
    assert completion.usage.completion_tokens <= 24 and completion.usage.prompt_tokens > 10
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_chat_stream_assembles_like_the_plain_answer(client):
    kwargs = dict(model="local-model", messages=[SYSTEM, USER], temperature=0, max_tokens=20)
    plain = client.chat.completions.create(**kwargs)
    chunks = list(client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.id == chunks[0].id and c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == [plain.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == plain.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_ends_with_done_on_the_wire(server):
    body = {"model": "m", "messages": [USER], "max_tokens": 4, "stream": True}
    with httpx.stream("POST", f"{server}/chat/completions", json=body, timeout=60) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"


def test_max_tokens_is_respected_with_finish_reason_length(client):
    r = client.completions.create(model="m", prompt="1, 2, 3, 4, 5,", max_tokens=7, temperature=0)
    assert r.usage.completion_tokens == 7 and r.choices[0].finish_reason == "length"


def test_seed_reproduces(client):
    kwargs = dict(model="m", messages=[{"role": "user", "content": "Tell me a story."}], max_tokens=24,
                  temperature=1.0, seed=1234)
    a, b = (client.chat.completions.create(**kwargs).choices[0].message.content for _ in range(2))
    assert a == b


def test_stop_string_ends_the_text_before_it(client):
    r = client.completions.create(model="m", prompt="1, 2, 3, 4, 5,", max_tokens=30, temperature=0, stop=["8"])
    assert "8" not in r.choices[0].text and r.choices[0].finish_reason == "stop"
    assert "7" in r.choices[0].text


def test_completions_plain_stream_and_echo(client):
    kwargs = dict(model="m", prompt="The capital of France is", max_tokens=8, temperature=0)
    plain = client.completions.create(**kwargs)
    assert plain.object == "text_completion" and plain.choices[0].text
    streamed = "".join(c.choices[0].text for c in client.completions.create(**kwargs, stream=True) if c.choices)
    assert streamed == plain.choices[0].text
    echoed = client.completions.create(**kwargs, echo=True)
    assert echoed.choices[0].text == kwargs["prompt"] + plain.choices[0].text


def test_several_prompts_and_n_give_choices_in_order(client):
    r = client.completions.create(model="m", prompt=["Hello", "The sky is"], max_tokens=4, temperature=0)
    assert [c.index for c in r.choices] == [0, 1]
    alone = client.completions.create(model="m", prompt="The sky is", max_tokens=4, temperature=0)
    assert r.choices[1].text == alone.choices[0].text
    chat = client.chat.completions.create(model="m", messages=[USER], max_tokens=4, n=3, seed=7)
    assert [c.index for c in chat.choices] == [0, 1, 2]


def test_embeddings_float_base64_order_and_norm(client):
    texts = ["The food was delicious.", "The waiter was friendly.", "Quantum chromodynamics."]
    floats = client.embeddings.create(model="m", input=texts)
    assert [d.index for d in floats.data] == [0, 1, 2] and floats.usage.prompt_tokens > 0
    vectors = [d.embedding for d in floats.data]
    assert all(math.isclose(np.linalg.norm(v), 1.0, rel_tol=1e-3) for v in vectors)
    assert len({len(v) for v in vectors}) == 1 and vectors[0] != vectors[1]
    raw = httpx.post(f"{client.base_url}embeddings", json={"model": "m", "input": texts, "encoding_format": "base64"})
    decoded = [np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in raw.json()["data"]]
    assert np.allclose(decoded, vectors, atol=1e-6)
    single = client.embeddings.create(model="m", input=texts[1]).data[0].embedding
    assert np.allclose(single, vectors[1], atol=1e-4)  # batch composition does not change a vector


def test_cors_preflight_and_headers(server):
    preflight = httpx.options(f"{server}/chat/completions", headers={
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,authorization"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    r = httpx.get(f"{server}/models", headers={"Origin": "http://localhost:3000"})
    assert r.headers["access-control-allow-origin"] == "*"
    error = httpx.get(f"{server}/nope", headers={"Origin": "http://localhost:3000"})
    assert error.status_code == 404 and error.headers["access-control-allow-origin"] == "*"


def test_penalties_change_a_repetitive_greedy_answer(client):
    kwargs = dict(model="m", prompt="the the the the the", max_tokens=20, temperature=0)
    plain = client.completions.create(**kwargs).choices[0].text
    penalised = client.completions.create(**kwargs, frequency_penalty=2, presence_penalty=2).choices[0].text
    assert penalised and penalised != plain
