"""Two chat models busy at once must not be slower together than one: aggregate tok/s of two models x 4
streams against one model x 8 streams, measured in the same run, in alternation (target: >= 0.9x).

    python -m benchmarks.two_models                     # our server over a models dir of its own, ~2 min
    python -m benchmarks.two_models --base-url URL --models KEY_A,KEY_B
    scripts/bench --scenarios two-models                # the same inside the bench: a second instance of its model
    python -m benchmarks.two_models --load-cost         # what loading B costs A's running streams

Model B is a copy of the default GGUF under another key (a copy, not a link: its weights are other
pages of memory, as another model's would be), loaded through POST /api/v1/models/load. Every stream
asks for 128 greedy tokens of a distinct long prompt; a stream that ends early fails the run. The
two measurements of a pair run in alternating order, each after waiting for a quiet machine (the
share of the CPUs other processes took is printed; the medians are over the quiet pairs).
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from .client import Target, make_client, stream
from .machine import Gate
from .scenarios import QUIET, list_prompt

TARGET = 0.9
N_TOKENS = 128


async def _aggregate(targets: list[Target], max_tokens: int) -> tuple[float, list[str]]:
    """Stream one prompt per target, all sent at once; (aggregate tok/s, failures)."""
    async with make_client(len(targets)) as client:
        t0 = time.perf_counter()
        results = await asyncio.gather(*(stream(client, t, prompt=list_prompt(j), max_tokens=max_tokens)
                                          for j, t in enumerate(targets)))
        wall = time.perf_counter() - t0
    fails = [f for f in (r.failure(max_tokens) for r in results) if f]
    return sum(r.tokens for r in results if r.ok) / wall, fails


async def two_models(a: Target, b: Target, repeats: int = 3, max_tokens: int = N_TOKENS, log=print,
                     gate=None) -> dict:
    """Per repeat, one model x 8 (the reference) and models A and B x 4 each, in alternating order (one
    then two, two then one, ...); the ratio of each pair, and medians over the pairs taken on a quiet
    machine (other processes under 10% of the CPUs; all pairs if none was).
    `gate` (benchmarks.machine.Gate): waits for a quiet machine before each run and accounts for it."""
    await _aggregate([a, b], 4)  # warm both

    async def measured(targets):
        if gate is not None:
            gate.before()
        tps, fails = await _aggregate(targets, max_tokens)
        return tps, fails, gate.after() if gate is not None else None

    runs = []
    for i in range(repeats):
        order = ("one", "two") if i % 2 == 0 else ("two", "one")
        got = {}
        for which in order:
            got[which] = await measured([a] * 8 if which == "one" else [a] * 4 + [b] * 4)
        (one, fails_one, other_one), (two, fails_two, other_two) = got["one"], got["two"]
        other = max((o for o in (other_one, other_two) if o is not None), default=None)
        runs.append({"one_model_8": one, "two_models_2x4": two, "ratio": two / one, "order": order,
                     "other_cpu": other, "failures": fails_one + fails_two})
        log(f"two-models run {i + 1}/{repeats} ({' then '.join(order)}): one model x 8 {one:.1f} tok/s, "
            f"two models x 4 {two:.1f} tok/s, ratio {two / one:.2f}"
            + (f" [other processes: {other:.0%} of the CPUs]" if other is not None else "")
            + (f", {len(fails_one + fails_two)} failed streams" if fails_one + fails_two else ""))
    quiet = [r for r in runs if r["other_cpu"] is None or r["other_cpu"] <= QUIET]
    used = quiet or runs  # a busy machine throughout: every pair, said so by quiet_runs 0
    ratio = statistics.median(r["ratio"] for r in used)
    return {"runs": runs, "quiet_runs": len(quiet), "one_model_8": statistics.median(r["one_model_8"] for r in used),
            "two_models_2x4": statistics.median(r["two_models_2x4"] for r in used), "ratio": ratio,
            "target": TARGET, "met": ratio >= TARGET and not any(r["failures"] for r in runs)}


async def _timed_stream(client: httpx.AsyncClient, target: Target, prompt: str, max_tokens: int) -> list[float]:
    """The arrival times (perf_counter) of a completion stream's content chunks."""
    body = {"model": target.model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True}
    times = []
    async with client.stream("POST", target.base_url + "/completions", json=body) as resp:
        resp.raise_for_status()
        async for line in resp.aiter_lines():
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                times.append(time.perf_counter())
    return times


