"""The HTTP scenarios: prompts that run long, fresh system prompts, and the measurements themselves.

Every scenario repeats its measurement and keeps every sample; `report` takes medians.
"""
from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid
from typing import Callable

from .client import StreamResult, Target, make_client, stream

# Text prompts whose greedy continuation (SmolLM2-135M) runs past 128 tokens without an end token,
# so every stream can be asked for exactly 128 tokens: a short stream is a failure, not a cue.
LIST_TOPICS = [("fruits", "apple"), ("animals", "dog"), ("countries", "France"), ("colours", "red"),
               ("cities", "Paris"), ("vegetables", "carrot"), ("sports", "football"), ("trees", "oak"),
               ("musical instruments", "piano")]


def list_prompt(i: int) -> str:
    topic, first = LIST_TOPICS[i % len(LIST_TOPICS)]
    return f"Here is a long list of {topic}, one per line:\n1. {first}\n2."


QUESTIONS = [
    "In one sentence, what is the text above about?",
    "Name one word that appears in the text above.",
    "Write a short title for the text above.",
    "Is the text above happy or sad? Answer briefly.",
    "What colour do you think of after reading the text above?",
    "Give the text above a score from 1 to 10.",
    "Which animal would enjoy the text above?",
    "Summarise the text above in three words.",
    "What is the first thing mentioned in the text above?",
    "Who might have written the text above?",
]

_WORDS = ("the river garden morning village quiet old bridge light window market baker yellow stone "
          "children music evening lantern harbor sailor wind letter winter summer road forest mountain "
          "kitchen bread cheese apple table chair story teacher school library book page careful gentle "
          "small large bright dark warm cold slowly quickly always never often walks carries paints "
          "finds remembers opens closes builds watches sings waits travels returns follows listens "
          "under over near behind between across through beside towards after before during and but "
          "because while when where friend neighbour doctor farmer painter engineer musician clock "
          "candle blanket basket ribbon feather pebble shell island valley meadow orchard cottage").split()


class PromptFactory:
    """Makes unique text of a given token length (counted with the model's own tokenizer, if given)."""

    def __init__(self, count_tokens: Callable[[str], int] | None = None, seed: int = 7):
        self.count = count_tokens or (lambda text: int(len(text.split()) * 1.3))
        self.rng = random.Random(seed)

    def system_prompt(self, n_tokens: int = 1000) -> str:
        """A fresh system prompt: it starts with a unique id, so no cached prefix matches past its first few tokens."""
        head = f"Session {uuid.uuid4().hex}. You are a helpful assistant. Read this story carefully.\n"
        sentences: list[str] = []
        while self.count(head + " ".join(sentences)) < n_tokens:
            for _ in range(10):
                words = self.rng.choices(_WORDS, k=self.rng.randint(8, 16))
                sentences.append(" ".join(words).capitalize() + ".")
        while len(sentences) > 1 and self.count(head + " ".join(sentences[:-1])) >= n_tokens:
            sentences.pop()
        return head + " ".join(sentences)


def chat(system: str, question: str) -> list[dict]:
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


def _percentile(values: list[float], q: float) -> float | None:
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return None
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def median(values: list[float]) -> float | None:
    xs = [v for v in values if v is not None]
    return statistics.median(xs) if xs else None


def _summary(r: StreamResult, want: int | None) -> dict:
    return {"ttft": r.ttft, "total": r.total, "t_last": r.t_last, "tokens": r.tokens,
            "tokens_from_usage": r.tokens_from_usage, "finish_reason": r.finish_reason,
            "failure": r.failure(want)}


async def _together(target: Target, bodies: list[dict]) -> tuple[list[StreamResult], float]:
    """Send every body at the same moment (one event, released after all tasks wait); wall time."""
    async with make_client(len(bodies)) as client:
        go = asyncio.Event()
        ready = 0

        async def one(body: dict) -> StreamResult:
            nonlocal ready
            ready += 1
            await go.wait()
            return await stream(client, target, **body)

        tasks = [asyncio.create_task(one(b)) for b in bodies]
        while ready < len(bodies):
            await asyncio.sleep(0)
        t0 = time.perf_counter()
        go.set()
        results = await asyncio.gather(*tasks)
        return list(results), time.perf_counter() - t0


