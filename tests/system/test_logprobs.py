"""logprobs, top_logprobs and logit_bias through the openai SDK, against the real server and model:
the tokens spell the content exactly (plain and streamed, chat and completions), values are ordered
log-probabilities, logit_bias forces and bans, and bad values get a 422 naming the parameter."""
import httpx
import pytest
from openai import OpenAI

UNICODE = [{"role": "user", "content": "Écris une phrase en français, puis: 日本語 🙂"}]


@pytest.fixture(scope="module")
def client(server):
    return OpenAI(base_url=server, api_key="lm-studio", max_retries=0, timeout=120)


def spelled(content_logprobs) -> str:
    """What the tokens' bytes spell (a character cut by max_tokens reads as U+FFFD, as in the content)."""
    return b"".join(bytes(t.bytes) for t in content_logprobs).decode("utf-8", errors="replace")


@pytest.mark.parametrize("kwargs", [
    dict(temperature=0, max_tokens=40),
    dict(temperature=0.9, seed=3, max_tokens=40),
    dict(temperature=0, max_tokens=40, stop=["."]),
], ids=["greedy", "seeded", "stop"])
def test_chat_logprobs_spell_the_content_plain_and_streamed(client, kwargs):
    plain = client.chat.completions.create(model="m", messages=UNICODE, logprobs=True, top_logprobs=3, **kwargs)
    choice = plain.choices[0]
    content = choice.message.content
    assert any(ord(c) > 127 for c in content), content
    lp = choice.logprobs.content
    assert spelled(lp) == content
    assert len(lp) == plain.usage.completion_tokens
    assert all(t.token == bytes(t.bytes).decode() for t in lp if _utf8(t.bytes))
    for t in lp:
        assert t.logprob <= 0 and len(t.top_logprobs) == 3
        values = [a.logprob for a in t.top_logprobs]
        assert values == sorted(values, reverse=True)
        if kwargs["temperature"] == 0:
            assert t.top_logprobs[0].token == t.token and t.top_logprobs[0].logprob == t.logprob

    chunks = list(client.chat.completions.create(model="m", messages=UNICODE, logprobs=True, top_logprobs=3,
                                                 stream=True, **kwargs))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    streamed = [t for c in chunks if c.choices[0].logprobs for t in c.choices[0].logprobs.content]
    assert text == content
    assert spelled(streamed) == content
    assert [(t.token, t.logprob) for t in streamed] == [(t.token, t.logprob) for t in lp]
    for c in chunks:  # each chunk's tokens spell that chunk's content
        if c.choices[0].logprobs:
            assert spelled(c.choices[0].logprobs.content) == (c.choices[0].delta.content or "")


def _utf8(b) -> bool:
    try:
        bytes(b).decode()
        return True
    except UnicodeDecodeError:
        return False


def test_chat_without_logprobs_has_null_logprobs_and_a_string_fingerprint(client):
    r = client.chat.completions.create(model="m", messages=UNICODE, max_tokens=4)
    assert r.choices[0].logprobs is None
    assert isinstance(r.system_fingerprint, str) and r.system_fingerprint.startswith("fp_")
    chunks = list(client.chat.completions.create(model="m", messages=UNICODE, max_tokens=4, stream=True))
    assert all(c.system_fingerprint == r.system_fingerprint for c in chunks)
    assert all(c.choices[0].logprobs is None for c in chunks)


def test_completions_top_logprobs_always_hold_the_chosen_token(client):
    lp = client.completions.create(model="m", prompt="Once upon a time", max_tokens=8, temperature=1.5, seed=4,
                                   logprobs=0).choices[0].logprobs
    assert all(top == {tok: v} for tok, v, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs))
    lp = client.completions.create(model="m", prompt="Once upon a time", max_tokens=8, temperature=1.5, seed=4,
                                   logprobs=1).choices[0].logprobs
    assert all(top[tok] == v and len(top) in (1, 2) for tok, v, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs))


def test_top_logprobs_zero_gives_the_chosen_tokens_only(client):
    r = client.chat.completions.create(model="m", messages=UNICODE, max_tokens=6, temperature=0,
                                       logprobs=True, top_logprobs=0)
    lp = r.choices[0].logprobs.content
    assert len(lp) == r.usage.completion_tokens and all(t.top_logprobs == [] for t in lp)


