"""How many sequences an engine decodes together and how many KV streams it keeps (llm_engine.plan_slots)."""
from __future__ import annotations

from hearth.engine.api import EngineConfig
from hearth.engine.llm_engine import plan_slots

KV = 23_040  # SmolLM2-135M's KV bytes per token


def test_slots_default_from_parallel_and_memory():
    assert plan_slots(EngineConfig(model_path="m", n_parallel=1), KV) == (1, 2)
    assert plan_slots(EngineConfig(model_path="m", n_parallel=4), KV) == (4, 8)


def test_slots_asked_for_are_kept_with_one_idle_stream_at_least():
    assert plan_slots(EngineConfig(model_path="m", n_parallel=1, n_slots=3), KV) == (1, 3)
    assert plan_slots(EngineConfig(model_path="m", n_parallel=2, n_slots=1), KV) == (2, 3)