def _log(msg: str) -> None:
    print(f"bench: {msg}", flush=True)


class NoGate:
    """What a scenario calls around each measured run (see machine.Gate): here, nothing."""

    def before(self) -> None:
        pass

    def after(self) -> float | None:
        return None


QUIET = 0.10  # a run during which other processes took more of the CPUs is left out of the medians


def clean(runs: list[dict]) -> list[dict]:
    """The runs measured on a quiet machine, if there is any; else all of them (flagged in the report)."""
    quiet = [r for r in runs if r.get("other_cpu") is None or r["other_cpu"] <= QUIET]
    return quiet or runs


def _busy(share: float | None) -> str:
    return f" [other processes: {share:.0%} of the CPUs]" if share is not None and share > 0.10 else ""


def _cpu_seconds(pid: int | None) -> float | None:
    """CPU time (all threads) a local server has used so far, from /proc; None if unknown."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


async def alternate(targets: list[Target], repeats: int, run_one, gate, prepare=None) -> dict[str, list[dict]]:
    """Run `run_one(target, shared)` `repeats` times per target, alternating the targets (A B, B A, ...)
    so that a slow stretch of a shared machine hits both alike; `prepare(i)` makes what the targets
    share in repeat i (a fresh system prompt). Each run records the share of the CPUs other
    processes took (`other_cpu`) and the CPU seconds its server used (`server_cpu_s`)."""
    runs: dict[str, list[dict]] = {t.label: [] for t in targets}
    for i in range(repeats):
        shared = prepare(i) if prepare else None
        for t in targets if i % 2 == 0 else targets[::-1]:
            gate.before()
            c0 = _cpu_seconds(t.pid)
            run = await run_one(t, shared)
            c1 = _cpu_seconds(t.pid)
            run["other_cpu"] = share = gate.after()
            if _busy(share):
                _log(f"  ^ other processes took {share:.0%} of the CPUs during that run")
            run["server_cpu_s"] = None if c0 is None or c1 is None else round(c1 - c0, 3)
            run["repeat"] = i
            runs[t.label].append(run)
    return runs


def _who(t: Target, targets: list[Target]) -> str:
    return f"{t.label}: " if len(targets) > 1 else ""


async def single_stream(targets: list[Target], repeats: int, max_tokens: int = 128,
                        before_each: dict[str, Callable[[], object]] | None = None, gate=NoGate()) -> dict:
    """One stream at a time, the reference's prompt; end-to-end and decode tokens/s per run.

    `before_each[label]` (the in-process reference) runs before every measured stream of that
    target, the server idle, so that each HTTP figure has a reference figure taken under the same load.
    """
    before_each = before_each or {}
    clients = {t.label: make_client(1) for t in targets}
    try:
        for t in targets:
            await stream(clients[t.label], t, prompt=list_prompt(0), max_tokens=8)  # warm-up, not measured
        n = {t.label: 0 for t in targets}

        async def one(t: Target, _shared) -> dict:
            before = before_each.get(t.label)
            ref = before() if before else None
            r = await stream(clients[t.label], t, prompt=list_prompt(0), max_tokens=max_tokens)
            run = _summary(r, max_tokens)
            if ref is not None:
                run["reference"] = ref  # bench.py moves it to reference.bare_loop
                run["reference_e2e_tps"], run["reference_decode_tps"] = ref.e2e_tps, ref.decode_tps
            if r.ok and r.total and r.ttft is not None and r.t_last:
                run["e2e_tps"] = r.tokens / r.total
                run["decode_tps"] = (r.tokens - 1) / (r.t_last - r.ttft) if r.t_last > r.ttft else None
            n[t.label] += 1
            _log(f"{_who(t, targets)}single stream {n[t.label]}/{repeats}: {run.get('e2e_tps') or 0:.1f} tok/s"
                 + (f" (in-process reference (a) just before: {ref.e2e_tps:.1f} tok/s)" if ref else "")
                 + (f" ({run['failure']})" if run["failure"] else ""))
            return run

        runs = await alternate(targets, repeats, one, gate)
    finally:
        for c in clients.values():
            await c.aclose()
    return {label: summarize_single({"max_tokens": max_tokens, "runs": rs}) for label, rs in runs.items()}


def summarize_single(sec: dict) -> dict:
    runs = sec["runs"]
    used = clean(runs)
    paired = [r for r in used if r.get("e2e_tps") and r.get("reference_e2e_tps")]
    if paired:  # each HTTP run over the in-process run just before it
        sec = sec | {"paired_ratio_e2e": median([r["e2e_tps"] / r["reference_e2e_tps"] for r in paired]),
                     "reference_e2e_tps": median([r["reference_e2e_tps"] for r in paired]),
                     "reference_decode_tps": median([r.get("reference_decode_tps") for r in paired])}
    cpu = [r["server_cpu_s"] / r["tokens"] for r in used if r.get("server_cpu_s") and r.get("tokens")]
    return sec | {"runs_used": len(used),
                  "e2e_tps": median([r.get("e2e_tps") for r in used]),
                  "decode_tps": median([r.get("decode_tps") for r in used]),
                  "ttft": median([r["ttft"] for r in used]),
                  "server_cpu_ms_per_token": median([1000 * c for c in cpu]),
                  "failures": sum(1 for r in runs if r["failure"])}


async def concurrency(targets: list[Target], levels: list[int], repeats: int, max_tokens: int = 128,
                      gate=NoGate()) -> dict:
    """C distinct long prompts at once; aggregate completion tokens/s over the wall time, TTFT, failures."""
    out: dict[str, dict] = {t.label: {} for t in targets}
    for c in levels:
        n = {t.label: 0 for t in targets}

        async def one(t: Target, _shared) -> dict:
            bodies = [{"prompt": list_prompt(j), "max_tokens": max_tokens} for j in range(c)]
            results, wall = await _together(t, bodies)
            tokens = sum(r.tokens for r in results if r.ok)
            fails = [f for f in (r.failure(max_tokens) for r in results) if f]
            n[t.label] += 1
            _log(f"{_who(t, targets)}concurrency {c} run {n[t.label]}/{repeats}: {tokens / wall:.1f} tok/s aggregate, "
                 f"{len(fails)} failed" + (f" (e.g. {fails[0]})" if fails else ""))
            return {"wall": wall, "tokens": tokens, "aggregate_tps": tokens / wall,
                    "streams": [_summary(r, max_tokens) for r in results]}

        for label, runs in (await alternate(targets, repeats, one, gate)).items():
            out[label][str(c)] = summarize_level({"concurrency": c, "runs": runs})
    return out


def summarize_level(sec: dict) -> dict:
    runs = sec["runs"]
    used = clean(runs)
    ttfts = [st["ttft"] for r in used for st in r["streams"] if st["ttft"] is not None]
    failures = [st["failure"] for r in runs for st in r["streams"] if st["failure"]]
    return sec | {"runs_used": len(used), "aggregate_tps": median([r["aggregate_tps"] for r in used]),
                  "ttft_p50": _percentile(ttfts, 0.5), "ttft_p95": _percentile(ttfts, 0.95),
                  "streams": sum(len(r["streams"]) for r in runs), "failures": len(failures),
                  "failure_examples": failures[:3]}


async def shared_prefix(targets: list[Target], prompts: PromptFactory, repeats: int, n_system: int = 1000,
                        max_tokens: int = 8, gate=NoGate()) -> dict:
    """A fresh ~1,000-token system prompt (nothing cached can help), then the same one again. In each
    repeat every target gets the same (new) text, so both prefill the same number of tokens."""
    clients = {t.label: make_client(1) for t in targets}
    n = {t.label: 0 for t in targets}

    async def one(t: Target, system: str) -> dict:
        client = clients[t.label]
        a = await stream(client, t, messages=chat(system, QUESTIONS[0]), max_tokens=max_tokens)
        b = await stream(client, t, messages=chat(system, QUESTIONS[1]), max_tokens=max_tokens)
        n[t.label] += 1
        _log(f"{_who(t, targets)}prefix run {n[t.label]}/{repeats}: fresh TTFT {a.ttft or float('nan'):.3f} s, "
             f"shared {b.ttft or float('nan'):.3f} s")
        return {"fresh": _summary(a, None), "shared": _summary(b, None), "prompt_tokens": a.prompt_tokens}

    try:
        runs = await alternate(targets, repeats, one, gate, prepare=lambda i: prompts.system_prompt(n_system))
    finally:
        for c in clients.values():
            await c.aclose()
    return {label: summarize_prefix({"system_tokens": n_system, "runs": rs}) for label, rs in runs.items()}


def summarize_prefix(sec: dict) -> dict:
    runs = sec["runs"]
    used = clean(runs)
    f = median([r["fresh"]["ttft"] for r in used if not r["fresh"]["failure"]])
    s = median([r["shared"]["ttft"] for r in used if not r["shared"]["failure"]])
    return sec | {"runs_used": len(used), "ttft_fresh": f, "ttft_shared": s, "ratio": s / f if f and s else None,
                  "failures": sum(1 for r in runs for k in ("fresh", "shared") if r[k]["failure"])}


async def burst(targets: list[Target], prompts: PromptFactory, users: list[int], repeats: int,
                n_system: int = 1000, max_tokens: int = 16, gate=NoGate()) -> dict:
    """Issue 5: C users, one fresh system prompt per burst, distinct questions, all sent at once."""
    out: dict[str, dict] = {t.label: {} for t in targets}
    for c in users:
        n = {t.label: 0 for t in targets}

        async def one(t: Target, system: str) -> dict:
            bodies = [{"messages": chat(system, QUESTIONS[j % len(QUESTIONS)]), "max_tokens": max_tokens}
                      for j in range(c)]
            results, wall = await _together(t, bodies)
            ttfts = [r.ttft for r in results if r.ttft is not None]  # failed streams too, if they began
            fails = [f for f in (r.failure(None) for r in results) if f]
            fails += ["no content"] * sum(1 for r in results if r.ok and r.ttft is None)
            run = {"wall": wall, "ttft_median": median(ttfts), "ttft_worst": max(ttfts) if ttfts else None,
                   "ttfts": ttfts, "failures": fails}
            n[t.label] += 1
            _log(f"{_who(t, targets)}burst {c} users run {n[t.label]}/{repeats}: TTFT median "
                 f"{run['ttft_median'] or float('nan'):.2f} s, worst {run['ttft_worst'] or float('nan'):.2f} s, "
                 f"{len(fails)} failed")
            return run

        runs = await alternate(targets, repeats, one, gate, prepare=lambda i: prompts.system_prompt(n_system))
        for label, rs in runs.items():
            out[label][str(c)] = summarize_users({"users": c, "runs": rs})
    return out


def summarize_users(sec: dict) -> dict:
    runs = sec["runs"]
    used = clean(runs)
    return sec | {"runs_used": len(used), "ttft_median": median([r["ttft_median"] for r in used]),
                  "ttft_worst": median([r["ttft_worst"] for r in used]),
                  "failures": sum(len(r["failures"]) for r in runs)}


def resummarize(res: dict) -> None:
    """Recompute every median from the stored runs (results written by an earlier version, too)."""
    bare = (res.get("reference") or {}).get("bare_loop") or {}
    single = res.get("single") or {}
    if bare.get("paired_with_single") and len(bare.get("runs", [])) == len(single.get("runs", [])):
        for run, ref in zip(single["runs"], bare["runs"]):
            run.setdefault("reference_e2e_tps", ref["e2e_tps"])
            run.setdefault("reference_decode_tps", ref["decode_tps"])
    if res.get("single"):
        res["single"] = summarize_single(res["single"])
    for key, fn in (("concurrency", summarize_level), ("burst", summarize_users)):
        for k, sec in (res.get(key) or {}).items():
            res[key][k] = fn(sec)
    if res.get("prefix"):
        res["prefix"] = summarize_prefix(res["prefix"])
    if bare.get("paired_with_single") and res["single"].get("reference_e2e_tps"):
        bare["e2e_tps"] = res["single"]["reference_e2e_tps"]  # the runs paired with the quiet HTTP runs
        bare["decode_tps"] = res["single"]["reference_decode_tps"]