@pytest.mark.parametrize("stream", [False, True])
def test_completions_logprobs_spell_the_text(client, stream):
    kwargs = dict(model="m", prompt="Le café coûte 3 €. 日本語:", max_tokens=24, temperature=0, logprobs=5)
    if stream:
        chunks = list(client.completions.create(stream=True, **kwargs))
        text = "".join(c.choices[0].text for c in chunks)
        tokens = [t for c in chunks if c.choices[0].logprobs for t in c.choices[0].logprobs.tokens]
        values = [v for c in chunks if c.choices[0].logprobs for v in c.choices[0].logprobs.token_logprobs]
        tops = [d for c in chunks if c.choices[0].logprobs for d in c.choices[0].logprobs.top_logprobs]
        offsets = [o for c in chunks if c.choices[0].logprobs for o in c.choices[0].logprobs.text_offset]
    else:
        r = client.completions.create(**kwargs)
        text, lp = r.choices[0].text, r.choices[0].logprobs
        tokens, values, tops, offsets = lp.tokens, lp.token_logprobs, lp.top_logprobs, lp.text_offset
        assert len(tokens) == r.usage.completion_tokens
    assert len(tokens) == len(values) == len(tops) == len(offsets) > 0
    if not any(t.startswith("bytes:") for t in tokens):
        assert "".join(tokens) == text
    for tok, off in zip(tokens, offsets):
        if not tok.startswith("bytes:"):
            assert text[off:off + len(tok)] == tok
    assert offsets == sorted(offsets) and offsets[0] == 0
    for tok, v, top in zip(tokens, values, tops):
        assert len(top) <= 5 and max(top.values()) == v and top[tok] == v  # greedy: the chosen is the most likely


@pytest.fixture(scope="module")
def tokenize():
    """The model's own tokenizer, in this process (the weights are mmapped, never computed with)."""
    from hearth.engine.model import Model
    from hearth.models.defaults import default_model_path

    model = Model(str(default_model_path()))
    yield lambda text: model.tokenize(text, add_special=False)
    model.close()


def test_logit_bias_forces_and_bans_a_token(client, tokenize):
    base = dict(model="m", prompt="The capital of France is", max_tokens=3, temperature=0, logprobs=0)
    first = client.completions.create(**base).choices[0].logprobs.tokens[0]
    [first_id] = tokenize(first)
    banned = client.completions.create(**base, logit_bias={str(first_id): -100}).choices[0].logprobs.tokens
    assert banned[0] != first
    [banana] = tokenize(" banana")
    forced = client.completions.create(**base, logit_bias={str(banana): 100}).choices[0].logprobs
    assert forced.tokens == [" banana"] * 3
    assert all(v < 0 for v in forced.token_logprobs)  # the model's own logprobs, before the bias
    chat = client.chat.completions.create(model="m", messages=UNICODE, max_tokens=2, temperature=0,
                                          logit_bias={str(banana): 100})
    assert chat.choices[0].message.content == " banana banana"


@pytest.mark.parametrize("path,body,param", [
    ("/chat/completions", {"messages": UNICODE, "logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ("/chat/completions", {"messages": UNICODE, "top_logprobs": 2}, "top_logprobs"),
    ("/chat/completions", {"messages": UNICODE, "logit_bias": {"99999999": 1}}, "logit_bias"),
    ("/chat/completions", {"messages": UNICODE, "logit_bias": {"-1": 1}}, "logit_bias"),
    ("/chat/completions", {"messages": UNICODE, "logit_bias": {"abc": 1}}, "logit_bias"),
    ("/completions", {"prompt": "a", "logprobs": 6}, "logprobs"),
    ("/completions", {"prompt": "a", "logit_bias": {"5": 101}}, None),
])
def test_bad_logprobs_and_logit_bias_get_a_422_naming_the_param(server, path, body, param):
    r = httpx.post(f"{server}{path}", json={"model": "m", "max_tokens": 2, **body}, timeout=60)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param or (param is None and error["param"].startswith("logit_bias"))


def test_openai_only_fields_are_accepted_and_ignored(server):
    body = {"model": "m", "messages": UNICODE, "max_tokens": 2, "user": "u-1", "metadata": {"k": "v"},
            "store": False, "service_tier": "auto", "parallel_tool_calls": True}
    r = httpx.post(f"{server}/chat/completions", json=body, timeout=60)
    assert r.status_code == 200, r.text
