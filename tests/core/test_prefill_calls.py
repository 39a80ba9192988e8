"""How prompts are cut into llama_decode calls (prefix_cache.py): the cut the engine makes keeps a reused
prefix bit-identical to a fresh one, over the real model and llama.cpp's real kernels."""
import ctypes

import llama_cpp as L
import pytest

from hearth.engine.model import Model
from hearth.engine.model_runner import Runner
from hearth.engine.prefix_cache import reusable, split
from hearth.engine.scheduler import prompt_calls
from hearth.models.defaults import default_model_path


def test_calls_are_big_then_the_last_two_blocks_in_small_calls():
    assert split(1031) == 960 and split(1025) == 960 and split(1024) == 896 and split(128) == 0
    assert prompt_calls(0, 1031, 512, 512) == [(0, 512)]
    assert prompt_calls(512, 1031, 512, 512) == [(512, 960), (960, 992), (992, 1024)]  # 512 rows this step
    assert prompt_calls(0, 1031, 64, 512) == [(0, 64)]  # beside running streams: one big call per step
    assert prompt_calls(300, 900, 512, 512)[0] == (300, 768)  # 512 rows would leave 20 of the big part
    assert prompt_calls(0, 100, 512, 512) == [(0, 32), (32, 64), (64, 96), (96, 100)]
    assert prompt_calls(0, 1100, 512, 512) == [(0, 512)] and prompt_calls(512, 1100, 512, 512)[0] == (512, 1024)
    # the same split: every shared token; another: big cells only, the rest of the big part >= 64 rows
    assert reusable(1014, 1033, 960, 1031) == 1014
    assert reusable(1014, 1033, 960, 1031 + 64) == 960
    assert reusable(1000, 1033, 960, 1031 + 64) == 960
    assert reusable(1014, 1100, 1024, 1031) == 960  # the donor split later: its cells up to ours are big
    assert reusable(50, 60, 0, 60) == 50


@pytest.fixture(scope="module")
def runner():
    model = Model(str(default_model_path()))
    r = Runner(model, 1024, 2, 512, 2)
    yield r
    r.close()
    model.close()


def test_a_prefix_reused_at_a_block_boundary_gives_the_fresh_logits_bit_for_bit(runner):
    model = runner.model
    text = " ".join(f"item{i} is filed under shelf {i % 13} in room {i % 7}." for i in range(50))
    prompt = model.tokenize(text)
    other = prompt[:300] + model.tokenize(" Then the archive burned down." * 30, add_special=False)
    n = len(prompt)
    assert split(n) > 512 and split(len(other)) > 300 and split(n) != split(len(other))

    def evaluate(seq: int, tokens: list[int], cuts: list[int]) -> bytes:
        for a, b in zip(cuts, cuts[1:]):
            for i in range(a, b):
                runner.add(tokens[i], i, seq, i == len(tokens) - 1)
            assert runner.decode() == 0
        return ctypes.string_at(L.llama_get_logits_ith(runner.ctx, -1), model.n_vocab * 4)

    def engine_cuts(start: int, end: int) -> list[int]:
        cuts = [start]
        while cuts[-1] < end:
            cuts += [b for _, b in prompt_calls(cuts[-1], end, 512, 512)]
        return cuts

    runner.seq_clear(0)
    fresh = evaluate(0, prompt, engine_cuts(0, n))
    runner.seq_clear(1)
    evaluate(1, other, engine_cuts(0, len(other)))
    reused = reusable(300, len(other), split(len(other)), n)
    assert reused == 300

    def warm(start: int, cuts: list[int]) -> bytes:
        runner.seq_copy_prefix(1, 0, start)
        return evaluate(0, prompt, cuts)

    assert warm(reused, engine_cuts(reused, n)) == fresh  # big calls cut elsewhere than fresh: same bits
    # the control: resuming mid-block puts a few big-part positions into a small call, and the bits
    # differ (if this starts passing, llama.cpp's kernels changed: re-measure benchmarks/chunking.py)
    assert warm(300, [300, 320] + engine_cuts(320, n)[1:]) != fresh
    # a prompt with the same split reuses its small-call cells too: a question after the same text
    same = prompt[:-3] + model.tokenize(" Where is item7?", add_special=False)
    assert split(len(same)) == split(n)
    runner.seq_clear(1)
    evaluate(1, same, engine_cuts(0, len(same)))
    common = next(i for i, (a, b) in enumerate(zip(same, prompt)) if a != b)
    reused = reusable(common, len(same), split(len(same)), n)
    assert reused == common > split(n)
    assert warm(reused, engine_cuts(reused, n)) == fresh
