"""An engine failure ends the affected requests with an error, never a hang; close() is final."""
import pytest

from hearth.engine import GenerationFailed, ModelNotLoaded, Prompt

from support import collect, greedy, make_engine, run


def test_a_failing_admission_fails_its_request_and_the_engine_serves_on():
    eng = make_engine(n_ctx=256, n_parallel=2)
    try:
        runner = eng._scheduler.runner  # the one seam a real model cannot fail on demand
        real = runner.sampler

        def broken(params):
            raise RuntimeError("sampler exploded")

        runner.sampler = broken
        with pytest.raises(GenerationFailed):
            run(collect(eng, Prompt(text="1, 2, 3,"), greedy(4)))
        runner.sampler = real
        text, _, gen = run(collect(eng, Prompt(text="1, 2, 3,"), greedy(4)))
        assert gen.completion_tokens == 4 and text
        assert eng.stats()["outstanding"] == 0
    finally:
        eng.close()


def test_close_is_final():
    eng = make_engine(n_ctx=256, n_parallel=1)
    eng.close()
    with pytest.raises(ModelNotLoaded):
        run(eng.submit(Prompt(text="hi"), greedy(2)))
