"""One request's state: the engine-thread side (`Sequence`) and the event-loop side (`Stream`)."""
from __future__ import annotations

import asyncio
import enum
import itertools

from hearth.engine.api import Delta, FinishReason, GenerationFailed, SamplingParams
from hearth.engine.output import OutputProcessor

_ids = itertools.count()


class Status(enum.Enum):
    WAITING = 0  # submitted, not yet admitted to the batch
    PREFILL = 1  # admitted: prompt tokens are being evaluated (or copied from the prefix cache)
    DECODE = 2  # one token per step
    ENDING = 3  # its last token is sampled: it leaves once that token is processed
    FINISHED = 4


class _End:
    __slots__ = ("reason", "completion_tokens")

    def __init__(self, reason: FinishReason, completion_tokens: int):
        self.reason, self.completion_tokens = reason, completion_tokens


class _Prompt:
    __slots__ = ("tokens",)

    def __init__(self, tokens: tuple):
        self.tokens = tokens


class Stream:
    """What the handler holds (api.Generation): async-iterable Deltas, final counters, cancel()."""

    def __init__(self, loop: asyncio.AbstractEventLoop, prompt_tokens: int, on_cancel):
        self._loop = loop
        self._queue: asyncio.Queue = asyncio.Queue()
        self._on_cancel = on_cancel
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = 0
        self.finish_reason: FinishReason | None = None
        self.cancelled = False
        self.started = False  # set by the engine thread when the sequence is admitted into the batch
        self.prompt_logprobs = None  # api.Generation.prompt_logprobs
        self.think_open = False  # api.Generation.think_open
        self.cached_tokens = 0  # api.Generation.cached_tokens

    def __aiter__(self):
        return self._iterate()

    async def _iterate(self):
        while True:
            item = await self._queue.get()
            if type(item) is _Prompt:
                self.prompt_logprobs = item.tokens
                continue
            if type(item) is _End:
                self.finish_reason, self.completion_tokens = item.reason, item.completion_tokens
                if item.reason is FinishReason.ERROR:
                    raise GenerationFailed("The engine failed while generating this response; see the server log.")
                return
            yield item

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True  # read by the engine thread at its next step
            self._on_cancel()

    def _push(self, item: Delta | _End) -> None:
        """On the event loop (the engine's Outbox delivers here)."""
        self._queue.put_nowait(item)


class Sequence:
    def __init__(self, prompt: list[int], params: SamplingParams, stream: Stream, loop, constraint=None):
        self.id = next(_ids)
        self.prompt = prompt
        self.params = params
        self.stream = stream
        self.loop = loop
        self.status = Status.WAITING
        self.slot = None  # the prefix-cache slot (= llama seq id) it runs in
        self.wait = None  # (slot, its owner, length): coalesced, waiting for the owner's prefill to cover `length` tokens
        self.n_done = 0  # prompt tokens already in the KV cache
        self.n_cached = 0  # of which came from the prefix cache
        self.last = -1  # the sampled token not yet in the KV cache
        self.n_out = 0  # tokens sampled (end-of-generation tokens excluded)
        self.sampler = None
        self.constraint = constraint  # api.Constraint, compiled in submit()
        self.output = OutputProcessor(params)
        self.prompt_out = [] if params.prompt_logprobs is not None else None  # the runner fills it (echo)

    def prompt_evaluated(self, outbox) -> None:
        """The whole prompt is in the KV cache: hand its logprobs over, when asked (before any token)."""
        if self.prompt_out is not None:
            outbox.put(self, _Prompt(tuple(self.prompt_out)))

    @property
    def cancelled(self) -> bool:
        return self.stream.cancelled

    def finish(self, reason: FinishReason, outbox, flush: bool = True) -> None:
        """flush=False after a stop string: what followed it is dropped."""
        if self.status is Status.FINISHED:
            return
        self.status = Status.FINISHED
        if reason is not FinishReason.CANCELLED and reason is not FinishReason.ERROR:
            delta = self.output.finish(flush)
            if delta is not None:
                outbox.put(self, delta)
            if reason is FinishReason.STOP and self.output.n_tool_calls:
                reason = FinishReason.TOOL_CALLS
        outbox.put(self, _End(reason, self.output.n_tokens))
