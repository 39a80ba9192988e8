"""Tokens out of the engine with the real model: they spell the text, their logprobs are the model's
own, logit_bias forces and bans, and a constraint plugs into sampling without changing free output."""
import asyncio
import math

import llama_cpp as L
import numpy as np
import pytest

from hearth.engine import InvalidRequest, Prompt, SamplingParams
from hearth.engine.model import Model
from hearth.models.defaults import default_model_path

from support import chat, collect, greedy, run

PROMPT = chat("Écris une phrase en français, puis: 日本語 🙂")


def tokens_of(gen):
    return [t for d in gen.deltas for t in d.tokens]


def spell(tokens) -> str:
    """The text the tokens' bytes spell (a character cut by max_tokens reads as U+FFFD, as in the text)."""
    return b"".join(t.piece for t in tokens).decode("utf-8", errors="replace")


def assert_spells(text, gen):
    toks = tokens_of(gen)
    assert spell(toks) == text
    for d in gen.deltas:  # each Delta on its own, too
        assert spell(d.tokens) == d.text
    assert gen.completion_tokens == len(toks)


@pytest.mark.parametrize("params", [
    greedy(40, logprobs=3),
    SamplingParams(temperature=0.9, max_tokens=48, seed=3, logprobs=0),
    SamplingParams(temperature=0.9, max_tokens=48, seed=3),  # tokens flow without logprobs too
], ids=["greedy", "seeded", "no-logprobs"])
def test_tokens_spell_the_text_exactly(engine, params):
    text, _, gen = run(collect(engine, PROMPT, params))
    assert text and any(ord(c) > 127 for c in text), text  # multi-byte characters were generated
    assert_spells(text, gen)
    lps = [t.logprob for t in tokens_of(gen)]
    assert all((x is None) == (params.logprobs is None) for x in lps)
    assert all(x <= 0 for x in lps if x is not None)


def test_tokens_spell_the_text_when_a_stop_string_cuts_a_token(engine):
    p = Prompt(text="The days of the week are Monday, Tuesday, Wednesday,")
    full = run(collect(engine, p, greedy(16)))[0]
    assert "Friday" in full, full
    for stop in ("Friday", "riday", "Thursday, F"):  # at a token boundary, inside a token, across tokens
        text, _, gen = run(collect(engine, p, greedy(16, stop=(stop,), logprobs=1)))
        assert gen.finish_reason == "stop" and text == full[: full.index(stop)]
        assert_spells(text, gen)


def test_top_logprobs_are_ordered_and_greedy_picks_the_first(engine):
    _, _, gen = run(collect(engine, PROMPT, greedy(24, logprobs=5)))
    for t in tokens_of(gen):
        assert len(t.top) == 5
        values = [a.logprob for a in t.top]
        assert values == sorted(values, reverse=True)
        assert t.top[0].id == t.id and t.top[0].logprob == t.logprob  # temperature 0: the argmax
        assert sum(math.exp(v) for v in values) <= 1.0 + 1e-5


def test_logprobs_equal_an_independent_log_softmax_of_the_logits(engine):
    """At temperature 0, each chosen token's logprob is the log-softmax of the model's raw logits,
    recomputed here on a context of our own, in float64."""
    prompt = Prompt(text="The capital of France is")
    _, _, gen = run(collect(engine, prompt, greedy(8, logprobs=2)))
    toks = tokens_of(gen)
    model = Model(str(default_model_path()))
    try:
        ids = model.tokenize("The capital of France is")
        assert len(ids) == gen.prompt_tokens
        seq = ids + [t.id for t in toks]
        p = L.llama_context_default_params()
        p.n_ctx, p.n_batch, p.n_ubatch, p.n_threads, p.n_threads_batch = 256, 256, 256, 1, 1
        ctx = L.llama_init_from_model(model.ptr, p)
        batch = L.llama_batch_init(len(seq), 0, 1)
        try:
            for i, tok in enumerate(seq):
                batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = tok, i, 1, True
                batch.seq_id[i][0] = 0
            batch.n_tokens = len(seq)
            assert L.llama_decode(ctx, batch) == 0
            for k, t in enumerate(toks):
                row = len(ids) - 1 + k
                x = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, row), shape=(model.n_vocab,)).astype(np.float64)
                want = x[t.id] - (x.max() + math.log(np.exp(x - x.max()).sum()))
                assert int(x.argmax()) == t.id
                assert abs(t.logprob - want) < 2e-3, (k, t.logprob, want)  # another batch shape rounds differently
        finally:
            L.llama_batch_free(batch)
            L.llama_free(ctx)
    finally:
        model.close()


