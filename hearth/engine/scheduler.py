"""Admission and batch building: which sequences run, and what each step evaluates.

A step's plan is a joint call (one llama_decode: one token of every decoding sequence, and small
prompt chunks while the call stays under MIN_CALL rows), then the other prompt chunks, one
llama_decode each, cut as prefix_cache.py explains: big calls, then the prompt's tail in small ones.
A small chunk gives the same logits in the joint call as alone (both are calls of the small regime,
and each sequence has a KV stream of its own), and a row costs far less there than in a call of its
own (~3 ms against ~7 ms here). While streams are decoding, prompt evaluation is capped at about
PREFILL_BUDGET tokens per step, so a long prompt delays the running streams by a bounded amount per
token. The scheduler never runs the model: the runner executes the plan, then `postprocess` records
what it put in the KV cache.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from hearth.engine.api import FinishReason
from hearth.engine.prefix_cache import MIN_CALL, SMALL_CALL, PrefixCache, lcp, split
from hearth.engine.sequence import Sequence, Status

PREFILL_BUDGET = MIN_CALL  # prompt tokens per step while other sequences are decoding (one big call)
COALESCE_MIN = 16  # wait for a concurrent prefill only when it saves at least this many tokens


@dataclass(slots=True)
class Chunk:
    """Prompt positions [start, end) of `seq`, evaluated in one llama_decode. `sample`: the prompt's
    last chunk, whose last row gives the first token. `done` is set by the runner once evaluated."""

    seq: Sequence
    start: int
    end: int
    sample: bool
    done: bool = False


@dataclass(slots=True)
class Plan:
    decode: list[Sequence] = field(default_factory=list)  # one token each, in the joint call
    joint: list[Chunk] = field(default_factory=list)  # small chunks in the joint call (each a sequence's first this step)
    prefill: list[Chunk] = field(default_factory=list)  # after it, in order, one llama_decode each

    def __bool__(self) -> bool:
        return bool(self.decode or self.joint or self.prefill)


def prompt_calls(start: int, n: int, budget: int, max_rows: int) -> list[tuple[int, int]]:
    """This step's calls for prompt positions [start, n), about `budget` rows: the big part in calls of
    MIN_CALL..max_rows rows that never leave a shorter rest of it, then the rest in SMALL_CALLs."""
    big, calls = split(n), []
    per_call = max(MIN_CALL, min(budget, max_rows))
    while budget > 0 and start < n:
        if start < big:
            rest = big - start
            size = min(rest, per_call)
            if 0 < rest - size < MIN_CALL:
                size = rest if rest <= max_rows else rest - MIN_CALL
        else:
            size = min(n - start, SMALL_CALL)
        calls.append((start, start + size))
        budget -= size
        start += size
    return calls


class Scheduler:
    def __init__(self, runner, cache: PrefixCache, n_parallel: int, stats: dict, on_finish, outbox):
        self.runner = runner
        self.cache = cache
        self.n_parallel = n_parallel
        self.stats = stats
        self.on_finish = on_finish  # called once per sequence that leaves the engine
        self.outbox = outbox
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []

    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    # admission --------------------------------------------------------------------------------
    def _admit(self) -> None:
        while self.waiting and len(self.running) < self.n_parallel and self.cache.has_idle():
            seq = self.waiting.popleft()
            if seq.cancelled:
                self.finish(seq, FinishReason.CANCELLED)
                continue
            seq.status = Status.PREFILL
            seq.stream.started = True  # a request whose time runs out from here on ends as "length", not 503
            self.running.append(seq)  # before anything that can raise, so that fail_all ends it
            fresh = seq.prompt_out is not None  # prompt logprobs need every position's logits: reuse nothing
            fut, fut_n = (None, 0) if fresh else self.cache.best_future(seq.prompt)
            n = self.cache.acquire(seq, reuse=not fresh)
            seq.n_done = seq.n_cached = seq.stream.cached_tokens = n
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
            seq.n_done = seq.n_cached = seq.stream.cached_tokens = got

    # one step ---------------------------------------------------------------------------------
    def schedule(self) -> Plan:
        """Drop cancelled sequences, admit waiting ones, and plan the step."""
        for seq in [s for s in self.running if s.cancelled]:
            self.finish(seq, FinishReason.CANCELLED)
        if any(s.cancelled for s in self.waiting):
            for seq in [s for s in self.waiting if s.cancelled]:
                self.finish(seq, FinishReason.CANCELLED)
            self.waiting = deque(s for s in self.waiting if not s.cancelled)
        self._admit()
        self.cache.compact()
        plan = Plan(decode=[s for s in self.running if s.status is Status.DECODE])
        budget = PREFILL_BUDGET if plan.decode else self.runner.n_batch
        joint_rows = len(plan.decode)
        for seq in [s for s in self.running if s.status is Status.PREFILL]:
            if budget <= 0:
                break
            if seq.wait is not None:
                self._resolve_wait(seq)
                if seq.wait is not None:
                    continue
            n = len(seq.prompt)
            last = n if seq.params.max_tokens is None or seq.params.max_tokens > 0 else -1  # max_tokens 0: no sample
            for start, end in prompt_calls(seq.n_done, n, budget, self.runner.n_batch):
                budget -= end - start
                room = MIN_CALL - 1 - joint_rows
                if start == seq.n_done and start >= split(n) and room > 0:  # small, and nothing of it before
                    cut = min(end, start + room)
                    plan.joint.append(Chunk(seq, start, cut, sample=cut == last))
                    joint_rows += cut - start
                    start = cut
                if start < end:
                    plan.prefill.append(Chunk(seq, start, end, sample=end == last))
        return plan

    def postprocess(self, plan: Plan) -> None:
        """Record what the runner put in the KV cache; a fully evaluated prompt starts decoding."""
        for seq in plan.decode:
            seq.slot.tokens.append(seq.last)
        self.stats["decode_calls"] += bool(plan.decode or plan.joint) + sum(c.done for c in plan.prefill)
        for c in plan.joint + plan.prefill:
            if not c.done:
                continue
            seq, slot = c.seq, c.seq.slot
            slot.tokens.extend(seq.prompt[c.start : c.end])
            slot.n_exact = c.end
            seq.n_done = c.end
            self.stats["prefill_tokens"] += c.end - c.start
            if c.end == len(seq.prompt):
                seq.status = Status.DECODE
                seq.prompt_evaluated(self.outbox)
                if not c.sample:  # max_tokens 0: the prompt only
                    self.finish(seq, FinishReason.LENGTH)

    # leaving ----------------------------------------------------------------------------------
    def finish(self, seq: Sequence, reason: FinishReason, flush: bool = True) -> None:
        """`seq` leaves the engine: its sampler is freed, its KV cells stay cached (freed if it was
        cancelled or failed), and its stream gets the rest of its output and its end."""
        if seq.status is Status.FINISHED:
            return
        if seq in self.running:
            self.running.remove(seq)
        if seq.sampler is not None:
            self.runner.free_sampler(seq.sampler)
            seq.sampler = None
        kept = reason is not FinishReason.CANCELLED and reason is not FinishReason.ERROR
        self.cache.release(seq, keep=kept)
        seq.wait = None
        self.stats["completion_tokens"] += seq.n_out
        self.stats["cancelled" if reason is FinishReason.CANCELLED else "finished"] += 1
        self.on_finish(seq)
        seq.finish(reason, self.outbox, flush)  # last: the handler may read the counters as soon as it sees the end

    def fail_all(self, message: str) -> None:
        self.runner.n = 0  # drop a half-built batch
        for seq in list(self.running) + list(self.waiting):
            self.finish(seq, FinishReason.ERROR)
        self.waiting.clear()
        self.outbox.flush()
