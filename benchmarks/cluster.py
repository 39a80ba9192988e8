"""Prefix-aware routing against round-robin on Hearth replicas under Ray Serve (issue 21), in one run.

    python -m benchmarks.cluster [--replicas 2] [--requests 70] [--clients 4] [--prompts 4] ...

For each router in turn (`--routers`, default prefix then round-robin) it deploys a fresh application of
`--replicas` Hearth replicas (one llama.cpp thread, one sequence and `--slots` 3 KV streams each: a new
request always takes the lowest idle stream, copying its prefix there from the stream that holds it, so
a replica's cache holds slots - 1 = two distinct prompts), then sends the same `--requests` requests, in
the same random order, from `--clients` concurrent clients: each request is one of `--prompts` distinct
system prompts of ~1,000 tokens and a short question of its own, streamed, `--max-tokens` tokens.

Figures per router:
- hit rate: requests that took at least half of their prompt from the replica's prefix cache (in
  practice the whole ~1,000-token system prompt, or nothing but a few template tokens), over the
  requests, from the replicas' own engine counters around each request (`HearthReplica._count_reuse`:
  exact with one slot per replica); also the share of all prompt tokens reused. The engine's
  `cache_hits` counter is reported beside it: it counts any reuse, a few shared template tokens too;
- TTFT: client-side, from sending the request to the first content token of the stream (median, p90);
- share: the fraction of the requests each replica answered (the `x-hearth-replica` header).
Targets (issue 21): hit rate >= 85% with affinity and <= 60% round-robin; median TTFT with affinity at most
half of round-robin's; no replica above 70% of the requests.

It writes `--out`.json and `--out`.md (default docs/reports/cluster), stamped with the commit, the date, the
machine (cores, load average before and after, sched_autogroup_enabled) and the command. Not a test:
the figures depend on the machine; run it on a quiet one.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from benchmarks import stamp

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"hit_prefix": 0.85, "hit_round_robin": 0.60, "ttft_ratio": 0.5, "max_share": 0.70}
TOPICS = ["astronomy", "cooking", "maritime law", "gardening", "railways", "chess", "beekeeping", "pottery"]
WORDS = ("river stone lantern copper meadow harbor violet engine ladder orchard thunder pencil canyon "
         "marble falcon velvet ember glacier compass saddle quartz willow beacon tundra").split()


def system_prompt(i: int, words: int) -> str:
    """A distinct ~`words`-token system prompt; the first words already differ between prompts."""
    r = random.Random(1000 + i)
    body = " ".join(r.choice(WORDS) for _ in range(words))
    return (f"You are assistant number {i}, an expert in {TOPICS[i % len(TOPICS)]}. Reference notes {i}: {body}. "
            "Answer in one short sentence.")


def workload(n_requests: int, n_prompts: int, seed: int) -> list[int]:
    """Which prompt each request carries: as even as n allows, in random order."""
    order = [i % n_prompts for i in range(n_requests)]
    random.Random(seed).shuffle(order)
    return order


async def one_request(client: httpx.AsyncClient, url: str, k: int, prompt_id: int, prompts: list[str],
                      max_tokens: int) -> dict:
    body = {"model": "bench", "stream": True, "max_tokens": max_tokens, "temperature": 0,
            "messages": [{"role": "system", "content": prompts[prompt_id]},
                         {"role": "user", "content": f"Question {k}: what is this about?"}]}
    t0 = time.perf_counter()
    ttft, status, replica, error = None, None, None, None
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
        status, replica = r.status_code, r.headers.get("x-hearth-replica")
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if "error" in event:
                error = event["error"]
                continue
            delta = event["choices"][0]["delta"] if event.get("choices") else {}
            if ttft is None and (delta.get("content") or event["choices"][0].get("finish_reason")):
                ttft = time.perf_counter() - t0
    return {"k": k, "prompt": prompt_id, "status": status, "replica": replica, "ttft_s": ttft,
            "total_s": time.perf_counter() - t0, "error": error}


async def drive(url: str, order: list[int], prompts: list[str], clients: int, max_tokens: int) -> list[dict]:
    queue: asyncio.Queue = asyncio.Queue()
    for k, pid in enumerate(order):
        queue.put_nowait((k, pid))
    results: list[dict] = []

    async def client_loop():
        async with httpx.AsyncClient(timeout=600) as client:
            while not queue.empty():
                k, pid = queue.get_nowait()
                results.append(await one_request(client, url, k, pid, prompts, max_tokens))

    await asyncio.gather(*(client_loop() for _ in range(clients)))
    return sorted(results, key=lambda r: r["k"])


def cluster_stats(url: str, expect_requests: int, timeout: float = 15.0) -> dict:
    """The replicas' engine counters once they all report the requests (routing stats lag ~0.5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = httpx.get(f"{url}/cluster/stats", timeout=10).json()
        seen = sum(s.get("requests", 0) for s in stats["replicas"].values())
        if seen >= expect_requests or time.monotonic() > deadline:
            return stats
        time.sleep(0.5)


