"""The global prefix cache: every KV stream (llama seq id) is a slot that remembers its tokens.

A slot holds the KV cells of positions 0..len(tokens)-1 of one token sequence. Running sequences
own their slot; finished ones leave their cells behind for the next request to reuse. A new request
reuses the longest common prefix found in ANY slot, running or idle: an idle slot is taken over in
place (its tail trimmed), a running one is copied (`seq_cp`) into a free slot. Eviction is least
recently used among idle slots only, so a running sequence's cells are never touched.

Exactness: llama.cpp's CPU kernels round differently depending on how many rows a call holds, so
prompts are always evaluated in chunks aligned to multiples of CHUNK positions, and only cells that
such chunks computed (`n_exact`: prompt tokens, not generated ones) are reused, cut down to a CHUNK
boundary. A reused prefix is then bit-identical to the one the request would have computed itself.
"""
from __future__ import annotations

CHUNK = 32  # prompt evaluation granularity (positions [k*CHUNK, (k+1)*CHUNK) in one call)


def usable(n: int) -> int:
    return n - n % CHUNK


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
        self.n_exact = 0  # leading positions computed by aligned prompt chunks (reusable)
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
        """The slot holding the longest prefix of `prompt` (at most len-1: the last token is evaluated)."""
        limit = len(prompt) - 1
        best, best_n = None, 0
        for s in self.slots:
            if s is exclude or not s.tokens:
                continue
            n = usable(min(lcp(s.tokens, prompt), limit, s.n_exact))
            if n > best_n or (n == best_n and n and best is not None and best.seq is not None and s.seq is None):
                best, best_n = s, n
        return best, best_n

    def best_future(self, prompt: list[int]):
        """A sequence still prefilling a prompt that shares more with `prompt` than is cached yet."""
        limit = len(prompt) - 1
        best, best_n = None, 0
        for s in self.slots:
            q = s.seq
            if q is None or q.n_done >= len(q.prompt) or q.wait is not None:
                continue
            n = usable(min(lcp(q.prompt, prompt), limit))
            if n > best_n:
                best, best_n = s, n
        return best, best_n

    def acquire(self, seq, reuse: bool = True) -> int:
        """Give `seq` the lowest idle slot, holding the longest cached prefix of its prompt (none when
        not `reuse`); returns that length.

        Running sequences are packed into the lowest stream ids: measured here, a decode step costs
        ~20% more CPU when the running sequences sit in streams 8-15 rather than 0-7 (not yet
        traced inside llama.cpp). What the lowest idle slot cached moves to the least recently used
        idle slot, so eviction stays LRU."""
        self._clock += 1
        src, n = self.best(seq.prompt) if reuse else (None, 0)
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
