"""How prompts are cut into llama_decode calls (prefix_cache.py): the cut the engine makes keeps a reused
prefix bit-identical to a fresh one, over the real model and llama.cpp's real kernels."""
import ctypes

import llama_cpp as L
import pytest

from hearth.engine.model import Model
from hearth.engine.model_runner import Runner
from hearth.engine.prefix_cache import MIN_CALL, big_part, reusable
from hearth.engine.scheduler import prompt_calls
from hearth.models import default_model_path


def test_calls_are_whole_blocks_then_the_partial_last_block_in_small_calls():
    assert prompt_calls(0, 1031, 512, 512) == [(0, 512)]
    assert prompt_calls(512, 1031, 512, 512) == [(512, 1024)]
    assert prompt_calls(1024, 1031, 512, 512) == [(1024, 1031)]
    assert prompt_calls(0, 1031, 64, 512) == [(0, 64)]  # beside running streams: one block per step
    assert prompt_calls(0, 64, 512, 512) == [(0, 32), (32, 64)]  # the last token's block is never big
    assert prompt_calls(0, 80, 512, 512) == [(0, 64), (64, 80)]
    assert big_part(65) == 64 and big_part(64) == 0
    assert reusable(1014, 1024, 1031) == 960  # at a block boundary
    assert reusable(1014, 192, 1031) == 192  # only cells big calls computed
    assert reusable(50, 50, 60) == 0


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
    assert big_part(n) > 512 and big_part(len(other)) > 300

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
    reused = reusable(300, big_part(len(other)), n)
    assert reused == 256

    def warm(start: int, cuts: list[int]) -> bytes:
        runner.seq_copy_prefix(1, 0, start)
        return evaluate(0, prompt, cuts)

    assert warm(reused, engine_cuts(reused, n)) == fresh  # big calls cut elsewhere than fresh: same bits
    # the control: resuming mid-block puts a few big-part positions into a small call, and the bits
    # differ (if this starts passing, llama.cpp's kernels changed: re-measure benchmarks/chunking.py)
    assert warm(300, [300, 320] + engine_cuts(320, n)[1:]) != fresh
