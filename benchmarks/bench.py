"""Hearth's benchmark: in-process references, then the HTTP scenarios, against any OpenAI-compatible server.

    scripts/bench                       # start our server on a free port over the default model, ~5 min
    scripts/bench --quick               # one repeat of everything, ~2 min
    scripts/bench --base-url http://127.0.0.1:8080/v1 --label llama-server   # someone else's server
    scripts/bench --compare bench-results/hearth.json bench-results/llama-server.json   # plot only

Scenarios (--scenarios, comma-separated):
  reference    in this process, no HTTP, greedy, 128 tokens of the single-stream prompt:
               (a) a bare llama_batch/llama_decode loop, one sequence: the ceiling for one stream;
               (b) Llama.create_completion. (a) also checks that every concurrency prompt runs 128
               greedy tokens without an end token. With `single`, each run of (a) is taken just
               before one HTTP run, the server idle, and the ratio is the median of the pairs.
  single       one SSE stream at a time (/v1/completions, temperature 0, max_tokens 128).
               end to end tok/s = tokens / (request sent -> end of stream); decode tok/s =
               (tokens - 1) / (first -> last content chunk). Tokens from the usage chunk
               (stream_options.include_usage), else by content chunks.
  concurrency  C = 1, 2, 4, 8 distinct prompts sent at once, 128 tokens each: aggregate tok/s =
               all tokens / (send -> last stream done); TTFT p50/p95 over every stream; a stream
               fails unless it ends with finish_reason "length" after exactly 128 tokens.
  prefix       a fresh ~1,000-token system prompt (unique text), then the same one with another
               question: TTFT of each (chat, max_tokens 8).
  burst        issue 5: C = 1, 4, 8 users, one fresh ~1,000-token system prompt per burst, distinct
               questions, all sent at once (chat, max_tokens 16): TTFT median and worst.
  constrained  issue 8 (only when named): json_schema-constrained tok/s / unconstrained, paired, at 1 and 8
               streams (benchmarks/constrained.py; target >= 0.85).
Medians over repeats (the machine is shared): --quick 1-2 repeats, else 3-5.
Writes <out>/<label>.json (every sample), <out>/<label>.png, and <out>/compare.png with --compare.
Targets (issues 4, 5) are checked on what was measured; a figure over failed streams misses its target.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from . import report
from .client import Target, list_models, make_client, stream
from .machine import CpuMeter, Gate, pid_listening
from .scenarios import (PromptFactory, burst, concurrency, list_prompt, median, resummarize, shared_prefix,
                        single_stream)

SCENARIOS = ("reference", "single", "concurrency", "prefix", "burst", "constrained")
DEFAULT_SCENARIOS = SCENARIOS[:5]  # constrained (benchmarks/constrained.py, issue 8) runs when asked for
N_TOKENS = 128


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-url", help="an OpenAI-compatible base URL ending in /v1; default: start our server")
    p.add_argument("--model", help="GGUF for the in-process references and our server (default: the default model)")
    p.add_argument("--served-model", help="the `model` sent in requests (default: the first id of /v1/models)")
    p.add_argument("--out", default="bench-results", help="output directory (default: bench-results/)")
    p.add_argument("--quick", action="store_true", help="one repeat of each measurement (~2 minutes)")
    p.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}")
    p.add_argument("--repeats", type=int, help="repeats of every measurement (default: 3-5, --quick: 1-2)")
    p.add_argument("--label", help="name of this run in the table, files and plots (default: hearth, or host:port)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for the references and our server")
    p.add_argument("--ctx-size", type=int, help="passed to our server")
    p.add_argument("--parallel", type=int, help="passed to our server")
    p.add_argument("--levels", default="1,2,4,8", help="concurrency levels (default: 1,2,4,8)")
    p.add_argument("--users", default="1,4,8", help="burst sizes (default: 1,4,8)")
    p.add_argument("--wait-quiet", type=float, default=60.0, metavar="SECONDS",
                   help="before each measured run, wait up to this long for other processes to leave the CPUs "
                        "(default: 60; 0: never wait)")
    p.add_argument("--compare", nargs="+", metavar="JSON", help="only plot these earlier results together")
    a = p.parse_args(argv)
    a.scenarios = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    unknown = set(a.scenarios) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    a.levels = [int(x) for x in a.levels.split(",")]
    a.users = [int(x) for x in a.users.split(",")]
    return a


REPEATS = {"reference": (5, 2), "single": (5, 2), "concurrency": (3, 1), "prefix": (5, 2), "burst": (3, 1),
           "constrained": (3, 1)}


def _repeats(a: argparse.Namespace, scenario: str) -> int:
    full, quick = REPEATS[scenario]
    return a.repeats or (quick if a.quick else full)


def _load() -> str:
    return "{:.2f}".format(os.getloadavg()[0])


def _commit() -> str | None:
    with contextlib.suppress(Exception):
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    return None


def _ref_summary(runs: list) -> dict:
    return {"runs": [vars(r) | {"e2e_tps": r.e2e_tps, "decode_tps": r.decode_tps} for r in runs],
            "e2e_tps": median([r.e2e_tps for r in runs]),
            "decode_tps": median([r.decode_tps for r in runs if r.decode_tps == r.decode_tps]),
            "e2e_tps_min": min(r.e2e_tps for r in runs), "e2e_tps_max": max(r.e2e_tps for r in runs),
            "tokens": runs[0].tokens, "prompt_tokens": runs[0].prompt_tokens, "first_eog": runs[0].first_eog}


def run_references(model: str, threads: int, repeats: int, n_prompts: int, keep_open: bool):
    """In this process, before the server starts: (b) create_completion, then (a) the bare loop.

    (a) checks that the concurrency prompts run 128 tokens under plain greedy decoding without an end
    token (a stream of ours that stops early is then the server's doing, not the prompt's). With
    `keep_open`, (a) is returned still loaded: its measured runs then alternate with the HTTP
    single-stream runs (the server idle meanwhile), so both see the same load on a shared machine.
    """
    from .reference import BareLoop, HighLevel

    out: dict = {}
    prompt = list_prompt(0)
    hl = HighLevel(model, threads)
    try:
        hl.run(prompt, 8)  # warm-up
        out["high_level"] = _ref_summary([hl.run(prompt, N_TOKENS) for _ in range(repeats)])
    finally:
        hl.close()
    print(f"bench: reference (b) create_completion: {out['high_level']['e2e_tps']:.1f} tok/s end to end "
          f"({repeats} runs)", flush=True)
    bare = BareLoop(model, threads)
    try:
        bare.run(prompt, 8)  # warm-up
        ends = {i: bare.run(list_prompt(i), N_TOKENS).first_eog for i in range(n_prompts)}
        early = {i: n for i, n in ends.items() if n is not None}
        out["prompt_check"] = {"prompts": n_prompts, "greedy_end_token_at": early}
        if early:
            print(f"bench: warning: greedy decoding ends these prompts early (prompt: token index): {early}",
                  file=sys.stderr)
        if not keep_open:
            out["bare_loop"] = _ref_summary([bare.run(prompt, N_TOKENS) for _ in range(repeats)])
            print(f"bench: reference (a) bare loop: {out['bare_loop']['e2e_tps']:.1f} tok/s end to end "
                  f"({repeats} runs)", flush=True)
    except BaseException:
        bare.close()
        raise
    if keep_open:
        return out, bare
    bare.close()
    return out, None


async def _probe(target: Target) -> None:
    """Does the server take stream_options.include_usage? If not, count tokens by content chunks."""
    async with make_client(1) as client:
        r = await stream(client, target, prompt=list_prompt(0), max_tokens=4)
        if not r.ok and r.status in (400, 422):
            target.include_usage = False
            r = await stream(client, target, prompt=list_prompt(0), max_tokens=4)
        if not r.ok:
            raise RuntimeError(f"the server cannot stream a completion: {r.error}")
        if not r.tokens_from_usage:
            print("bench: no usage chunk in streams: tokens counted by content chunks", file=sys.stderr)


async def run_http(a: argparse.Namespace, target: Target, prompts: PromptFactory, bare=None,
                   server_pid: int | None = None) -> dict:
    await _probe(target)
    res: dict = {"machine": {}}
    log = lambda m: print(f"bench: {m}", flush=True)  # noqa: E731

    async def measure(name: str, coro_fn):
        gate = Gate([server_pid] if server_pid else [], a.wait_quiet, log)
        result = await coro_fn(gate)
        res["machine"][name] = gate.summary() | {"load": _load()}
        return result

    if "single" in a.scenarios:
        before = (lambda: bare.run(list_prompt(0), N_TOKENS)) if bare is not None else None
        res["single"] = await measure("single", lambda g: single_stream(target, _repeats(a, "single"), N_TOKENS,
                                                                        before_each=before, gate=g))
        if bare is not None:
            bare.close()
            res["reference_bare_loop"] = _ref_summary([r.pop("reference") for r in res["single"]["runs"]])
    if "concurrency" in a.scenarios:
        res["concurrency"] = await measure("concurrency", lambda g: concurrency(
            target, a.levels, _repeats(a, "concurrency"), N_TOKENS, gate=g))
    if "prefix" in a.scenarios:
        res["prefix"] = await measure("prefix", lambda g: shared_prefix(target, prompts, _repeats(a, "prefix"), gate=g))
    if "burst" in a.scenarios:
        res["burst"] = await measure("burst", lambda g: burst(target, prompts, a.users, _repeats(a, "burst"), gate=g))
    if "constrained" in a.scenarios:
        from .constrained import constrained
        res["constrained"] = await measure("constrained", lambda g: constrained(
            target, [1, 8], _repeats(a, "constrained"), gate=g))
    return res


def _summary(res: dict) -> dict:
    """The medians and ratios, without the per-run samples (those are in the JSON file)."""
    if isinstance(res, dict):
        return {k: _summary(v) for k, v in res.items() if k not in ("runs", "streams", "ttfts", "description")}
    return res


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    out = Path(a.out)
    if a.compare:
        runs = [report.load(p) for p in a.compare]
        for r in runs:
            resummarize(r)
            report.derive(r)
        for r in runs:
            print(report.table(r), "\n")
        report.plot(runs, out / "compare.png")
        print(f"bench: wrote {out / 'compare.png'}")
        return 0

    from hearth.models import default_model_path

    model = a.model or str(default_model_path())
    label = re.sub(r"[^A-Za-z0-9._-]+", "-", a.label or ("hearth" if not a.base_url else a.base_url.split("//")[-1].split("/")[0]))
    res: dict = {"meta": {"label": label, "base_url": a.base_url or "(own server)", "model_path": model,
                          "started": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(),
                          "threads": a.threads, "quick": a.quick, "scenarios": a.scenarios,
                          "tokens_per_stream": N_TOKENS,
                          "repeats": {k: _repeats(a, k) for k in a.scenarios}, "load_before": _load(), "commit": _commit()}}
    t0 = time.monotonic()
    bare = None
    machine: dict = {}
    if "reference" in a.scenarios:
        meter = CpuMeter([])
        if a.wait_quiet > 0:
            meter.wait_quiet(a.wait_quiet, log=lambda m: print(f"bench: {m}", flush=True))
        meter.start()
        res["reference"], bare = run_references(model, a.threads, _repeats(a, "reference"),
                                                max(a.levels) if "concurrency" in a.scenarios else 0,
                                                keep_open="single" in a.scenarios)
        machine["reference"] = meter.stop() | {"load": _load(), "waited": None}

    http = [s for s in a.scenarios if s != "reference"]
    if http:
        from .reference import Tokenizer

        tok = Tokenizer(model)
        prompts = PromptFactory(tok.count)
        with contextlib.ExitStack() as stack:
            if a.base_url:
                base_url = a.base_url.rstrip("/")
                from .server import wait_ready
                wait_ready(base_url, 60)
                port = httpx.URL(base_url).port
                server_pid = pid_listening(port) if httpx.URL(base_url).host in ("127.0.0.1", "localhost") else None
            else:
                from .server import OwnServer
                server = stack.enter_context(OwnServer(model, out / f"{label}-server.log", ctx_size=a.ctx_size,
                                                       threads=a.threads, parallel=a.parallel))
                base_url, server_pid = server.base_url, server.proc.pid
                res["meta"]["server_startup_s"] = server.startup_s
                res["meta"]["server_idle_cpu"] = idle = server.idle_cpu()
                if idle is not None and idle > 0.05:
                    print(f"bench: warning: the idle server uses {idle:.0%} of a core", file=sys.stderr)
                print(f"bench: our server is up at {base_url} after {server.startup_s:.1f} s", flush=True)
            ids = list_models(base_url)
            target = Target(base_url, a.served_model or ids[0])
            res["meta"]["base_url"], res["meta"]["model_id"] = base_url, target.model
            res["meta"]["server_pid_known"] = bool(server_pid)
            res.update(asyncio.run(run_http(a, target, prompts, bare, server_pid)))
            machine.update(res.pop("machine"))
            if "reference_bare_loop" in res:
                res["reference"]["bare_loop"] = res.pop("reference_bare_loop")
                res["reference"]["bare_loop"]["paired_with_single"] = True
            res["meta"]["include_usage"] = target.include_usage
        tok.close()
    res["meta"]["cpu_share_of_other_processes"] = machine
    res["meta"].setdefault("model_id", Path(model).name)
    res["meta"]["load_after"] = _load()
    res["meta"]["seconds"] = round(time.monotonic() - t0, 1)
    with contextlib.suppress(Exception):
        import llama_cpp
        res["meta"]["llama_cpp_python"] = llama_cpp.__version__

    resummarize(res)
    report.derive(res)
    print()
    print(report.table(res))
    print(json.dumps(_summary(res), indent=1, default=str))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{label}.json").write_text(json.dumps(res, indent=1, default=str))
    wrote = [out / f"{label}.json"]
    if any(k in res for k in ("concurrency", "burst", "prefix")):
        report.plot([res], out / f"{label}.png")
        wrote.append(out / f"{label}.png")
    print(f"bench: {res['meta']['seconds']} s; wrote {', '.join(map(str, wrote))}")
    return 0


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop our server on the way out
    try:
        sys.exit(main())
    except (RuntimeError, TimeoutError, httpx.HTTPError) as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
