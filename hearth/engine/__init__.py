"""The engine: the only package that imports llama_cpp. Handlers see `api` only."""
from hearth.engine.api import *  # noqa: F401,F403
from hearth.engine.api import Engine, EngineConfig


def create_engine(config: EngineConfig, kind: str | None = None) -> Engine:
    """An engine for the GGUF in `config`; call `start()` to load it in the background.

    `kind` "embedding" (or, when not given, a GGUF whose header has a pooling type or an encoder
    architecture) gets the embedding engine; anything else the continuous-batching chat engine."""
    if kind is None:
        kind = "embedding" if is_embedding_model(config.model_path) else "llm"
    if kind == "embedding":
        from hearth.engine.embedding_engine import EmbeddingEngine

        return EmbeddingEngine(config)
    from hearth.engine.llm_engine import LlamaEngine  # imports llama_cpp only when an engine is made

    return LlamaEngine(config)


def is_embedding_model(path: str) -> bool:
    from hearth.engine.catalog import ENCODER_ARCHS, read_gguf_metadata

    try:
        meta = read_gguf_metadata(path)
    except (OSError, ValueError):
        return False  # the engine's load reports what is wrong with the file
    arch = meta.get("general.architecture")
    return arch in ENCODER_ARCHS or f"{arch}.pooling_type" in meta
