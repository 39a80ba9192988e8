"""The engine: the only package that imports llama_cpp. Handlers see `api` only."""
from hearth.engine.api import *  # noqa: F401,F403
from hearth.engine.api import Engine, EngineConfig


def create_engine(config: EngineConfig) -> Engine:
    """A continuous-batching llama.cpp engine; call `start()` to load the model in the background."""
    from hearth.engine.llm_engine import LlamaEngine  # imports llama_cpp only when an engine is made

    return LlamaEngine(config)