async def load_cost(a: Target, key_b: str, repeats: int = 3, streams: int = 4, log=print) -> dict:
    """What loading a model costs the streams of another: `streams` streams run on A; one second in, model
    B loads (POST /api/v1/models/load, unloaded after). Per repeat: the longest gap between two tokens of
    a stream while B loaded, and A's aggregate tok/s during the load / before it."""
    origin = a.base_url.removesuffix("/v1")
    runs = []
    async with make_client(streams + 2) as client:
        for i in range(repeats):
            tasks = [asyncio.create_task(_timed_stream(client, a, list_prompt(j), 512)) for j in range(streams)]
            await asyncio.sleep(1.0)
            t0 = time.perf_counter()
            r = await client.post(f"{origin}/api/v1/models/load", json={"model": key_b}, timeout=300)
            t1 = time.perf_counter()
            r.raise_for_status()
            arrivals = await asyncio.gather(*tasks)
            await client.post(f"{origin}/api/v1/models/unload", json={"instance_id": r.json()["instance_id"]})
            gaps = [y - x for ts in arrivals for x, y in zip(ts, ts[1:]) if y > t0 and x < t1]
            before = sum(1 for ts in arrivals for t in ts if t0 - 0.8 <= t < t0) / 0.8
            during = sum(1 for ts in arrivals for t in ts if t0 <= t < t1) / (t1 - t0)
            runs.append({"load_s": t1 - t0, "worst_gap_s": max(gaps, default=None),
                         "tps_before": before, "tps_during": during})
            log(f"load-cost run {i + 1}/{repeats}: B loaded in {t1 - t0:.2f} s; A's worst gap between tokens "
                f"meanwhile {max(gaps, default=float('nan')) * 1000:.0f} ms; A's tok/s during the load "
                f"{during:.0f} / before {before:.0f} = {during / before:.2f}")
    return {"runs": runs, "worst_gap_s": statistics.median(r["worst_gap_s"] for r in runs),
            "during_over_before": statistics.median(r["tps_during"] / r["tps_before"] for r in runs)}


async def on_server(target: Target, repeats: int, gate=None) -> dict:
    """scripts/bench --scenarios two-models: B is a second instance of the served model (`key:2`: its own
    llama.cpp model and context; the weights are pages of the same mmapped file), unloaded after."""
    origin = target.base_url.removesuffix("/v1")
    models = httpx.get(f"{origin}/api/v1/models", timeout=30).json()["models"]
    key = next(m["key"] for m in models if any(i["id"] == target.model for i in m["loaded_instances"]))
    r = httpx.post(f"{origin}/api/v1/models/load", json={"model": key}, timeout=300)
    r.raise_for_status()
    second = r.json()["instance_id"]
    try:
        b = Target(target.base_url, second, target.include_usage)
        return await two_models(target, b, repeats, log=lambda m: print(f"bench: {m}", flush=True), gate=gate)
    finally:
        httpx.post(f"{origin}/api/v1/models/unload", json={"instance_id": second}, timeout=300)


def second_model_dir(model: Path) -> tuple[Path, str, str]:
    """A models dir holding `model` (linked) and a copy of it under another key: (dir, key A, key B)."""
    root = Path(tempfile.mkdtemp(prefix="hearth-bench-models-"))
    (root / "bench/model-a-GGUF").mkdir(parents=True)
    (root / "bench/model-a-GGUF" / model.name).symlink_to(model.resolve())
    (root / "bench/model-b-GGUF").mkdir(parents=True)
    shutil.copyfile(model, root / "bench/model-b-GGUF" / model.name)
    return root, "model-a", "model-b"


def ensure_loaded(origin: str, key: str) -> str:
    """The instance id of `key`, loading it if no instance is loaded."""
    for model in httpx.get(f"{origin}/api/v1/models", timeout=30).json()["models"]:
        if model["key"] == key and model["loaded_instances"]:
            return model["loaded_instances"][0]["id"]
    r = httpx.post(f"{origin}/api/v1/models/load", json={"model": key}, timeout=300)
    r.raise_for_status()
    return r.json()["instance_id"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.two_models", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-url", help="a Hearth server's /v1 URL (default: start our own)")
    p.add_argument("--models", help="KEY_A,KEY_B: two chat models on the server's disk (with --base-url)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--load-cost", action="store_true", help="instead: what a load of B costs A's running streams")
    p.add_argument("--wait-quiet", type=float, default=60.0, metavar="SECONDS",
                   help="before each measured run, wait up to this long for other processes to leave the CPUs "
                        "(default: 60; 0: never wait)")
    args = p.parse_args(argv)
    if args.base_url:
        key_a, key_b = args.models.split(",")
        return _report(args.base_url, key_a, key_b, args.repeats, Gate([], args.wait_quiet), args.load_cost)
    from hearth.models.defaults import default_model_path

    from .server import OwnServer

    root, key_a, key_b = second_model_dir(default_model_path())
    try:
        with OwnServer(str(root / "bench/model-a-GGUF" / default_model_path().name),
                       Path(tempfile.gettempdir()) / "hearth-bench-two-models.log",
                       extra_args=["--models-dir", str(root)]) as server:
            return _report(server.base_url, key_a, key_b, args.repeats, Gate([server.proc.pid], args.wait_quiet),
                           args.load_cost)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _report(base_url: str, key_a: str, key_b: str, repeats: int, gate: Gate, cost: bool = False) -> int:
    origin = base_url.removesuffix("/v1")
    if cost:
        asyncio.run(load_cost(Target(base_url, ensure_loaded(origin, key_a)), key_b, repeats))
        return 0
    a, b = Target(base_url, ensure_loaded(origin, key_a)), Target(base_url, ensure_loaded(origin, key_b))
    result = asyncio.run(two_models(a, b, repeats, gate=gate))
    print(f"two models x 4 streams: {result['two_models_2x4']:.1f} tok/s aggregate; one model x 8 streams (same run): "
          f"{result['one_model_8']:.1f} tok/s; ratio {result['ratio']:.2f}, median of {result['quiet_runs'] or repeats} "
          f"{'quiet ' if result['quiet_runs'] else ''}pairs of {repeats} (target >= {TARGET}: "
          f"{'met' if result['met'] else 'missed'})")
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
