"""A base model (no chat template: Gemma 3 270M) gets ChatML's end-of-turn strings as stop strings, or it
writes them as text and never stops; but not where a grammar alone ends the answer, where a stop string
could only cut it short (Gemma wrote "<|im_start|>" inside a forced apply_patch call, which then ended
half-written: tests/system/test_agents.py)."""
import pytest

from hearth.models import defaults
from hearth.structured.constraint import GrammarSpec

from support import chat, collect, greedy, make_engine, run

FORCED = '%llguidance {}\nstart: "<|im_start|>ok"\n'  # a grammar whose only answer holds a fallback stop


@pytest.fixture(scope="module")
def gemma():
    eng = make_engine(model_path=str(defaults.fetch(defaults.SECOND_CHAT)), n_ctx=256, n_parallel=1)
    assert eng._model.chat_fallback  # the premise: a model without a chat template
    yield eng
    eng.close()


@pytest.mark.parametrize("free_text,want", [(False, "<|im_start|>ok"), (True, "")])
def test_fallback_stops_apply_only_where_the_answer_may_be_free_text(gemma, free_text, want):
    text, _, gen = run(collect(gemma, chat("Say ok."), greedy(16, constraint=GrammarSpec(FORCED, "x", free_text))))
    assert text == want and gen.finish_reason == "stop"
