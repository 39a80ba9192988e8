"""Admission and batching: which sequences run, what each step decodes, what happens to the results.

One step = one llama_decode holding one token of every decoding sequence plus prompt chunks of
sequences being prefilled. While streams are decoding, prompt chunks are capped at PREFILL_CHUNK
tokens per step, so a long prompt delays the running streams by a bounded amount per token.
"""
from __future__ import annotations

from collections import deque

from hearth.engine.prefix_cache import PrefixCache, lcp
from hearth.engine.sequence import Sequence, Status

PREFILL_CHUNK = 64  # prompt tokens per step while other sequences are decoding
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
            fut, fut_n = self.cache.best_future(seq.prompt)
            n = self.cache.acquire(seq)
            seq.n_done = seq.n_cached = n
            self.stats["cached_prompt_tokens"] += n
            self.stats["cache_hits"] += n > 0
            if fut is not None and fut_n >= n + COALESCE_MIN:
                seq.wait = (fut, fut.seq, fut_n)  # prefill once: copy it when the other gets there
            seq.sampler = self.runner.sampler(seq.params)
            seq.status = Status.PREFILL
            self.running.append(seq)

    def _resolve_wait(self, seq: Sequence) -> None:
        src, owner, n = seq.wait
        if lcp(src.tokens, seq.prompt) >= n:
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
    def schedule(self) -> list:
        """Fill the runner's batch; returns the plan that `postprocess` needs."""
        for seq in [s for s in self.running if s.cancelled]:
            self._leave(seq, None)
        if any(s.cancelled for s in self.waiting):
            for seq in [s for s in self.waiting if s.cancelled]:
                self._leave(seq, None)
            self.waiting = deque(s for s in self.waiting if not s.cancelled)
        self._admit()
        plan = []
        add = self.runner.add
        for seq in self.running:
            if seq.status is Status.DECODE:
                slot = seq.slot
                plan.append((seq, add(seq.last, len(slot.tokens), slot.id, True), 0))
        budget = self.runner.n_batch - len(plan)
        if plan:
            budget = min(budget, PREFILL_CHUNK)
        for seq in self.running:
            if budget <= 0:
                break
            if seq.status is not Status.PREFILL:
                continue
            if seq.wait is not None:
                self._resolve_wait(seq)
                if seq.wait is not None:
                    continue
            start = seq.n_done
            end = min(len(seq.prompt), start + budget)
            sid, prompt, last = seq.slot.id, seq.prompt, len(seq.prompt) - 1
            row = -1
            for pos in range(start, end):
                row = add(prompt[pos], pos, sid, pos == last)
            plan.append((seq, row, end - start))
            budget -= end - start
        return plan

    def postprocess(self, plan: list) -> None:
        model = self.model
        for seq, row, n_prompt in plan:
            slot = seq.slot
            if n_prompt:  # a prompt chunk went in
                slot.tokens.extend(seq.prompt[seq.n_done : seq.n_done + n_prompt])
                seq.n_done += n_prompt
                self.stats["prefill_tokens"] += n_prompt
                if seq.n_done < len(seq.prompt):
                    continue
                seq.status = Status.DECODE
                if seq.params.max_tokens is not None and seq.params.max_tokens <= 0:
                    self._leave(seq, "length")
                    continue
            else:
                slot.tokens.append(seq.last)
            if seq.cancelled:
                continue  # leaves at the next step
            token = self.runner.sample(seq.sampler, row)
            if model.is_eog(token):
                self._leave(seq, "stop")
                continue
            seq.n_out += 1
            text, stopped = seq.text.feed(model.piece(token))
            seq.emit(text)
            if stopped:
                self._leave(seq, "stop", flush=False)
            elif seq.params.max_tokens is not None and seq.n_out >= seq.params.max_tokens:
                self._leave(seq, "length")
            elif len(slot.tokens) >= self.n_ctx:  # no room to decode this token: the context ceiling
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
        self.cache.release(seq, keep=reason is not None)  # a cancelled sequence's cells are freed
        seq.wait = None
        self.stats["completion_tokens"] += seq.n_out
        self.stats["cancelled" if reason is None else "finished"] += 1
        self.on_finish(seq)
        seq.finish(reason, flush)  # last: the handler may read the counters as soon as it sees the end

    def fail_all(self, message: str) -> None:
        for seq in list(self.running) + list(self.waiting):
            self._leave(seq, "length")
        self.waiting.clear()
