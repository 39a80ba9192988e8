"""Embeddings from the real model: one normalised vector per input, in order, batched."""
import math

import pytest

from hearth.engine import ContextLengthExceeded

from support import run


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def test_vectors_are_normalised_in_order_and_batch_independent(engine):
    texts = ["The cat sat on the mat.", "Quantum chromodynamics", "bonjour", "The cat sat on the mat."]
    e = run(engine.embed(texts))
    assert len(e.vectors) == 4 and e.prompt_tokens > 4
    assert all(abs(norm(v) - 1) < 1e-6 for v in e.vectors)
    assert e.vectors[0] == pytest.approx(e.vectors[3], abs=1e-5)
    assert e.vectors[0] != pytest.approx(e.vectors[1], abs=1e-3)
    one = run(engine.embed(["Quantum chromodynamics"])).vectors[0]
    assert one == pytest.approx(e.vectors[1], abs=1e-4)
    swapped = run(engine.embed([texts[2], texts[1]])).vectors
    assert swapped[0] == pytest.approx(e.vectors[2], abs=1e-4) and swapped[1] == pytest.approx(e.vectors[1], abs=1e-4)
    assert engine.stats()["embed_batches"] >= 3


def test_an_input_longer_than_the_context_is_rejected(engine):
    with pytest.raises(ContextLengthExceeded):
        run(engine.embed(["short", "word " * 700]))
