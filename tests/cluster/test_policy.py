"""The cluster's routing policy and prefix blocks, without Ray (hearth/cluster/policy.py, prefix.py)."""
from __future__ import annotations

import json
import random

from hearth.cluster import prefix
from hearth.cluster.policy import PrefixPolicy, RoundRobin


def chat(system: str, question: str = "q", model: str = "m") -> prefix.Prefix:
    body = {"model": model, "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}]}
    return prefix.of_request("/v1/chat/completions", json.dumps(body).encode())


def text(seed: int, n: int = 4000) -> str:
    r = random.Random(seed)
    return f"#{seed} " + "".join(r.choice("abcdefgh ") for _ in range(n))


def test_blocks_share_exactly_the_shared_prefix():
    a, b = chat(text(1), "first question"), chat(text(1), "another")
    assert len(a.blocks) == len(b.blocks) >= 15 and a.blocks[:-1] == b.blocks[:-1]
    c = chat(text(2))
    assert a.blocks[0] != c.blocks[0]
    assert chat(text(1), model="other").blocks[0] != a.blocks[0]  # another model has another cache


def test_requests_without_a_prompt_have_no_blocks():
    assert prefix.of_request("/v1/embeddings", b'{"input": "x"}') == prefix.EMPTY
    assert prefix.of_request("/v1/chat/completions", b"{not json") == prefix.EMPTY
    assert prefix.of_request("/v1/chat/completions", b'[1, 2]') == prefix.EMPTY
    assert prefix.of_request("/v1/chat/completions", b'{"messages": "x"}') == prefix.EMPTY
    long = json.dumps({"model": "m", "prompt": [text(3), "other"]}).encode()
    assert len(prefix.of_request("/v1/completions", long).blocks) >= 15


def test_the_same_prefix_follows_its_replica_and_waits_for_it():
    p = PrefixPolicy(imbalance=4, rng=random.Random(0))
    p.update(["a", "b"])
    first = p.choose(chat(text(1)), ["a", "b"], key=1)
    home = first[0][0]
    p.routed(1, home, chat(text(1)))
    assert p.choose(chat(text(1), "again"), ["a", "b"], key=2) == [[home]]  # busy, but only one ahead
    assert p.pins == {2: home}


def test_new_prefixes_spread_over_replicas():
    p = PrefixPolicy(rng=random.Random(0))
    p.update(["a", "b"])
    for rid in ("a", "b"):
        p.set_capacity(rid, 2)  # what 3 KV slots hold (router.py: slots - 1)
    homes = []
    for seed in range(4):
        ranks = p.choose(chat(text(seed)), ["a", "b"], key=seed)
        p.routed(seed, ranks[0][0], chat(text(seed)))
        p.completed(ranks[0][0])
        homes.append(ranks[0][0])
    assert sorted(homes) == ["a", "a", "b", "b"]
    for seed in range(4):  # and each comes back to its own
        assert p.choose(chat(text(seed), "later"), ["a", "b"], key=10 + seed) == [[homes[seed]]]
        p.forget(10 + seed)


def test_affinity_yields_when_the_load_gap_reaches_the_threshold():
    p = PrefixPolicy(imbalance=2, rng=random.Random(0))
    p.update(["a", "b"])
    p.routed(0, "a", chat(text(1)))
    assert p.choose(chat(text(1)), ["a", "b"], key=1) == [["a"]]  # gap 1
    ranks = p.choose(chat(text(1)), ["a", "b"], key=2)  # gap 2: a has 1 running + 1 waiting
    assert ranks == [["b"], ["a"]] and p.decisions["imbalanced"] == 1


def test_the_model_of_a_cache_holds_as_many_prompts_as_slots():
    p = PrefixPolicy(rng=random.Random(0))
    p.update(["a"])
    p.set_capacity("a", 2)
    for seed in (1, 2, 3):
        p.routed(seed, "a", chat(text(seed)))
    assert p.matched("a", chat(text(1)).blocks) == 0  # evicted, least recently used
    assert p.matched("a", chat(text(3)).blocks) > 0
    p.routed(4, "a", chat(text(3), "a later turn"))  # takes its prompt's entry over
    assert len(p.replicas["a"].entries) == 2 and p.matched("a", chat(text(2)).blocks) > 0


def test_a_dead_replica_is_forgotten_with_its_pins():
    p = PrefixPolicy(rng=random.Random(0))
    p.update(["a", "b"])
    p.routed(1, "a", chat(text(1)))
    p.choose(chat(text(1)), ["a", "b"], key=2)
    p.remove("a")
    assert p.pins == {} and p.choose(chat(text(1)), ["b"], key=3) == [["b"]]


def test_short_shared_prefixes_do_not_bind():
    p = PrefixPolicy(min_match_chars=2048, rng=random.Random(0))
    p.update(["a", "b"])
    p.routed(1, "a", chat(text(1, n=1000)))
    for _ in range(3):
        p.routed(9, "a", chat(text(9)))  # a is the busier one
    assert p.choose(chat(text(1, n=1000)), ["a", "b"], key=2)[0] == ["b"]


def test_round_robin_takes_turns_and_spills_to_the_rest():
    rr = RoundRobin()
    firsts = [rr.choose(["b", "a"])[0][0] for _ in range(4)]
    assert firsts == ["a", "b", "a", "b"]
    assert rr.choose(["a", "b"]) == [["a"], ["b"]]
