"""Per-sequence output processors, tokens -> Deltas: detokenizer and stop strings, then the tool-call
parser; and the outbox that delivers a step's Deltas to the event loop.

Where they run: on the engine thread, at most one step after sampling, because a stop string must end
generation at once; on the event loop the engine would learn of it several steps later and decode
tokens nobody asked for (and report or count them). Without a decode thread a step's tokens are
processed in the step that sampled them; with one (a model wholly on a GPU, llm_engine.step) during the
next step's llama_decode, and a sequence that a stop string ends has had one token more decoded, dropped. The price, measured
(timeit, 1,000 tokens of " word"): 4.8 us per token for OutputProcessor.feed without stop strings,
18 us with one (the held-back path), against a decode step of ~5 ms: 0.1-0.4%, on a thread that
waits in llama_decode most of the time. `benchmarks/output_cost.py` measures the same in the engine.
What crosses to the event loop is one `call_soon_threadsafe` per step and loop, carrying every
sequence's Deltas, instead of one wake-up per sequence per token.
"""
from __future__ import annotations

import codecs
import dataclasses

from hearth.engine.api import Delta, SamplingParams, TokenOut


class Detokenizer:
    """Tokens -> text Deltas, token-exact: each Delta's tokens spell its text.

    A token is held back, with its text, while it ends mid-character or while the text it ends with
    could still grow into a stop string. A stop string ends the text at once; the token it cut is
    reported with only the bytes before it, and tokens wholly inside it are dropped.
    """

    def __init__(self, stop: tuple[str, ...] = ()):
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stop = tuple(s for s in stop if s)
        self._longest = max((len(s) for s in self._stop), default=0)
        self._held: list[TokenOut] = []  # tokens not yet emitted
        self._ends: list[int] = []  # per held token: len(self._text) at its end, -1 when mid-character
        self._text = ""  # the held tokens' text, whole characters only

    def feed(self, tok: TokenOut) -> tuple[Delta | None, bool]:
        """(what to emit now, or None; whether a stop string was found: the sequence ends)."""
        text = self._utf8.decode(tok.piece)
        partial = bool(self._utf8.getstate()[0])
        if not self._stop:  # the common case: hold only while a character is incomplete
            if not self._held and not partial:
                return Delta(text, (tok,)), False
            self._held.append(tok)
            self._text += text
            return (None if partial else self._emit(len(self._held), len(self._text))), False
        search_from = max(0, len(self._text) - self._longest + 1)
        self._held.append(tok)
        self._text += text
        self._ends.append(-1 if partial else len(self._text))
        best = -1
        for s in self._stop:
            i = self._text.find(s, search_from)
            if i >= 0 and (best < 0 or i < best):
                best = i
        if best >= 0:
            return self._cut(best), True
        if partial:
            return None, False
        limit = len(self._text) - self._could_start_stop()
        for j in range(len(self._ends) - 1, -1, -1):  # the last token that ends on a character before `limit`
            if 0 <= self._ends[j] <= limit:
                return self._emit(j + 1, self._ends[j]), False
        return None, False

    def flush(self) -> Delta | None:
        """The end of the sequence (not after a stop string): everything held, as it is."""
        self._text += self._utf8.decode(b"", final=True)
        return self._emit(len(self._held), len(self._text)) if self._held else None

    def _could_start_stop(self) -> int:
        """Length of the longest tail of the held text that is a proper prefix of a stop string."""
        text, keep = self._text, 0
        for s in self._stop:
            for k in range(min(len(s) - 1, len(text)), keep, -1):
                if text.endswith(s[:k]):
                    keep = k
                    break
        return keep

    def _emit(self, n_tokens: int, n_chars: int) -> Delta | None:
        tokens, text = tuple(self._held[:n_tokens]), self._text[:n_chars]
        del self._held[:n_tokens]
        self._text = self._text[n_chars:]
        if self._ends:
            self._ends = [e - n_chars if e >= 0 else e for e in self._ends[n_tokens:]]
        return Delta(text, tokens) if tokens else None

    def _cut(self, n_chars: int) -> Delta | None:
        """Emit the first n_chars of the held text (a stop string starts there) and drop the rest."""
        text = self._text[:n_chars]
        budget = len(text.encode("utf-8"))  # bytes the emitted tokens may spell
        tokens = []
        for tok in self._held:
            if budget <= 0:
                break
            if len(tok.piece) > budget:
                tok = dataclasses.replace(tok, piece=tok.piece[:budget])
            tokens.append(tok)
            budget -= len(tok.piece)
        self._held, self._ends, self._text = [], [], ""
        return Delta(text, tuple(tokens)) if tokens else None


class OutputProcessor:
    """One sequence's chain: Detokenizer (stop strings), then the request's tool-call parser, if any.
    `n_tokens` counts the tokens emitted so far: the Generation's completion_tokens."""

    def __init__(self, params: SamplingParams):
        self._detok = Detokenizer(params.stop)
        self._tools = params.tool_parser() if params.tool_parser is not None else None
        self.n_tokens = 0
        self.n_tool_calls = 0  # fragments that opened a call (carry a name)

    def feed(self, tok: TokenOut) -> tuple[Delta | None, bool]:
        """(what to emit now, or None; whether the sequence ends here: a stop string, or the tool-call
        parser saw the answer end, a verbatim repeat of an earlier call)."""
        delta, stopped = self._detok.feed(tok)
        if delta is not None:
            delta = self._parse(delta, False)
        return delta, stopped or (self._tools is not None and self._tools.done)

    def finish(self, flush: bool) -> Delta | None:
        """The sequence ended; flush=False after a stop string (nothing is held then)."""
        delta = self._detok.flush() if flush else None
        if self._tools is not None:
            delta = self._parse(delta or Delta(""), True)
            if delta is not None and not (delta.text or delta.tokens or delta.tool_calls):
                delta = None
        elif delta is not None:
            self.n_tokens += len(delta.tokens)
        return delta

    def _parse(self, delta: Delta, final: bool) -> Delta:
        self.n_tokens += len(delta.tokens)
        if self._tools is None:
            return delta
        text, calls = self._tools.feed(delta.text) if delta.text else ("", ())
        if final:
            more_text, more_calls = self._tools.finish()
            text, calls = text + more_text, (*calls, *more_calls)
        self.n_tool_calls += sum(1 for c in calls if c.name is not None)
        return Delta(text, delta.tokens, tuple(calls))


class Outbox:
    """Collects one step's outputs and hands them to each event loop in one call_soon_threadsafe."""

    def __init__(self):
        self._items: dict = {}  # loop -> [(stream, item)]

    def put(self, seq, item) -> None:
        self._items.setdefault(seq.loop, []).append((seq.stream, item))

    def flush(self) -> None:
        if not self._items:
            return
        items, self._items = self._items, {}
        for loop, batch in items.items():
            try:
                loop.call_soon_threadsafe(_deliver, batch)
            except RuntimeError:  # that loop is closed: nobody is listening any more
                pass


def _deliver(batch) -> None:
    for stream, item in batch:
        stream._push(item)
