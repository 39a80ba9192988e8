"""The prompt's own logprobs: /v1/completions with echo and logprobs, over the real server and model.

This is what lm-evaluation-harness's loglikelihood sends to OpenAI-compatible servers (echo=True,
logprobs=N, max_tokens 0 or 1, temperature 0), then it sums token_logprobs[ctxlen:-1]. The values must
be the model's: each prompt token's logprob given the tokens before it, checked here against what the
same model reports when it generates that token after the prompt's prefix."""
import math

import httpx
import pytest
from openai import OpenAI

PROMPT = "The capital of France is Paris. The capital of Italy is Rome. The capital of Spain is"
# more than one CHUNK (32) of tokens, so that a cached prefix of it could be reused
LONG = ("Question: which planet is known as the red planet, and why does it look red from Earth? "
        "Answer: Mars, because iron minerals in its dust and rocks oxidise, or rust, and the rust is red. ") * 2


@pytest.fixture(scope="module")
def client(server):
    return OpenAI(base_url=server, api_key="lm-studio", max_retries=0, timeout=600)


def echo(client, prompt, **kwargs):
    kwargs = {"max_tokens": 0, "logprobs": 3, "temperature": 0, **kwargs}
    return client.completions.create(model="m", prompt=prompt, echo=True, **kwargs)


def test_max_tokens_0_scores_the_prompt(client):
    r = echo(client, PROMPT)
    choice = r.choices[0]
    lp = choice.logprobs
    assert choice.text == PROMPT and choice.finish_reason == "length"
    assert r.usage.completion_tokens == 0 and len(lp.tokens) == r.usage.prompt_tokens > 10
    assert "".join(lp.tokens) == PROMPT
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None  # as OpenAI sends them
    for tok, off in zip(lp.tokens, lp.text_offset):
        assert PROMPT[off:off + len(tok)] == tok
    for tok, value, top in zip(lp.tokens[1:], lp.token_logprobs[1:], lp.top_logprobs[1:]):
        assert value <= 0 and top[tok] == value and len(top) in (3, 4)
        assert max(top.values()) >= value
    # the model knows what it has just read: "Paris" after "The capital of France is" is likely
    paris = lp.tokens.index(" Paris")
    assert lp.token_logprobs[paris] > math.log(0.2)


def test_prompt_logprobs_are_the_models_next_token_logprobs(client):
    """The logprob the echo gives token k equals the logprob the model gives it when generating after
    tokens 0..k-1 (lm-evaluation-harness relies on exactly this)."""
    lp = echo(client, PROMPT).choices[0].logprobs
    for k in (3, 8, len(lp.tokens) - 1):
        prefix = "".join(lp.tokens[:k])
        gen = client.completions.create(model="m", prompt=prefix, max_tokens=1, temperature=0, logprobs=5)
        top = gen.choices[0].logprobs.top_logprobs[0]
        if lp.tokens[k] in top:
            assert top[lp.tokens[k]] == pytest.approx(lp.token_logprobs[k], abs=2e-3)
        else:  # not among the 5 most likely: less likely than all of them
            assert lp.token_logprobs[k] < min(top.values()) + 2e-3


def test_the_harness_request_shape(client):
    """max_tokens 1, logprobs 1: the prompt's tokens, then the generated one; the continuation's logprob
    is the sum over its tokens, and is_greedy compares each with its top alternative."""
    context, continuation = "The capital of France is", " Paris"
    r = echo(client, context + continuation, max_tokens=1, logprobs=1, seed=1234)
    lp = r.choices[0].logprobs
    ctxlen = len(echo(client, context).choices[0].logprobs.tokens)
    assert len(lp.tokens) == r.usage.prompt_tokens + 1 and r.choices[0].text.startswith(context + continuation)
    scored = lp.token_logprobs[ctxlen:-1]
    assert len(scored) == 1 and scored[0] < 0
    is_greedy = all(v == max(top.values()) for v, top in zip(scored, lp.top_logprobs[ctxlen:-1]))
    assert is_greedy  # SmolLM2 does complete this with " Paris"


def test_a_cached_prefix_does_not_change_the_prompt_logprobs(client):
    fresh = echo(client, LONG).choices[0].logprobs.token_logprobs
    client.completions.create(model="m", prompt=LONG + " More:", max_tokens=1)  # caches LONG's prefix
    again = echo(client, LONG).choices[0].logprobs.token_logprobs
    assert len(fresh) > 64 and again == fresh


def test_streamed_echo_leads_with_the_prompt_and_its_logprobs(client):
    plain = echo(client, [PROMPT, "One, two,"], max_tokens=3, logprobs=1)
    chunks = list(echo(client, [PROMPT, "One, two,"], max_tokens=3, logprobs=1, stream=True))
    for i in (0, 1):
        mine = [c.choices[0] for c in chunks if c.choices and c.choices[0].index == i]
        assert mine[0].text == plain.choices[i].text[: len(mine[0].text)] and mine[0].text.startswith(("The", "One"))
        assert mine[0].logprobs.token_logprobs[0] is None
        text = "".join(c.text for c in mine)
        tokens = [t for c in mine for t in c.logprobs.tokens]
        values = [v for c in mine for v in c.logprobs.token_logprobs]
        offsets = [o for c in mine for o in c.logprobs.text_offset]
        assert text == plain.choices[i].text
        assert tokens == plain.choices[i].logprobs.tokens and offsets == plain.choices[i].logprobs.text_offset
        assert values == plain.choices[i].logprobs.token_logprobs
        assert [c.finish_reason for c in mine if c.finish_reason] == ["length"]


def test_max_tokens_0_without_logprobs_and_chat_still_refuses_it(server):
    r = httpx.post(f"{server}/completions", json={"model": "m", "prompt": "Hi there", "max_tokens": 0}, timeout=60)
    assert r.status_code == 200 and r.json()["choices"][0]["text"] == "", r.text
    assert r.json()["usage"]["completion_tokens"] == 0
    r = httpx.post(f"{server}/chat/completions", timeout=60,
                   json={"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 0})
    assert r.status_code == 422 and r.json()["error"]["param"] == "max_tokens"
