"""The engine's seam: what every layer above it may know (requests, results, errors).

The models layer, structured output and handlers depend on this module only; everything that touches
llama.cpp lives beside it (docs/architecture.md). It is long because it is where each contract is
written down (what a Delta's bytes spell, when logprobs are taken, how a constraint is called).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import AsyncIterator, Callable, Protocol, Sequence


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
class Device:
    """A GPU llama.cpp can offload layers to, as ggml describes it (hearth/engine/devices.py)."""

    name: str
    free: int  # bytes of memory free now
    total: int


@dataclass(frozen=True)
class ChatMessage:
    role: str  # system | user | assistant
    content: str


class FinishReason(str, enum.Enum):
    """Why a sequence ended. A str: `reason == "stop"` holds, and `.value` is OpenAI's word."""

    STOP = "stop"  # an end-of-generation token, a stop string, or a constraint that is complete
    LENGTH = "length"  # max_tokens, or the context ceiling
    TOOL_CALLS = "tool_calls"  # ended as STOP after the tool-call parser reported at least one call
    CANCELLED = "cancelled"  # cancel() (the client went away); never reported to a client
    ERROR = "error"  # the engine failed this sequence; iteration raises GenerationFailed


@dataclass(frozen=True, slots=True)
class TopLogprob:
    id: int
    piece: bytes  # the token's bytes (may be part of a UTF-8 character)
    logprob: float


@dataclass(frozen=True, slots=True)
class TokenOut:
    """One generated token as it reached the output.

    `piece` is exactly what this token contributed to the text: its bytes, or, for the token a stop
    string cut, the bytes before the stop string (its `logprob` stays the whole token's). The pieces of
    a Generation's tokens, concatenated, are the UTF-8 of its text (content + tool-call text); the one
    exception is a character left incomplete when generation ends (max_tokens, the context ceiling),
    which the text shows as U+FFFD, as decoding the pieces with errors="replace" does.

    Logprobs (only when SamplingParams.logprobs is not None) are the model's own distribution: the
    log-softmax of the raw logits, before logit_bias, penalties, constraints, temperature, top-k and
    top-p, as OpenAI reports them. `top` holds the `logprobs` most likely tokens, most likely first.
    """

    id: int
    piece: bytes
    logprob: float | None = None
    top: tuple[TopLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of one tool call, as OpenAI streams it: the first fragment of call `index` has its
    `id` and `name` (and usually empty `arguments`); later ones append to `arguments`."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class Delta:
    """What one Generation yields: new content text, the tokens that produced it, new tool-call fragments.

    For a request without a tool-call parser, `text == b"".join(t.piece for t in tokens).decode(
    "utf-8", "replace")` for every Delta (tokens are held back with their text: a token that ends
    mid-character, or that may be the start of a stop string, comes out with the text it completes). With a parser, `text` is only
    the content; the tokens spell content and tool-call text together.
    """

    text: str
    tokens: tuple[TokenOut, ...] = ()
    tool_calls: tuple[ToolCallDelta, ...] = ()


class Vocab(Protocol):
    """The loaded model's vocabulary, as a constraint compiles against it (hearth/engine/model.py:Model).
    Valid only while the model is loaded: a compiled constraint must not outlive its request."""

    vocab: object  # llama.cpp's `const llama_vocab *` (for llama_sampler_init_grammar, llguidance's llamacpp tokenizer)
    n_vocab: int

    def piece(self, token: int) -> bytes: ...

    def is_eog(self, token: int) -> bool: ...

    def tokenize(self, text: str, add_special: bool = True) -> list[int]: ...


class Constraint(Protocol):
    """One sequence's token constraint (a grammar matcher): which tokens may come next. The shape of
    hearth/structured/constraint.py's llguidance Constraint.

    Used on the engine thread only, one object per sequence, never shared. The runner samples as
    llama.cpp does: it samples from the unconstrained distribution, asks `allows(token)`, and only on
    a rejection calls `mask(logits)` and samples again from the masked logits. It calls `accept(token)`
    exactly once per generated token, end-of-generation tokens included, and only with a token that
    `allows` admitted. After `accept`, `done` True ends the sequence with finish reason STOP (nothing
    more may follow). `accept` returning False, a resample the constraint still rejects, or any
    exception ends this sequence alone with FinishReason.ERROR; it never reaches the other sequences.
    """

    def allows(self, token: int) -> bool:
        """Would `accept(token)` be legal now? Called for every sampled token: keep it cheap."""

    def mask(self, logits) -> None:
        """Set the logits of the tokens not allowed now to -inf, in place (a float32 numpy array of
        n_vocab entries; it may be a strided view)."""

    def accept(self, token: int) -> bool:
        """Advance past `token`; False: the matcher failed (the sequence ends with an error)."""

    @property
    def done(self) -> bool:
        """Complete: nothing may follow."""


class ConstraintSpec(Protocol):
    """What a request asks to be enforced (a JSON schema, a grammar...), built by a handler. The engine
    awaits `compile` once per sequence in `submit()`, before admission, on the event loop (offload slow
    work to a thread); it raises InvalidRequest (with `param`, status 400) for what it cannot enforce,
    so the client gets an error before any token. `vocab` is the engine's loaded Model (hearth/engine/
    model.py): a spec may cache per-model state on it (e.g. llguidance's tokenizer). `free_text`: whether
    the answer may be free text (tools with tool_choice auto); otherwise the grammar alone ends it."""

    free_text: bool

    async def compile(self, vocab: Vocab) -> Constraint: ...


class ToolCallParser(Protocol):
    """One sequence's tool-call parser: the last output processor, after detokenisation and stop strings,
    on the engine thread. It sees the content text exactly as it would otherwise be emitted, and splits
    it into content and tool-call fragments. The sequence ends with TOOL_CALLS instead of STOP when it
    reported any call. `done` True after a `feed`: the answer is over (hearth/structured/tool_parser.py ends
    it at a verbatim repeat of an earlier call); the engine ends the sequence there, as at a stop string."""

    done: bool

    def feed(self, text: str) -> tuple[str, Sequence[ToolCallDelta]]: ...

    def finish(self) -> tuple[str, Sequence[ToolCallDelta]]:
        """The end of the text: whatever was held back, as content or calls."""


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int | None = None  # None: until a stop token or the context ceiling
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logprobs: int | None = None  # None: none; 0: each token's own logprob; k: and the k most likely (k <= 20)
    # the prompt's tokens with their logprobs too (echo), as `logprobs`; the prompt is then evaluated whole
    # (no prefix-cache reuse: a cached position has no logits) and Generation.prompt_logprobs is set
    prompt_logprobs: int | None = None
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias -100..100); -100 bans the token
    constraint: ConstraintSpec | None = None  # compiled once per sequence (see ConstraintSpec)
    tool_parser: Callable[[], ToolCallParser] | None = None  # a factory: one parser per sequence


