"""The global prefix cache: every KV stream (llama seq id) is a slot that remembers its tokens.

A slot holds the KV cells of positions 0..len(tokens)-1 of one token sequence. Running sequences
own their slot; finished ones leave their cells behind for the next request to reuse. A new request
reuses the longest common prefix found in ANY slot, running or idle: an idle slot is taken over in
place (its tail trimmed), a running one is copied (`seq_cp`) into a free slot. Eviction is least
recently used among idle slots only, so a running sequence's cells are never touched.

Exactness: llama.cpp's CPU kernels round differently in calls of fewer than MIN_CALL rows than in
larger ones, and within each of the two regimes a row's result does not depend on the call's size
(measured here with SmolLM2 Q4_1: every cut of a 1,031-token prompt into calls of 64..512 rows gave
bit-identical logits, and so did every cut into calls of 7..48 rows; the two differ). So a prompt's
whole MIN_CALL-blocks before its last token (`big_part`) are evaluated in calls of whole blocks (up
to n_batch rows), and the rest, 1..MIN_CALL tokens, in calls of SMALL_CALL rows at most. Which regime
computes a position then depends only on the prompt; only big-call cells (`n_exact`) are reused, cut
to a block boundary, so a reused prefix is bit-identical to the one the request would have computed.
"""
from __future__ import annotations

MIN_CALL = 64  # rows from which a call takes the large-batch kernels; also the reuse granularity
SMALL_CALL = 32  # rows per call for a prompt's last, partial block


def big_part(n_prompt: int) -> int:
    """Leading positions of an n_prompt-token prompt evaluated in big calls: its whole blocks before its last token."""
    return (n_prompt - 1) // MIN_CALL * MIN_CALL


def reusable(n_common: int, n_exact: int, n_prompt: int) -> int:
    """How many cached cells a prompt may take from a slot holding n_common of its tokens, of which
    n_exact were computed by big calls: within both big parts, at a block boundary."""
    n = min(n_common, n_exact, big_part(n_prompt))
    return n - n % MIN_CALL


def lcp(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix (binary search over C-level slice compares)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo], a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


class Slot:
    __slots__ = ("id", "tokens", "n_exact", "seq", "stamp")

    def __init__(self, id: int):
        self.id = id
        self.tokens: list[int] = []  # whose KV cells this slot holds, positions 0..n-1
        self.n_exact = 0  # leading positions computed by big calls (reusable)
        self.seq = None  # the running Sequence that owns it, or None (idle: a cache entry)
        self.stamp = 0  # last use, for LRU


class PrefixCache:
    def __init__(self, runner, n_slots: int):
        self.runner = runner
        self.slots = [Slot(i) for i in range(n_slots)]
        self._clock = 0
        self.evictions = 0
        self.copies = 0

    def has_idle(self) -> bool:
        return any(s.seq is None for s in self.slots)

    def best(self, prompt: list[int], exclude=None) -> tuple[Slot | None, int]:
        """The slot holding the longest reusable prefix of `prompt`."""
        best, best_n = None, 0
        for s in self.slots:
            if s is exclude or not s.n_exact:
                continue
            n = reusable(lcp(s.tokens, prompt), s.n_exact, len(prompt))
            if n > best_n or (n == best_n and n and best is not None and best.seq is not None and s.seq is None):
                best, best_n = s, n
        return best, best_n

    def best_future(self, prompt: list[int]):
        """A sequence still prefilling a prompt that shares more with `prompt` than is cached yet."""
        best, best_n = None, 0
        for s in self.slots:
            q = s.seq
            if q is None or q.n_done >= len(q.prompt) or q.wait is not None:
                continue
            n = reusable(lcp(q.prompt, prompt), big_part(len(q.prompt)), len(prompt))
            if n > best_n:
                best, best_n = s, n
        return best, best_n

    def acquire(self, seq) -> int:
        """Give `seq` the lowest idle slot, holding the longest cached prefix of its prompt; returns
        that length.

        Running sequences are packed into the lowest stream ids: measured here, a decode step costs
        ~20% more CPU when the running sequences sit in streams 8-15 rather than 0-7 (not yet
        traced inside llama.cpp). What the lowest idle slot cached moves to the least recently used
        idle slot, so eviction stays LRU."""
        self._clock += 1
        src, n = self.best(seq.prompt)
        idle = [s for s in self.slots if s.seq is None]
        target = min(idle, key=lambda s: s.id)
        if src is target:  # take the idle cache entry over in place
            if len(target.tokens) > n:
                self.runner.seq_trim(target.id, n)
                del target.tokens[n:]
            target.n_exact = min(target.n_exact, n)
        else:
            others = [s for s in idle if s is not target and s is not src]
            victim = min(others, key=lambda s: (len(s.tokens) > 0, s.stamp)) if others else None
            if target.tokens and victim is not None and (not victim.tokens or victim.stamp < target.stamp):
                if victim.tokens:
                    self.evictions += 1
                self._move(target, victim)
            elif target.tokens:
                self.evictions += 1
            self.load(target, src, n)
        target.seq = seq
        target.stamp = self._clock
        seq.slot = target
        return n

    def _move(self, src: Slot, dst: Slot) -> None:
        """dst takes over src's cached cells (src is about to be overwritten)."""
        self.runner.seq_copy_prefix(src.id, dst.id, len(src.tokens))
        dst.tokens, dst.n_exact, dst.stamp = src.tokens, src.n_exact, src.stamp
        self.copies += 1

    def load(self, target: Slot, src: Slot | None, n: int) -> None:
        """Make `target` hold the first n tokens of `src` (n == 0: empty it)."""
        if src is None or n == 0:
            self.runner.seq_clear(target.id)
            target.tokens = []
            target.n_exact = 0
        else:
            self.runner.seq_copy_prefix(src.id, target.id, n)
            target.tokens = src.tokens[:n]
            target.n_exact = n
            self.copies += 1
        if src is not None:
            src.stamp = self._clock

    def release(self, seq, keep: bool = True) -> None:
        slot = seq.slot
        if slot is None:
            return
        seq.slot = None
        slot.seq = None
        self._clock += 1
        slot.stamp = self._clock
        if not keep:
            self.runner.seq_clear(slot.id)
            slot.tokens = []
            slot.n_exact = 0

    def cached_tokens(self) -> int:
        return sum(len(s.tokens) for s in self.slots if s.seq is None)
