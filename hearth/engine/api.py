"""What the HTTP layer may know about the engine: requests, results, errors.

Handlers depend on this module only; everything that touches llama.cpp lives beside it.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import AsyncIterator, Protocol, Sequence


class LoadState(str, enum.Enum):
    EMPTY = "empty"  # no model configured
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class ModelInfo:
    id: str  # the true id, as GET /v1/models lists it
    n_ctx: int  # context ceiling of one sequence, in tokens
    created: int  # unix seconds (the model file's mtime)
    owned_by: str = "organization_owner"


@dataclass(frozen=True)
class ChatMessage:
    role: str  # system | user | assistant
    content: str


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int | None = None  # None: until a stop token or the context ceiling
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0


@dataclass(frozen=True)
class Prompt:
    """Exactly one of `messages` (rendered with the model's own chat template) or `text`."""

    messages: tuple[ChatMessage, ...] | None = None
    text: str | None = None


class Generation(Protocol):
    """One running request. Iterate for text deltas; the counters are final once iteration ends."""

    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None  # "stop" | "length", set when iteration ends

    def __aiter__(self) -> AsyncIterator[str]:
        """Raises GenerationFailed when the engine could not finish the request."""

    def cancel(self) -> None:
        """Idempotent. The sequence leaves the batch at the next step and its KV cells are freed."""


@dataclass
class Embeddings:
    vectors: list[list[float]]  # one pooled, normalised vector per input, in input order
    prompt_tokens: int


@dataclass(frozen=True)
class EngineConfig:
    model_path: str
    model_id: str | None = None  # default: the file name without .gguf
    n_ctx: int = 4096  # context ceiling of one sequence
    n_threads: int | None = None  # default: all cores
    n_parallel: int | None = None  # sequences decoded together; default chosen from cores and context
    max_queue: int = 64  # requests waiting beyond the running ones; more get Overloaded
    verbose: bool = False  # llama.cpp's own logs


class Engine(Protocol):
    state: LoadState
    model: ModelInfo | None  # set once READY

    def start(self) -> None:
        """Begin loading in the background and return at once (state LOADING, then READY or FAILED)."""

    def close(self) -> None:
        """Stop the engine thread and free the model."""

    async def submit(self, prompt: Prompt, params: SamplingParams) -> Generation:
        """Admit a request. Raises an EngineError before any token is produced."""

    async def embed(self, texts: Sequence[str]) -> Embeddings: ...

    def stats(self) -> dict[str, int]:
        """Counters for benchmarks and tests (prefill tokens, cache hits, ...)."""


# Errors. Handlers map each to its OpenAI-shaped body and status.
@dataclass
class EngineError(Exception):
    message: str


@dataclass
class ModelNotLoaded(EngineError):
    """404 model_not_found."""


@dataclass
class ModelLoading(EngineError):
    """503 model_loading + Retry-After."""

    retry_after: float = 1  # seconds (Retry-After is rounded up; retry-after-ms is exact)


@dataclass
class Overloaded(EngineError):
    """503 server_overloaded + Retry-After: the waiting queue is full."""

    retry_after: int = 1


@dataclass
class WrongModelType(EngineError):
    """400: chat or text completions on an embedding model (or, strictly, embeddings on a chat model)."""


@dataclass
class ModelLoadFailed(EngineError):
    """500 model_load_failed: llama.cpp could not load a model file (a fault of the file, logged)."""


@dataclass
class ContextLengthExceeded(EngineError):
    """400 context_length_exceeded: a prompt (or an embedding input) does not fit in the context."""

    prompt_tokens: int = 0
    n_ctx: int = 0


@dataclass
class GenerationFailed(EngineError):
    """500 server_error: the engine failed while running the request (a bug; logged)."""
