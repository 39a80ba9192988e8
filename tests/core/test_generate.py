"""Generation with the real model: counters, stops, the context ceiling, errors, UTF-8, seeds."""

import pytest

from hearth.engine import ContextLengthExceeded, LoadState, ModelLoading, ModelNotLoaded, Prompt, SamplingParams, create_engine
from hearth.engine import EngineConfig
from hearth.models.defaults import default_model_path

from support import chat, collect, greedy, make_engine, run


def test_chat_generation_counts_and_finishes(engine):
    text, deltas, gen = run(collect(engine, chat("What is the capital of France?"), greedy(12)))
    assert text and all(isinstance(d, str) and d for d in deltas)
    assert gen.finish_reason in ("stop", "length")
    assert 0 < gen.completion_tokens <= 12
    assert gen.prompt_tokens > 10
    if gen.finish_reason == "length":
        assert gen.completion_tokens == 12


def test_text_prompt(engine):
    text, _, gen = run(collect(engine, Prompt(text="1, 2, 3, 4,"), greedy(8)))
    assert gen.finish_reason == "length" and gen.completion_tokens == 8 and "5" in text


def test_seed_reproduces_and_differs(engine):
    p = chat("Write a short poem about the sea.")
    a = run(collect(engine, p, SamplingParams(temperature=1.0, max_tokens=24, seed=7)))[0]
    b = run(collect(engine, p, SamplingParams(temperature=1.0, max_tokens=24, seed=7)))[0]
    c = run(collect(engine, p, SamplingParams(temperature=1.0, max_tokens=24, seed=8)))[0]
    assert a == b
    assert a != c


def test_stop_string_is_excluded(engine):
    p = Prompt(text="The days of the week are Monday, Tuesday, Wednesday,")
    full = run(collect(engine, p, greedy(16)))[0]
    assert "Friday" in full, full
    text, _, gen = run(collect(engine, p, greedy(16, stop=("Friday",))))
    assert gen.finish_reason == "stop"
    assert text == full[: full.index("Friday")]


def test_prompt_at_the_context_length_is_rejected(engine):
    long = Prompt(text="hello " * 600)  # > 512 tokens
    with pytest.raises(ContextLengthExceeded) as e:
        run(engine.submit(long, greedy(4)))
    assert e.value.prompt_tokens >= 512 and e.value.n_ctx == 512


def test_generation_ends_at_the_context_ceiling():
    eng = make_engine(n_ctx=96, n_parallel=1)
    try:
        text, _, gen = run(collect(eng, Prompt(text="1, 2, 3, 4, 5, 6, 7, 8,"), greedy(None)))
        assert gen.finish_reason == "length"
        assert gen.prompt_tokens + gen.completion_tokens == 96
    finally:
        eng.close()


def test_utf8_deltas_are_whole_characters(engine):
    p = chat("Écris une phrase en français avec des accents, puis répète: 日本語 🙂")
    text, deltas, _ = run(collect(engine, p, SamplingParams(temperature=0.9, max_tokens=48, seed=3)))
    for d in deltas:
        d.encode("utf-8")  # no lone surrogates
    assert "\ufffd" not in text


def test_not_loaded_then_loading_states():
    eng = create_engine(EngineConfig(model_path=str(default_model_path())))
    assert eng.state is LoadState.EMPTY
    with pytest.raises(ModelNotLoaded):
        run(eng.submit(Prompt(text="hi"), greedy(1)))
    eng.start()
    try:
        if eng.state is LoadState.LOADING:  # almost always: the load takes a few hundred ms
            with pytest.raises(ModelLoading):
                run(eng.submit(Prompt(text="hi"), greedy(1)))
    finally:
        eng.close()


def test_a_bad_model_path_fails_to_load():
    eng = create_engine(EngineConfig(model_path="/nonexistent/model.gguf"))
    eng.start()
    import time
    for _ in range(200):
        if eng.state is not LoadState.LOADING:
            break
        time.sleep(0.02)
    assert eng.state is LoadState.FAILED
    with pytest.raises(ModelNotLoaded):
        run(eng.submit(Prompt(text="hi"), greedy(1)))
