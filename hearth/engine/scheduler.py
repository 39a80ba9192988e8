"""Admission and batching: which sequences run, what each step decodes, what happens to the results.

One step = one llama_decode holding one token of every decoding sequence, then prompt chunks of
sequences being prefilled. While streams are decoding, prompt evaluation is capped at PREFILL_CHUNK
tokens per step, so a long prompt delays the running streams by a bounded amount per token.
"""
from __future__ import annotations

from collections import deque

from hearth.engine.prefix_cache import CHUNK, PrefixCache, lcp
from hearth.engine.sequence import Sequence, Status

PREFILL_CHUNK = 2 * CHUNK  # prompt tokens per step while other sequences are decoding
COALESCE_MIN = 16  # wait for a concurrent prefill only when it saves at least this many tokens


class Scheduler:
    def __init__(self, runner, cache: PrefixCache, n_parallel: int, stats: dict, on_finish):
        self.runner = runner
        self.model = runner.model
        self.cache = cache
        self.n_parallel = n_parallel
        self.n_ctx = runner.n_ctx
        self.stats = stats
        self.on_finish = on_finish  # called once per sequence that leaves the engine
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []

    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    # admission --------------------------------------------------------------------------------
    def _admit(self) -> None:
        while self.waiting and len(self.running) < self.n_parallel and self.cache.has_idle():
            seq = self.waiting.popleft()
            if seq.cancelled:
                self._leave(seq, None)
                continue
            seq.status = Status.PREFILL
            self.running.append(seq)  # before anything that can raise, so that fail_all ends it
            fut, fut_n = self.cache.best_future(seq.prompt)
            n = self.cache.acquire(seq)
            seq.n_done = seq.n_cached = n
            self.stats["cached_prompt_tokens"] += n
            self.stats["cache_hits"] += n > 0
            if fut is not None and fut_n >= n + COALESCE_MIN:
                seq.wait = (fut, fut.seq, fut_n)  # prefill once: copy it when the other gets there
            seq.sampler = self.runner.sampler(seq.params)

    def _resolve_wait(self, seq: Sequence) -> None:
        src, owner, n = seq.wait
        if src.n_exact >= n and lcp(src.tokens, seq.prompt) >= n:
            got = n
        elif src.seq is owner and owner.status is Status.PREFILL and not owner.cancelled:
            return  # still coming
        else:  # the other prefill went away: take whatever is cached now and go on alone
            src, got = self.cache.best(seq.prompt, exclude=seq.slot)
        seq.wait = None
        if src is not None and got > seq.n_done:
            self.cache.load(seq.slot, src, got)
            self.stats["cached_prompt_tokens"] += got - seq.n_done
            self.stats["coalesced"] += 1
            seq.n_done = seq.n_cached = got

    # one step ---------------------------------------------------------------------------------
    def step(self) -> bool:
        """One token for every decoding sequence (one llama_decode), then prompt chunks, each in a
        call of its own (a chunk's rounding then never depends on what else runs). Returns whether
        anything was evaluated."""
        for seq in [s for s in self.running if s.cancelled]:
            self._leave(seq, None)
        if any(s.cancelled for s in self.waiting):
            for seq in [s for s in self.waiting if s.cancelled]:
                self._leave(seq, None)
            self.waiting = deque(s for s in self.waiting if not s.cancelled)
        self._admit()
        runner = self.runner
        decoding = [s for s in self.running if s.status is Status.DECODE]
        if decoding:
            rows = [runner.add(s.last, len(s.slot.tokens), s.slot.id, True) for s in decoding]
            self._decode()
            for seq, row in zip(decoding, rows):
                seq.slot.tokens.append(seq.last)
                self._next_token(seq, row)
        budget = PREFILL_CHUNK if decoding else runner.n_batch
        ran = bool(decoding)
        for seq in [s for s in self.running if s.status is Status.PREFILL]:
            if budget <= 0:
                break
            if seq.wait is not None:
                self._resolve_wait(seq)
                if seq.wait is not None:
                    continue
            prompt, slot = seq.prompt, seq.slot
            while budget > 0 and seq.n_done < len(prompt) and not seq.cancelled:
                start = seq.n_done
                end = min(len(prompt), start - start % CHUNK + CHUNK)  # aligned: the same cut on every path
                for pos in range(start, end):
                    row = runner.add(prompt[pos], pos, slot.id, pos == len(prompt) - 1)
                self._decode()
                slot.tokens.extend(prompt[start:end])
                slot.n_exact = len(slot.tokens)
                seq.n_done = end
                self.stats["prefill_tokens"] += end - start
                budget -= end - start
                ran = True
            if seq.n_done == len(prompt) and not seq.cancelled:
                seq.status = Status.DECODE
                if seq.params.max_tokens is not None and seq.params.max_tokens <= 0:
                    self._leave(seq, "length")
                else:
                    self._next_token(seq, row)
        return ran

    def _decode(self) -> None:
        rc = self.runner.decode()
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
        self.stats["decode_calls"] += 1

    def _next_token(self, seq: Sequence, row: int) -> None:
        if seq.cancelled:
            return  # leaves at the next step
        model = self.model
        token = self.runner.sample(seq.sampler, row)
        if model.is_eog(token):
            self._leave(seq, "stop")
            return
        seq.n_out += 1
        text, stopped = seq.text.feed(model.piece(token))
        seq.emit(text)
        if stopped:
            self._leave(seq, "stop", flush=False)
        elif seq.params.max_tokens is not None and seq.n_out >= seq.params.max_tokens:
            self._leave(seq, "length")
        elif len(seq.slot.tokens) + 1 >= self.n_ctx:  # prompt + completion reached the context ceiling
            self._leave(seq, "length")
        else:
            seq.last = token

    def _leave(self, seq: Sequence, reason: str | None, flush: bool = True) -> None:
        if seq.status is Status.FINISHED:
            return
        if seq in self.running:
            self.running.remove(seq)
        if seq.sampler is not None:
            self.runner.free_sampler(seq.sampler)
            seq.sampler = None
        self.cache.release(seq, keep=reason in ("stop", "length"))  # a cancelled sequence's cells are freed
        seq.wait = None
        self.stats["completion_tokens"] += seq.n_out
        self.stats["cancelled" if reason is None else "finished"] += 1
        self.on_finish(seq)
        seq.finish(reason, flush)  # last: the handler may read the counters as soon as it sees the end

    def fail_all(self, message: str) -> None:
        self.runner.n = 0  # drop a half-built batch
        for seq in list(self.running) + list(self.waiting):
            self._leave(seq, "error")
        self.waiting.clear()
