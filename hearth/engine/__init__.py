"""The decode core: the only package that imports llama_cpp. Everything above it sees `api` only.

`api` is the seam (Prompt, SamplingParams, Generation, Delta, the errors); `create_engine` makes the
engine for one loaded model: the continuous-batching chat engine (llm_engine: scheduler -> model_runner
-> output) or the embedding engine (embedding_engine), both stepped by the compute thread (compute)."""
from hearth.engine.api import *  # noqa: F401,F403
from hearth.engine.api import Engine, EngineConfig


def create_engine(config: EngineConfig, kind: str = "llm") -> Engine:
    """An engine for the GGUF in `config`, of `kind` "llm" or "embedding" (the catalog tells which a file
    is: hearth/gguf.py:is_embedding); call `start()` to load it in the background."""
    if kind == "embedding":
        from hearth.engine.embedding_engine import EmbeddingEngine

        return EmbeddingEngine(config)
    from hearth.engine.llm_engine import LlamaEngine  # imports llama_cpp only when an engine is made

    return LlamaEngine(config)