def busy_share() -> tuple[int, int] | None:
    try:
        vals = [int(v) for v in open("/proc/stat").readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return sum(vals) - vals[3] - vals[4], sum(vals)


def summarize(router: str, results: list[dict], stats: dict, busy: float | None, wall: float) -> dict:
    reps = stats["replicas"]
    requests = sum(s.get("requests", 0) for s in reps.values())
    measured = sum(s.get("reuse_measured", 0) for s in reps.values())
    hits = sum(s.get("reuse_hits", 0) for s in reps.values())
    cached = sum(s.get("cached_prompt_tokens", 0) for s in reps.values())
    prefill = sum(s.get("prefill_tokens", 0) for s in reps.values())
    ttfts = sorted(r["ttft_s"] for r in results if r["ttft_s"] is not None)
    shares = Counter(r["replica"] for r in results)
    return {
        "router": router, "requests": len(results), "engine_requests": requests,
        "ok": sum(1 for r in results if r["status"] == 200 and not r["error"]),
        "hit_rate": hits / measured if measured else None, "hits": hits, "hits_measured": measured,
        "cache_hits": sum(s.get("cache_hits", 0) for s in reps.values()),
        "coalesced": sum(s.get("coalesced", 0) for s in reps.values()),
        "cached_token_share": cached / (cached + prefill) if cached + prefill else None,
        "ttft_median_s": statistics.median(ttfts) if ttfts else None,
        "ttft_p90_s": ttfts[int(0.9 * (len(ttfts) - 1))] if ttfts else None,
        "share": {rid: n / len(results) for rid, n in sorted(shares.items(), key=str)},
        "max_share": max(shares.values()) / len(results) if results else None,
        "per_replica": {rid: {k: s.get(k) for k in ("requests", "reuse_measured", "reuse_hits", "cache_hits",
                                                     "coalesced", "cached_prompt_tokens", "prefill_tokens",
                                                     "evictions", "slots")}
                        for rid, s in reps.items()},
        "decisions": stats.get("decisions"),
        "wall_s": wall, "machine_busy_share": busy,
    }


def run_router(router: str, args, prompts: list[str], order: list[int], url: str) -> dict:
    from ray import serve

    from hearth.cluster.app import ReplicaSettings
    from hearth.cluster.builder import ClusterConfig, build

    config = ClusterConfig(replicas=args.replicas, router=router, imbalance=args.imbalance,
                           replica=ReplicaSettings(ctx_size=args.ctx_size, threads=1, parallel=1, slots=args.slots))
    name = f"bench-{router}"
    serve.run(build(config), name=name, route_prefix="/")
    try:
        b0, t0 = busy_share(), time.perf_counter()
        results = asyncio.run(drive(url, order, prompts, args.clients, args.max_tokens))
        wall, b1 = time.perf_counter() - t0, busy_share()
        stats = cluster_stats(url, len(order))
        busy = (b1[0] - b0[0]) / (b1[1] - b0[1]) if b0 and b1 and b1[1] > b0[1] else None
        return {"summary": summarize(router, results, stats, busy, wall), "requests": results}
    finally:
        serve.delete(name)


def verdict(by: dict) -> dict:
    p, rr = by.get("prefix"), by.get("round-robin")
    out = {}
    if p:
        out["hit_prefix"] = (p["hit_rate"], p["hit_rate"] is not None and p["hit_rate"] >= TARGETS["hit_prefix"])
        out["max_share"] = (p["max_share"], p["max_share"] <= TARGETS["max_share"])
    if rr:
        out["hit_round_robin"] = (rr["hit_rate"], rr["hit_rate"] is not None and rr["hit_rate"] <= TARGETS["hit_round_robin"])
    if p and rr and p["ttft_median_s"] and rr["ttft_median_s"]:
        ratio = p["ttft_median_s"] / rr["ttft_median_s"]
        out["ttft_ratio"] = (ratio, ratio <= TARGETS["ttft_ratio"])
    return out


def markdown(report: dict) -> str:
    s, by, v = report["stamp"], report["summary"], report["verdict"]
    routers = list(by)
    pct = lambda x: "-" if x is None else f"{100 * x:.0f}%"  # noqa: E731
    sec = lambda x: "-" if x is None else f"{x:.2f} s"  # noqa: E731
    rows = [("prefix-cache hit rate (requests reusing >= half their prompt)", lambda r: pct(r["hit_rate"])),
            ("requests measured for it", lambda r: str(r["hits_measured"])),
            ("engine `cache_hits` (any reuse, template tokens too)", lambda r: str(r["cache_hits"])),
            ("prompt tokens reused", lambda r: pct(r["cached_token_share"])),
            ("TTFT median", lambda r: sec(r["ttft_median_s"])),
            ("TTFT p90", lambda r: sec(r["ttft_p90_s"])),
            ("requests per replica", lambda r: " / ".join(pct(x) for x in r["share"].values())),
            ("answered 200 without error", lambda r: f"{r['ok']} of {r['requests']}"),
            ("wall time", lambda r: sec(r["wall_s"])),
            ("machine CPU busy (all processes)", lambda r: pct(r["machine_busy_share"]))]
    lines = [f"# Prefix-aware routing against round-robin on {report['config']['replicas']} Hearth replicas (Ray Serve)",
             "", *stamp.header(s), "",
             f"{report['config']['requests']} requests from {report['config']['clients']} concurrent clients, "
             f"{report['config']['prompts']} distinct system prompts of ~{report['config']['prompt_tokens']} tokens "
             f"in random order (seed {report['config']['seed']}), {report['config']['max_tokens']} tokens each, "
             f"streamed; each replica: one llama.cpp thread, one sequence, {report['config']['slots']} KV streams "
             f"(its prefix cache holds {report['config']['slots'] - 1} prompts).",
             "", "| figure | " + " | ".join(routers) + " |", "|---|" + "---|" * len(routers)]
    lines += [f"| {name} | " + " | ".join(f(by[r]) for r in routers) + " |" for name, f in rows]
    names = {"hit_prefix": "hit rate with affinity >= 85%", "hit_round_robin": "hit rate round-robin <= 60%",
             "ttft_ratio": "median TTFT affinity / round-robin <= 0.5", "max_share": "no replica above 70% (affinity)"}
    lines += ["", "| target (issue 21) | measured | met |", "|---|---|---|"]
    for key, (value, met) in v.items():
        shown = f"{value:.2f}" if key == "ttft_ratio" else pct(value)
        lines.append(f"| {names[key]} | {shown} | {'yes' if met else '**no**'} |")
    if any(r.get("decisions") for r in by.values()):
        lines += ["", "Router decisions (prefix): " + json.dumps(by.get("prefix", {}).get("decisions"))]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m benchmarks.cluster", description=__doc__.split("\n\n")[0])
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--requests", type=int, default=70)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--prompt-words", type=int, default=900, help="words per system prompt (~1.1 tokens each)")
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--ctx-size", type=int, default=2048)
    p.add_argument("--slots", type=int, default=3, help="KV streams per replica (its cache holds slots - 1 prompts)")
    p.add_argument("--imbalance", type=int, default=4)
    p.add_argument("--routers", default="prefix,round-robin")
    p.add_argument("--seed", type=int, default=21)
    p.add_argument("--port", type=int, default=0, help="HTTP port (default: a free one)")
    p.add_argument("--out", default=str(ROOT / "docs/reports/cluster"), help="writes OUT.json and OUT.md")
    args = p.parse_args(argv)

    import socket

    import ray
    from ray import serve

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not args.port:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            args.port = s.getsockname()[1]
    url = f"http://127.0.0.1:{args.port}"
    info = stamp.stamp("python -m benchmarks.cluster " + shlex.join(argv))
    prompts = [system_prompt(i, args.prompt_words) for i in range(args.prompts)]
    order = workload(args.requests, args.prompts, args.seed)
    ray.init(address="local", num_cpus=args.replicas, include_dashboard=False, object_store_memory=200 * 1024 ** 2,
             logging_level="WARNING", log_to_driver=False)
    by = {}
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": args.port})
        for router in args.routers.split(","):
            print(f"cluster bench: {router} ...", file=sys.stderr, flush=True)
            by[router] = run_router(router, args, prompts, order, url)
            print(json.dumps({k: v for k, v in by[router]["summary"].items() if k != "per_replica"}),
                  file=sys.stderr, flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()
    stamp.finish(info)
    prompt_tokens = None
    try:  # the prompt's length in the model's tokens, from the last run's engine counters
        s = by[args.routers.split(",")[0]]["summary"]["per_replica"]
        total = sum((x["cached_prompt_tokens"] or 0) + (x["prefill_tokens"] or 0) for x in s.values())
        prompt_tokens = round(total / args.requests)
    except (KeyError, ZeroDivisionError, TypeError):
        pass
    report = {"stamp": info,
              "config": {"replicas": args.replicas, "requests": args.requests, "clients": args.clients,
                         "prompts": args.prompts, "prompt_tokens": prompt_tokens, "max_tokens": args.max_tokens,
                         "ctx_size": args.ctx_size, "slots": args.slots, "imbalance": args.imbalance, "seed": args.seed},
              "summary": {r: x["summary"] for r, x in by.items()},
              "verdict": verdict({r: x["summary"] for r, x in by.items()}),
              "requests": {r: x["requests"] for r, x in by.items()}}
    stamp.write(args.out, report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
