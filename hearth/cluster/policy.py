"""The prefix-affinity policy, apart from Ray: which replica a request goes to.

The router keeps a model of each replica's prefix cache: the prompts it sent there lately, least
recently used first out, as many as the replica's cache holds: one fewer than its KV slots (a Hearth
slot keeps one sequence's cells, and a new request always takes the lowest idle slot, copying its
prefix there from the slot that holds it; the replica reports its slot count). A prompt that extends a remembered one (a later turn, the same
system prompt with another question) takes its entry over, as Hearth's cache takes a slot over in place.

A request goes to the replica remembering the longest prefix of its prompt, and waits for it while
that replica is busy, unless the replica's load (requests running there plus requests the router holds
for it) exceeds the least loaded replica's by `imbalance` or more: waiting behind a few requests that
reuse their prefix costs less than computing a ~1,000-token prefix again and evicting another
replica's prompt. A request whose prefix no replica remembers (or that is too short to matter:
`min_match_chars`) goes to the least loaded replica, then the one remembering fewest prompts, so
that new prompts spread; if that one is full, any replica with a free slot takes it.
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from hearth.cluster.prefix import BLOCK, Prefix

DEFAULT_CAPACITY = 1  # prompts, until the replica reports its slots (Hearth's default with one sequence: 2 slots)
ROUTERS: dict = {}  # app name -> its Ray router (router.py), in the ingress's process: GET /cluster/stats reads it


@dataclass
class ReplicaModel:
    capacity: int = DEFAULT_CAPACITY
    entries: list[tuple[int, ...]] = field(default_factory=list)  # most recently used last
    in_flight: int = 0  # routed, not completed


def common_blocks(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class PrefixPolicy:
    def __init__(self, *, min_match_chars: int = 4 * BLOCK, imbalance: int = 4, rng: random.Random | None = None):
        self.min_match_blocks = max(1, -(-min_match_chars // BLOCK))
        self.imbalance = imbalance
        self.replicas: dict[str, ReplicaModel] = {}
        self.pins: dict[object, str] = {}  # request key -> replica it waits for
        self.rng = rng or random.Random()
        self.decisions = {"affinity": 0, "new_prefix": 0, "no_prefix": 0, "imbalanced": 0}

    # the replica set ---------------------------------------------------------------------------
    def update(self, replica_ids) -> None:
        ids = set(replica_ids)
        for rid in ids - self.replicas.keys():
            self.replicas[rid] = ReplicaModel()
        for rid in self.replicas.keys() - ids:
            self.remove(rid)

    def remove(self, replica_id: str) -> None:
        """A replica gone (died, scaled down): its cache is gone with it."""
        self.replicas.pop(replica_id, None)
        self.pins = {k: r for k, r in self.pins.items() if r != replica_id}

    def set_capacity(self, replica_id: str, slots: int) -> None:
        model = self.replicas.get(replica_id)
        if model is not None and slots > 0:
            model.capacity = slots
            del model.entries[:-slots]

    # reading the model -------------------------------------------------------------------------
    def matched(self, replica_id: str, blocks: tuple[int, ...]) -> int:
        model = self.replicas.get(replica_id)
        return max((common_blocks(e, blocks) for e in model.entries), default=0) if model else 0

    def load(self, replica_id: str, exclude=None) -> int:
        model = self.replicas.get(replica_id)
        waiting = sum(1 for k, r in self.pins.items() if r == replica_id and k != exclude)
        return (model.in_flight if model else 0) + waiting

    # deciding ----------------------------------------------------------------------------------
    def choose(self, prefix: Prefix, candidates: list[str], key=None) -> list[list[str]]:
        """Ranks of candidate replica ids, most preferred first (Ray Serve tries each rank in turn)."""
        candidates = [c for c in candidates if c in self.replicas] or list(candidates)
        if not candidates:
            return []
        loads = {c: self.load(c, exclude=key) for c in candidates}
        least = min(loads.values())
        if prefix.blocks:
            matches = {c: self.matched(c, prefix.blocks) for c in candidates}
            best = max(candidates, key=lambda c: (matches[c], -loads[c]))
            if matches[best] >= self.min_match_blocks:
                if loads[best] - least < self.imbalance:
                    self.decisions["affinity"] += key not in self.pins
                    if key is not None:
                        self.pins[key] = best
                    return [[best]]
                self.decisions["imbalanced"] += 1
            else:
                self.decisions["new_prefix"] += 1
        else:
            self.decisions["no_prefix"] += 1
        self.pins.pop(key, None)
        tie = {c: self.rng.random() for c in candidates}
        order = sorted(candidates, key=lambda c: (loads[c], len(self.replicas[c].entries) if c in self.replicas else 0,
                                                  tie[c]))
        if prefix.blocks:
            self.remember(order[0], prefix.blocks)  # before it is routed, so that its twins follow it
        return [order[:1], order[1:]] if len(order) > 1 else [order]

    def remember(self, replica_id: str, blocks: tuple[int, ...]) -> None:
        model = self.replicas.get(replica_id)
        if model is None or not blocks:
            return
        for i, entry in enumerate(model.entries):
            n = common_blocks(entry, blocks)
            if n == len(blocks) and n <= len(entry):  # already there (this prompt, or one it prefixes)
                model.entries.append(model.entries.pop(i))
                return
            if 2 * n >= len(entry):  # extends or mostly repeats it: takes its slot over
                model.entries.pop(i)
                break
        model.entries.append(blocks)
        del model.entries[:-model.capacity]

    # what happened -----------------------------------------------------------------------------
    def routed(self, key, replica_id: str, prefix: Prefix) -> None:
        self.pins.pop(key, None)
        model = self.replicas.get(replica_id)
        if model is None:
            return
        model.in_flight += 1
        self.remember(replica_id, prefix.blocks)

    def completed(self, replica_id: str) -> None:
        model = self.replicas.get(replica_id)
        if model is not None and model.in_flight > 0:
            model.in_flight -= 1

    def forget(self, key) -> None:
        """A request that left before it was routed (the client went away)."""
        self.pins.pop(key, None)


class RoundRobin:
    """The baseline a plain load balancer gives: replicas in turn, the next free one if that one is full."""

    def __init__(self):
        self._turn = itertools.count()

    def choose(self, candidates: list[str]) -> list[list[str]]:
        if not candidates:
            return []
        ordered = sorted(candidates)
        i = next(self._turn) % len(ordered)
        first, rest = ordered[i], ordered[i + 1:] + ordered[:i]
        return [[first], rest] if rest else [[first]]
