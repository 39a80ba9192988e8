"""The overlapped step (a decode thread, llm_engine.step) gives what the plain step gives.

Overlap is on by default only for a model wholly on a GPU; here it is forced on over the CPU build, where
it is correct but no faster. Each sequence is one token ahead of its processed output there, so these
check what that could break: texts, finish reasons and counts under load, stop strings (one extra token
decoded and dropped), max_tokens, seeded sampling, cancellation and the slots afterwards.
"""
import asyncio

import pytest

from hearth.engine import SamplingParams, model_runner

from support import cancel_while_decoding, chat, collect, greedy, make_engine, run

PROMPTS = [chat(q) for q in (
    "Name three fruits.", "What is 2 + 2?", "Say hello in Spanish.", "Describe a cat in one sentence.",
    "What colour is the sky?", "Give me a word that rhymes with moon.",
)]
PARAMS = [
    greedy(24), greedy(1), SamplingParams(temperature=0.9, top_p=0.9, max_tokens=20, seed=7),
    greedy(40, stop=(" ",)), greedy(40, stop=("sky", ".")), greedy(3),
]


@pytest.fixture(scope="module")
def engines():
    plain = make_engine(n_ctx=512, n_parallel=4, overlap=False)
    overlapped = make_engine(n_ctx=512, n_parallel=4, overlap=True)
    runner = overlapped._llama[1]
    begin, runner.begun = runner.begin, 0

    def counted(plan):
        runner.begun += 1
        begin(plan)

    runner.begin = counted
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(model_runner, "OVERLAP_MIN", 1)  # every decoding step overlapped, down to one sequence
        yield plain, overlapped
    plain.close()
    overlapped.close()


def outcomes(eng):
    async def together():
        return await asyncio.gather(*(collect(eng, p, k) for p, k in zip(PROMPTS, PARAMS)))

    return [(text, g.finish_reason, g.completion_tokens) for text, _, g in run(together())]


def test_the_overlapped_step_is_used_and_gives_the_same_outputs(engines):
    plain, overlapped = engines
    assert not plain._overlap and plain._llama[1]._thread is None
    want = outcomes(plain)
    assert outcomes(overlapped) == want
    assert overlapped._llama[1].begun >= 10  # the decode thread ran the decoding steps
    assert [r[1] for r in want].count("stop") >= 2  # the stop strings did end streams
    assert want[1][2] == 1 and want[5][2] == 3  # max_tokens counted exactly


def test_cancelling_an_overlapped_stream_frees_its_slot(engines):
    _, eng = engines
    before = eng.stats()
    s = cancel_while_decoding(eng)
    assert s["cancelled"] == before["cancelled"] + 1
    assert s["running"] == 0 and s["waiting"] == 0 and s["outstanding"] == 0
    assert run(collect(eng, PROMPTS[1], greedy(8)))[2].finish_reason in ("stop", "length")
