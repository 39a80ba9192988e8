"""The global prefix cache: every KV stream (llama seq id) is a slot that remembers its tokens.

A slot holds the KV cells of positions 0..len(tokens)-1 of one token sequence. Running sequences
own their slot; finished ones leave their cells behind for the next request to reuse. A new request
reuses the longest common prefix found in ANY slot, running or idle: the lowest idle slot is taken
over in place (its tail trimmed), any other slot's prefix is copied into it (`worth_reusing`). Eviction is least
recently used among idle slots only, so a running sequence's cells are never touched.

Exactness: llama.cpp's CPU kernels round differently in calls of fewer than MIN_CALL rows than in
larger ones, and within each of the two regimes a row's result does not depend on the call's size or
cut (measured here with SmolLM2 Q4_1: every cut of a 1,031-token prompt into calls of 64..512 rows
gave bit-identical logits, and so did every cut into calls of 7..48 rows; the two differ). So which
regime computes a position depends only on the prompt: positions before `split(n)` in big calls, the
rest (the last one or two MIN_CALL-blocks, 65..128 tokens) in small ones. A slot remembers the split
its cells were computed with; a prompt with the same split may reuse all of them (a system prompt
shared by questions of similar length: every shared token), any other prompt only big-call cells
within its own big part, and only where the rest of its big part is empty or a big call again
(`reusable`). A reused prefix is then bit-identical to the one the request would have computed.
A repeated prompt reuses all but its last token, however short it is: llama-server does the same.
"""
from __future__ import annotations

MIN_CALL = 64  # rows from which a call takes the large-batch kernels
SMALL_CALL = 32  # rows per call in the small regime


def split(n_prompt: int) -> int:
    """Where an n_prompt-token prompt's small calls start: before the block holding its last token
    and the block before that (0: the prompt is all small calls)."""
    return max(0, ((n_prompt - 1) // MIN_CALL - 1) * MIN_CALL)


def reusable(n_common: int, n_exact: int, cells_split: int, n_prompt: int) -> int:
    """How many cached cells a prompt may take from a slot holding n_common of its tokens, n_exact of
    them prompt cells computed with split `cells_split`."""
    big = split(n_prompt)
    if cells_split == big:  # every cell in the regime this prompt would compute it in
        n = min(n_common, n_exact, n_prompt - 1)
    else:  # big-call cells only, within this prompt's big part
        n = min(n_common, n_exact, cells_split, big)
    if 0 < big - n < MIN_CALL:  # the rest of the big part must be one big call or nothing
        n = max(0, big - MIN_CALL)
    return n


def worth_reusing(n: int, n_src: int, in_place: bool) -> bool:
    """Whether to reuse n cells of a slot holding n_src. A copy costs ~5 us per cell of the source
    against ~3 ms per prompt row evaluated (measured here; the margin also covers faster CPUs). Taking
    a slot over in place costs nothing but drops its other cells: only when most of them are reused."""
    return n >= SMALL_CALL or (2 * n >= n_src if in_place else 64 * n >= n_src)


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
    __slots__ = ("id", "tokens", "n_exact", "split", "seq", "stamp")

    def __init__(self, id: int):
        self.id = id
        self.tokens: list[int] = []  # whose KV cells this slot holds, positions 0..n-1
        self.n_exact = 0  # leading positions computed as prompt (reusable; generated ones are not)
        self.split = 0  # the split those prompt cells were computed with (see split())
        self.seq = None  # the running Sequence that owns it, or None (idle: a cache entry)
        self.stamp = 0  # last use, for LRU


class PrefixCache:
    def __init__(self, runner, n_slots: int):
        self.runner = runner
        self.slots = [Slot(i) for i in range(n_slots)]
        self._clock = 0
        self.evictions = 0
        self.copies = 0
        self.swaps = 0  # compactions

    def has_idle(self) -> bool:
        return any(s.seq is None for s in self.slots)

    def best(self, prompt: list[int], exclude=None) -> tuple[Slot | None, int]:
        """The slot holding the longest prefix of `prompt` worth copying."""
        best, best_n = None, 0
        for s in self.slots:
            if s is exclude or not s.n_exact:
                continue
            n = reusable(lcp(s.tokens, prompt), s.n_exact, s.split, len(prompt))
            if not worth_reusing(n, len(s.tokens), in_place=False):
                n = 0
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
            n = reusable(lcp(q.prompt, prompt), len(q.prompt), split(len(q.prompt)), len(prompt))
            if n > best_n:
                best, best_n = s, n
        return best, best_n

    def acquire(self, seq, reuse: bool = True) -> int:
        """Give `seq` the lowest idle slot, holding the longest cached prefix of its prompt (none when
        not `reuse`); returns that length.

        Running sequences are packed into the lowest stream ids (see `compact`). What the lowest idle
        slot cached moves to the least recently used idle slot, so eviction stays LRU; it is taken over
        in place only when the prompt reuses most of it."""
        self._clock += 1
        idle = [s for s in self.slots if s.seq is None]
        target = min(idle, key=lambda s: s.id)
        src, n = self.best(seq.prompt) if reuse else (None, 0)
        in_place = src is target and worth_reusing(n, len(target.tokens), in_place=True)
        if target.tokens and not in_place:  # keep its entry: move it over the least recently used idle one
            others = [s for s in idle if s is not target and s is not src]
            victim = min(others, key=lambda s: (len(s.tokens) > 0, s.stamp)) if others else None
            if victim is not None and (not victim.tokens or victim.stamp < target.stamp):
                self.evictions += bool(victim.tokens)
                self._move(target, victim)
                if src is target:
                    src = victim
            else:
                self.evictions += 1
                in_place = src is target  # its entry goes anyway: keep what this prompt shares with it
        if in_place:
            if len(target.tokens) > n:
                self.runner.seq_trim(target.id, n)
                del target.tokens[n:]
            target.n_exact = min(target.n_exact, n)
        else:
            self.load(target, src, n)
        target.split = split(len(seq.prompt))  # its cells [0, n) agree with this split (reusable())
        target.seq = seq
        target.stamp = self._clock
        seq.slot = target
        return n

    def compact(self) -> None:
        """Keep the running sequences in consecutive streams: llama.cpp runs a batch as one graph per
        run of consecutive stream ids, and a decode step of 8 with a hole among them cost ~15% more
        (measured here). Moves the highest running sequence into the lowest hole (swapping the cells,
        so the idle slot's cache entry is kept)."""
        running = [s for s in self.slots if s.seq is not None]
        if not running:
            return
        low, top = min(s.id for s in running), max(running, key=lambda s: s.id)
        if top.id - low + 1 == len(running):
            return
        hole = min((s for s in self.slots if s.seq is None and low < s.id < top.id), key=lambda s: s.id)
        self.runner.seq_swap(top.id, hole.id)
        top.id, hole.id = hole.id, top.id
        self.swaps += 1

    def _move(self, src: Slot, dst: Slot) -> None:
        """dst takes over src's cached cells (src is about to be overwritten)."""
        self.runner.seq_copy_prefix(src.id, dst.id, len(src.tokens))
        dst.tokens, dst.n_exact, dst.split, dst.stamp = src.tokens, src.n_exact, src.split, src.stamp
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