@dataclass(frozen=True)
class Prompt:
    """Exactly one of `messages` (rendered with the model's own chat template) or `text`.

    `native`: the same conversation with tools, as (messages, tools) in OpenAI's shape (assistant
    `tool_calls` with `arguments` as objects, `tool` results with `tool_call_id`; the tools to describe,
    or None), for a model whose own template renders tools in the Hermes `<tool_call>` convention: such
    a model renders `native` instead of `messages` (hearth/structured/tool_format.py)."""

    messages: tuple[ChatMessage, ...] | None = None
    text: str | None = None
    native: tuple[tuple[dict, ...], tuple[dict, ...] | None] | None = None


class Generation(Protocol):
    """One running request. Iterate for Deltas; the counters are final once iteration ends.

    `completion_tokens` counts exactly the tokens the Deltas carried (an end-of-generation token and
    the tokens wholly inside a stop string are neither reported nor counted)."""

    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason | None  # set when iteration ends
    started: bool  # admitted into the batch (its prompt evaluated or being evaluated), not only queued
    # with SamplingParams.prompt_logprobs: the prompt's tokens, each with the logprob the model gives it
    # after the ones before it (the first has none: logprob None), set before the first Delta is yielded
    # (or the end, with max_tokens 0); None if the request ended before its prompt was evaluated
    prompt_logprobs: tuple[TokenOut, ...] | None
    # the rendered chat prompt ends inside an open <think> block (a template that opens the model's
    # reasoning for it): the answer starts as reasoning (hearth/structured/reasoning.py)
    think_open: bool
    # prompt tokens the prefix cache supplied (not evaluated again), set when the prompt is admitted
    cached_tokens: int

    def __aiter__(self) -> AsyncIterator[Delta]:
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
    n_slots: int | None = None  # KV streams, running and cached (at least n_parallel + 1); default from memory
    max_queue: int = 64  # requests waiting beyond the running ones; more get Overloaded
    verbose: bool = False  # llama.cpp's own logs
    n_gpu_layers: int = 0  # layers offloaded to a GPU (llama.cpp's n_gpu_layers; hearth/models/fit.py decides)
    overlap: bool | None = None  # decode while Python processes the last step (llm_engine.step); default: wholly on a GPU


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
class QueueTimeout(EngineError):
    """503 queue_timeout + Retry-After: a request's --request-timeout ran out before it left the queue
    (hearth/models/request.py; the engine itself never raises it)."""

    retry_after: int = 5  # a queue that held a request for its whole timeout does not drain at once


@dataclass
class WrongModelType(EngineError):
    """400: chat or text completions on an embedding model (or, strictly, embeddings on a chat model)."""


@dataclass
class ModelLoadFailed(EngineError):
    """500 model_load_failed: llama.cpp could not load a model file (a fault of the file, logged)."""


@dataclass
class ModelDoesNotFit(EngineError):
    """400 model_does_not_fit: with its KV cache, a model needs more host RAM or GPU memory than is free
    (hearth/models/fit.py; the message names both figures)."""


@dataclass
class ContextLengthExceeded(EngineError):
    """400 context_length_exceeded: a prompt (or an embedding input) does not fit in the context."""

    prompt_tokens: int = 0
    n_ctx: int = 0


@dataclass
class InvalidRequest(EngineError):
    """An invalid parameter value only the engine can judge (a token id outside the vocabulary, a
    schema feature a constraint cannot enforce): `status` (422 or 400) with `param`."""

    param: str | None = None
    status: int = 422
    code: str = "invalid_value"


@dataclass
class GenerationFailed(EngineError):
    """500 server_error: the engine failed while running the request (a bug; logged)."""
