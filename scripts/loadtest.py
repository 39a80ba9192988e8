"""Load test (scripts/loadtest): many concurrent clients, mixed requests, against a real server on loopback.

Starts `hearth serve` on a free loopback port (its queue kept small, so that overload happens),
then runs --clients concurrent clients, each on its own keep-alive connection, until --requests
requests have completed or --max-time has passed. Each request is one of: chat (plain, streamed),
completions (plain, streamed), embeddings, a forced tool call, structured output (a JSON schema),
the Responses API (plain, streamed; `store: false`), Anthropic's Messages API (plain, streamed).
A client that gets 503 (529 on /v1/messages: Anthropic's overloaded_error) with Retry-After waits that
long and retries.

What counts as a failure:
- a connection reset, refused or dropped, a timeout, any status other than 200 or 503/529+Retry-After;
- a stream without [DONE], an unparsable event, a finish_reason missing, or a "length" finish whose
  usage does not equal max_tokens (a truncated stream); a plain answer with the wrong shape;
- responses: not status completed/incomplete (incomplete only at exactly max_output_tokens), no output
  text, a stream not ending in response.completed/incomplete or with sequence numbers out of order;
- messages: not a `message` with a text block and a stop_reason (max_tokens only at exactly max_tokens),
  a stream not message_start ... message_delta (stop_reason) ... message_stop;
- embeddings: not one vector per input, or vectors of different sizes;
- tools: not finish_reason "tool_calls" with one call to the function, its arguments valid JSON with
  a string `city` (or "length" at exactly max_tokens); structured: a "stop" whose content does not
  parse as the schema's object (or a "length" short of max_tokens).
Measured per kind and per route: answered, failed, latency (first attempt to final answer) p50/p99, 503s, server RSS after warm-up
vs at the end, open fds before the clients connect vs after they close. Exit 1 on any failure or
when RSS drifts 5% or more, or fds leak.

Writes docs/reports/loadtest.json (every figure, every failure) and loadtest.md (--out), stamped with the
commit, date, machine and command (benchmarks/stamp.py); a run smaller than the defaults is marked short.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks import stamp  # noqa: E402

KINDS = ("chat", "chat_stream", "completions", "completions_stream", "embeddings", "tools", "structured",
         "responses", "responses_stream", "messages", "messages_stream")
WEIGHTS = (3, 3, 2, 2, 2, 1, 1, 1, 1, 1, 1)
ROUTES = {"chat": "/chat/completions", "completions": "/completions", "embeddings": "/embeddings",
          "tools": "/chat/completions", "structured": "/chat/completions", "responses": "/responses",
          "messages": "/messages"}  # a kind's route: ROUTES[kind without _stream], under /v1
GRAMMAR_TOKENS = 48  # max_tokens of the constrained requests: room for a whole call or object
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}},
                          "required": ["city"], "additionalProperties": False}}}
ANSWER = {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": {
    "type": "object", "properties": {"answer": {"type": "string", "maxLength": 12}}, "required": ["answer"],
    "additionalProperties": False}}}
PROMPTS = ["Name a colour.", "What is 2 + 2?", "Say hello in French.", "Write one word about the sea.",
           "List three fruits.", "Count to five.", "What is a GGUF file?", "Give me a short greeting."]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def request_for(kind: str, rng: random.Random, max_tokens: int) -> tuple[str, dict]:
    prompt = rng.choice(PROMPTS)
    if kind in ("tools", "structured"):
        body = {"model": "m", "messages": [{"role": "user", "content": prompt}], "max_tokens": GRAMMAR_TOKENS}
        if kind == "tools":
            body |= {"tools": [WEATHER], "tool_choice": "required", "parallel_tool_calls": False}
        else:
            body["response_format"] = ANSWER
        return "/chat/completions", body
    if kind.startswith(("chat", "messages")):
        body = {"model": "m", "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}
        path = ROUTES[kind.removesuffix("_stream")]
    elif kind.startswith("responses"):
        body = {"model": "m", "input": prompt, "max_output_tokens": max_tokens, "store": False}
        path = "/responses"
    elif kind.startswith("completions"):
        body = {"model": "m", "prompt": prompt, "max_tokens": max_tokens}
        path = "/completions"
    else:
        return "/embeddings", {"model": "m", "input": rng.sample(PROMPTS, rng.randint(1, 3))}
    if kind.endswith("stream"):
        body |= {"stream": True} if kind.startswith(("responses", "messages")) else \
            {"stream": True, "stream_options": {"include_usage": True}}
    return path, body


def named_events(lines: list[str]) -> list[dict]:
    """The JSON of each `data:` line of a named-event stream (Responses, Messages); each has a `type`."""
    return [json.loads(line[6:]) for line in lines if line.startswith("data: ")]


def check_response(data: dict, body: dict) -> str | None:
    """A Responses API response object: completed, or incomplete at exactly max_output_tokens."""
    used, cap = data["usage"]["output_tokens"], body["max_output_tokens"]
    if data["status"] == "incomplete":
        if (data.get("incomplete_details") or {}).get("reason") != "max_output_tokens" or used != cap:
            return f"responses: incomplete {data.get('incomplete_details')} after {used} of {cap} tokens"
    elif data["status"] != "completed" or used > cap:
        return f"responses: status {data['status']}, {used} of {cap} tokens"
    texts = [c for item in data["output"] if item.get("type") == "message" for c in item["content"]
             if c.get("type") == "output_text"]
    return None if texts else f"responses: no output_text in {data['output']}"


def check_message(data: dict, body: dict) -> str | None:
    """An Anthropic message: a text block, a stop_reason (max_tokens only at exactly max_tokens)."""
    if data.get("type") != "message" or not any(b.get("type") == "text" for b in data.get("content") or []):
        return f"messages: not a message with a text block: {str(data)[:200]}"
    used = data["usage"]["output_tokens"]
    if data["stop_reason"] not in ("end_turn", "max_tokens", "stop_sequence") or \
            (data["stop_reason"] == "max_tokens" and used != body["max_tokens"]):
        return f"messages: stop_reason {data['stop_reason']} after {used} of {body['max_tokens']} tokens"
    return None


def check_named_stream(kind: str, lines: list[str], body: dict) -> str | None:
    try:
        events = named_events(lines)
    except ValueError:
        return "an event is not JSON"
    types = [e.get("type") for e in events]
    if kind == "responses_stream":
        if not types or types[-1] not in ("response.completed", "response.incomplete"):
            return f"responses stream ends with {types[-1:]}"
        if [e.get("sequence_number") for e in events] != list(range(len(events))):
            return "responses stream: sequence numbers out of order"
        return check_response(events[-1]["response"], body)
    if not types or types[0] != "message_start" or types[-1] != "message_stop" or "message_delta" not in types:
        return f"messages stream: events {types[:2]} ... {types[-2:]}"
    delta = events[types.index("message_delta")]
    used, reason = delta["usage"]["output_tokens"], delta["delta"]["stop_reason"]
    if reason not in ("end_turn", "max_tokens", "stop_sequence") or (reason == "max_tokens" and used != body["max_tokens"]):
        return f"messages stream: stop_reason {reason} after {used} of {body['max_tokens']} tokens"
    return None


def check_stream(lines: list[str], body: dict) -> str | None:
    events = [line[6:] for line in lines if line.startswith("data: ")]
    if not events or events[-1] != "[DONE]":
        return "stream without [DONE]"
    try:
        chunks = [json.loads(e) for e in events[:-1]]
    except ValueError:
        return "an event is not JSON"
    if any("error" in c for c in chunks):
        return f"error event: {chunks[-1]}"
    finishes = [ch["finish_reason"] for c in chunks for ch in c.get("choices") or [] if ch.get("finish_reason")]
    usage = chunks[-1].get("usage") if chunks else None
    if len(finishes) != 1 or not usage:
        return f"finish reasons {finishes}, usage {usage}"
    if finishes[0] == "length" and usage["completion_tokens"] != body["max_tokens"]:
        return f"finish 'length' after {usage['completion_tokens']} of {body['max_tokens']} tokens"
    return None


def check_plain(data: dict, kind: str, body: dict) -> str | None:
    if kind == "responses":
        return check_response(data, body)
    if kind == "messages":
        return check_message(data, body)
    if kind == "embeddings":
        vectors = [d["embedding"] for d in data["data"]]
        if len(vectors) != len(body["input"]) or len({len(v) for v in vectors}) != 1:
            return "embeddings: wrong count or sizes"
        return None
    choice = data["choices"][0]
    if kind == "tools":
        calls = choice["message"].get("tool_calls") or []
        if choice["finish_reason"] == "length" and data["usage"]["completion_tokens"] == body["max_tokens"]:
            return None  # the call did not fit in max_tokens (whitespace is the model's to choose)
        if choice["finish_reason"] != "tool_calls" or len(calls) != 1 or calls[0]["function"]["name"] != "get_weather":
            return f"tools: finish_reason {choice['finish_reason']}, calls {calls}"
        if not isinstance(json.loads(calls[0]["function"]["arguments"]).get("city"), str):
            return f"tools: arguments {calls[0]['function']['arguments']}"
        return None
    if kind == "structured":
        if choice["finish_reason"] == "stop":
            parsed = json.loads(choice["message"]["content"])
            if set(parsed) != {"answer"} or not isinstance(parsed["answer"], str):
                return f"structured: content {choice['message']['content']!r}"
        elif choice["finish_reason"] != "length" or data["usage"]["completion_tokens"] != body["max_tokens"]:
            return f"structured: finish_reason {choice['finish_reason']}, usage {data['usage']}"
        return None
    if choice["finish_reason"] not in ("stop", "length"):
        return f"finish_reason {choice['finish_reason']}"
    if choice["finish_reason"] == "length" and data["usage"]["completion_tokens"] != body["max_tokens"]:
        return "plain answer truncated"
    return None


class Stats:
    def __init__(self):
        self.latency = {k: [] for k in KINDS}
        self.failed = {k: 0 for k in KINDS}
        self.failures: list[str] = []
        self.overloaded = 0
        self.done = 0
        self.warm_rss = self.warm_at = None


async def client(i: int, base: str, args, stats: Stats, stop_at: float, counter, server_pid: int, rng) -> None:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=args.request_timeout) as http:
        while stats.done + counter["in_flight"] < args.requests and time.monotonic() < stop_at:
            counter["in_flight"] += 1
            kind = rng.choices(KINDS, weights=WEIGHTS)[0]
            path, body = request_for(kind, rng, args.max_tokens)
            started = time.monotonic()
            problem = None
            try:
                while True:
                    if kind.endswith("stream"):
                        async with http.stream("POST", path, json=body) as r:
                            lines = [line async for line in r.aiter_lines()] if r.status_code == 200 else []
                            if r.status_code != 200:
                                await r.aread()
                    else:
                        r = await http.post(path, json=body)
                    if r.status_code in (503, 529) and r.headers.get("retry-after"):
                        stats.overloaded += 1
                        await asyncio.sleep(float(r.headers["retry-after"]) * rng.uniform(0.5, 1.0))
                        continue
                    break
                if r.status_code != 200:
                    problem = f"HTTP {r.status_code}: {r.text[:200]}"
                elif kind in ("responses_stream", "messages_stream"):
                    problem = check_named_stream(kind, lines, body)
                elif kind.endswith("stream"):
                    problem = check_stream(lines, body)
                else:
                    problem = check_plain(r.json(), kind, body)
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            finally:
                counter["in_flight"] -= 1
            if problem:
                stats.failed[kind] += 1
                stats.failures.append(f"{kind}: {problem}")
            else:
                stats.latency[kind].append(time.monotonic() - started)
            stats.done += 1
            if stats.done == args.warmup:
                stats.warm_rss, stats.warm_at = rss(server_pid), time.monotonic()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def run(args, base: str, pid: int) -> tuple[Stats, dict]:
    stats, counter = Stats(), {"in_flight": 0}
    rng = random.Random(args.seed)
    fds_before = fds(pid)
    started = time.monotonic()
    stop_at = started + args.max_time
    await asyncio.gather(*(client(i, base, args, stats, stop_at, counter, pid, random.Random(rng.random()))
                           for i in range(args.clients)))
    elapsed = time.monotonic() - started
    await asyncio.sleep(1.0)  # let the server notice the closed connections
    return stats, {"elapsed": elapsed, "fds_before": fds_before, "fds_after": fds(pid), "rss_end": rss(pid)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--max-time", type=float, default=1800, help="seconds, at most")
    parser.add_argument("--max-tokens", type=int, default=12, help="per generation")
    parser.add_argument("--warmup", type=int, default=200, help="requests before the RSS baseline")
    parser.add_argument("--request-timeout", type=float, default=600)
    parser.add_argument("--seed", type=int, default=64)
    parser.add_argument("--server-args", default="--max-queue 16", help="extra flags for hearth serve")
    parser.add_argument("--out", default="loadtest", help="report: OUT.json and OUT.md (a bare name: under docs/reports/)")
    args = parser.parse_args()
    defaults = parser.parse_args([])
    smaller = [f"--{k.replace('_', '-')} {getattr(args, k)} (default {getattr(defaults, k)})"
               for k in ("clients", "requests", "warmup") if getattr(args, k) < getattr(defaults, k)]
    info = stamp.stamp(short=", ".join(smaller) or None)
    port = free_port()
    (ROOT / ".pytest_cache").mkdir(exist_ok=True)
    log = open(ROOT / ".pytest_cache" / f"loadtest-server-{port}.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "hearth", "serve", "--host", "127.0.0.1", "--port", str(port),
                             *args.server_args.split()], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/models", timeout=2).json()["data"]:
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                time.sleep(0.5)
        stats, end = asyncio.run(run(args, base, proc.pid))
    finally:
        proc.terminate()
        code = proc.wait(60)
    stamp.finish(info)
    drift = (end["rss_end"] - stats.warm_rss) / stats.warm_rss if stats.warm_rss else None
    leaked = end["fds_after"] > end["fds_before"]
    failed = bool(stats.failures) or drift is None or not abs(drift) < 0.05 or leaked or code != 0
    if info["short_run"] is None and end["elapsed"] >= args.max_time and stats.done < args.requests:
        info["short_run"] = f"stopped by --max-time {args.max_time:.0f} s after {stats.done} of {args.requests} requests"
    report = {"stamp": info,
              "config": {k: getattr(args, k) for k in ("clients", "requests", "max_time", "max_tokens", "warmup",
                                                       "request_timeout", "seed", "server_args")}
              | {"kinds": dict(zip(KINDS, WEIGHTS)), "grammar_max_tokens": GRAMMAR_TOKENS},
              "result": {"passed": not failed, "requests": stats.done,
                         "answered": sum(len(v) for v in stats.latency.values()), "failed": len(stats.failures),
                         "retried_503": stats.overloaded, "elapsed_s": round(end["elapsed"], 1), "server_exit": code,
                         "rss_warm_mib": round(stats.warm_rss / 2**20, 1) if stats.warm_rss else None,
                         "rss_end_mib": round(end["rss_end"] / 2**20, 1), "rss_drift": drift,
                         "fds_before": end["fds_before"], "fds_after": end["fds_after"]},
              "latency": {k: {"route": "/v1" + ROUTES[k.removesuffix("_stream")], "count": len(v),
                              "failed": stats.failed[k], "p50_s": round(pct(v, 0.5), 3) if v else None,
                              "p99_s": round(pct(v, 0.99), 3) if v else None} for k, v in stats.latency.items()},
              "routes": {"/v1" + route: {"answered": sum(len(stats.latency[k]) for k in KINDS
                                                         if ROUTES[k.removesuffix("_stream")] == route),
                                         "failed": sum(stats.failed[k] for k in KINDS
                                                       if ROUTES[k.removesuffix("_stream")] == route)}
                         for route in dict.fromkeys(ROUTES.values())},
              "failures": stats.failures}
    text = markdown(report)
    paths = stamp.write(args.out, report, text)
    print("\n" + text)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 1 if failed else 0


def markdown(report: dict) -> str:
    r, c = report["result"], report["config"]
    drift = "not measured (fewer requests than --warmup)" if r["rss_drift"] is None else f"{r['rss_drift']:+.2%}"
    lines = [f"# Load test: {r['answered']:,} of {r['requests']:,} answered, {r['failed']} failed"
             + ("" if r["passed"] else " (**FAILED**)"), "", *stamp.header(report["stamp"]), "",
             f"{c['clients']} concurrent clients, each on its own keep-alive connection, against `hearth serve "
             f"{c['server_args']}` on loopback; requests drawn (seed {c['seed']}) by weight from "
             + ", ".join(f"{k} {w}" for k, w in c["kinds"].items())
             + f"; max_tokens {c['max_tokens']} ({c['grammar_max_tokens']} for tools and structured). A 503 (529 on "
             "/v1/messages) with Retry-After is waited out and retried (scripts/loadtest.py says what counts as a "
             "failure).", "",
             f"- {r['requests']:,} requests in {r['elapsed_s']:.0f} s: {r['answered']:,} answered, {r['failed']} failed; "
             f"{r['retried_503']} answers 503/529 + Retry-After (retried); server exit code {r['server_exit']}",
             f"- server RSS after {c['warmup']} requests {r['rss_warm_mib']} MiB, at the end {r['rss_end_mib']} MiB: "
             f"drift {drift}",
             f"- open fds before the clients {r['fds_before']}, after they closed {r['fds_after']}", "",
             "| route | answered | failed |", "|---|---|---|"]
    lines += [f"| {route} | {v['answered']} | {v['failed']} |" for route, v in report["routes"].items()]
    lines += ["", "| request | route | answered | failed | p50 (s) | p99 (s) |", "|---|---|---|---|---|---|"]
    for kind, v in report["latency"].items():
        p50 = "-" if v["p50_s"] is None else f"{v['p50_s']:.2f}"
        p99 = "-" if v["p99_s"] is None else f"{v['p99_s']:.2f}"
        lines.append(f"| {kind} | {v['route']} | {v['count']} | {v['failed']} | {p50} | {p99} |")
    if report["failures"]:
        lines += ["", "## Failures (first 20)", ""] + [f"- {f}" for f in report["failures"][:20]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