def test_logit_bias_forces_and_bans(engine):
    prompt = Prompt(text="The capital of France is")
    _, _, plain = run(collect(engine, prompt, greedy(4)))
    first = tokens_of(plain)[0].id
    _, _, banned = run(collect(engine, prompt, greedy(4, logit_bias=((first, -100),))))
    assert first not in [t.id for t in tokens_of(banned)]
    forced_id = engine._model.tokenize(" banana", add_special=False)[0]
    _, _, forced = run(collect(engine, prompt, greedy(3, logit_bias=((forced_id, 100),), logprobs=0)))
    assert [t.id for t in tokens_of(forced)] == [forced_id] * 3
    assert all(t.logprob < 0 for t in tokens_of(forced))  # the model's own logprob, before the bias


def test_out_of_vocabulary_logit_bias_and_logprobs_are_refused(engine):
    with pytest.raises(InvalidRequest) as e:
        run(engine.submit(PROMPT, greedy(2, logit_bias=((10**7, 5),))))
    assert e.value.param == "logit_bias"
    with pytest.raises(InvalidRequest) as e:
        run(engine.submit(PROMPT, greedy(2, logprobs=21)))
    assert e.value.param == "logprobs"
    assert engine.stats()["outstanding"] == 0


class Only:
    """A toy constraint: only the given tokens (and, once `n` tokens came, end-of-generation)."""

    def __init__(self, allowed, vocab, n=None):
        self.vocab, self.n, self.seen = vocab, n, []
        self.allowed = np.zeros(vocab.n_vocab, dtype=bool)
        self.allowed[list(allowed)] = True
        self.masks = 0

    def allows(self, token):
        return bool(self.allowed[token])

    def mask(self, logits):
        self.masks += 1
        logits[~self.allowed] = -np.inf

    def accept(self, token):
        assert self.allows(token)  # the runner never accepts a rejected token
        self.seen.append(token)
        return True

    @property
    def done(self):
        return self.n is not None and len(self.seen) >= self.n


class Spec:
    free_text = False

    def __init__(self, make):
        self.make, self.made = make, []

    async def compile(self, vocab):
        c = self.make(vocab)
        self.made.append(c)
        return c


def test_a_constraint_that_allows_everything_changes_nothing(engine):
    params = SamplingParams(temperature=0.9, max_tokens=24, seed=11)
    free = run(collect(engine, PROMPT, params))[0]
    spec = Spec(lambda v: Only(range(v.n_vocab), v))
    constrained = run(collect(engine, PROMPT, SamplingParams(**{**params.__dict__, "constraint": spec})))[0]
    assert constrained == free and spec.made[0].masks == 0 and len(spec.made[0].seen) >= 24


def test_a_constraint_is_enforced_and_can_end_the_sequence(engine):
    vocab = engine._model  # the engine's loaded model, for its tokenizer
    digits = [vocab.tokenize(str(d), add_special=False)[0] for d in range(10)]
    spec = Spec(lambda v: Only(digits, v, n=6))
    for params in (greedy(50, constraint=spec), SamplingParams(temperature=1.0, seed=5, max_tokens=50, constraint=spec)):
        text, _, gen = run(collect(engine, Prompt(text="Once upon a time"), params))
        assert text.isdigit() and len(tokens_of(gen)) == 6, text
        assert gen.finish_reason == "stop"
    assert all(c.masks > 0 for c in spec.made)  # the prose the model wanted was rejected and resampled


class Raises(Only):
    def allows(self, token):
        raise ValueError("matcher exploded")


class Refuses(Only):
    failed = "dead end"

    def accept(self, token):
        return False


@pytest.mark.parametrize("broken", [Raises, Refuses])
def test_a_failing_constraint_fails_only_its_own_sequence(engine, broken):
    from hearth.engine import GenerationFailed
    spec = Spec(lambda v: broken(range(v.n_vocab), v))

    async def both():
        bad = await engine.submit(PROMPT, greedy(8, constraint=spec))
        good = asyncio.ensure_future(collect(engine, PROMPT, greedy(8)))
        with pytest.raises(GenerationFailed):
            [d async for d in bad]
        return await good

    text, _, gen = run(both())
    assert text and gen.completion_tokens == 8
    assert engine.stats()["outstanding"] == 0
