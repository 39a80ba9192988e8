"""One request's state: the engine-thread side (`Sequence`) and the event-loop side (`Stream`)."""
from __future__ import annotations

import asyncio
import codecs
import enum
import itertools

from hearth.engine.api import GenerationFailed, SamplingParams

_ids = itertools.count()
_END = object()


class Status(enum.Enum):
    WAITING = 0  # submitted, not yet admitted to the batch
    PREFILL = 1  # admitted: prompt tokens are being evaluated (or copied from the prefix cache)
    DECODE = 2  # one token per step
    FINISHED = 3


class Stream:
    """What the handler holds: async-iterable text deltas, final counters, cancel()."""

    def __init__(self, loop: asyncio.AbstractEventLoop, prompt_tokens: int, on_cancel):
        self._loop = loop
        self._queue: asyncio.Queue = asyncio.Queue()
        self._on_cancel = on_cancel
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = 0
        self.finish_reason: str | None = None
        self.cancelled = False

    def __aiter__(self):
        return self._iterate()

    async def _iterate(self):
        while True:
            item = await self._queue.get()
            if item is _END:
                if self.finish_reason == "error":
                    raise GenerationFailed("The engine failed while generating this response; see the server log.")
                return
            yield item

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True  # read by the engine thread at its next step
            self._on_cancel()

    # called on the event loop (via call_soon_threadsafe) by the engine thread
    def _push(self, text: str) -> None:
        self._queue.put_nowait(text)

    def _end(self, reason: str | None, completion_tokens: int) -> None:
        self.finish_reason = reason
        self.completion_tokens = completion_tokens
        self._queue.put_nowait(_END)


class TextOut:
    """Bytes -> text deltas: never splits a UTF-8 character, never emits (a prefix of) a stop string."""

    def __init__(self, stop: tuple[str, ...]):
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stop = tuple(s for s in stop if s)
        self._held = ""

    def feed(self, data: bytes) -> tuple[str, bool]:
        """Returns (text to emit now, stop string found)."""
        text = self._utf8.decode(data)
        if not self._stop:
            return text, False
        text = self._held + text
        best = -1
        for s in self._stop:
            i = text.find(s)
            if i >= 0 and (best < 0 or i < best):
                best = i
        if best >= 0:
            self._held = ""
            return text[:best], True
        keep = 0  # longest tail of `text` that could still grow into a stop string
        for s in self._stop:
            for k in range(min(len(s) - 1, len(text)), keep, -1):
                if text.endswith(s[:k]):
                    keep = k
                    break
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep], False

    def flush(self) -> str:
        text = self._held + self._utf8.decode(b"", final=True)
        self._held = ""
        return text


class Sequence:
    def __init__(self, prompt: list[int], params: SamplingParams, stream: Stream, loop):
        self.id = next(_ids)
        self.prompt = prompt
        self.params = params
        self.stream = stream
        self.loop = loop
        self.status = Status.WAITING
        self.slot = None  # the prefix-cache slot (= llama seq id) it runs in
        self.wait = None  # (slot, length): coalesced, waiting for another prefill to cover `length` tokens
        self.n_done = 0  # prompt tokens already in the KV cache
        self.n_cached = 0  # of which came from the prefix cache
        self.last = -1  # the sampled token not yet in the KV cache
        self.n_out = 0  # completion tokens
        self.sampler = None
        self.text = TextOut(params.stop)

    @property
    def cancelled(self) -> bool:
        return self.stream.cancelled

    def emit(self, text: str) -> None:
        if text:
            self.loop.call_soon_threadsafe(self.stream._push, text)

    def finish(self, reason: str | None, flush: bool = True) -> None:
        """reason None: cancelled. flush=False after a stop string: what followed it is dropped."""
        if self.status is Status.FINISHED:
            return
        self.status = Status.FINISHED
        if flush and reason is not None:
            self.emit(self.text.flush())
        self.loop.call_soon_threadsafe(self.stream._end, reason, self.n_out)
