"""Tokens and time per forced tool call (and per structured answer): what the JSON whitespace rule costs.

Each call is a chat completion with one forced function (tool_choice names it, parallel_tool_calls
false) or a json_schema response_format, temperature 0, one after another (no concurrency), over a few
prompts; it prints the median completion tokens, the median wall time per call, and one answer's text.

    .venv/bin/python -m benchmarks.forced_calls [--base-url URL] [--label NAME] [--repeats 3]

Without --base-url it starts our server (the working tree's code). To compare two versions of the code,
run it against a server started from each checkout (PYTHONPATH=<checkout> python -m hearth serve).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

from .server import Managed, free_port

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "maxLength": 30}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"], "additionalProperties": False}}}
PERSON = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 30},
                                           "age": {"type": "integer", "minimum": 0, "maximum": 120},
                                           "city": {"type": "string", "maxLength": 30}},
          "required": ["name", "age", "city"], "additionalProperties": False}
CITIES = ["Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Quito", "Perth", "Delhi"]


def bodies(kind: str) -> list[dict]:
    out = []
    for city in CITIES:
        if kind == "tool":
            out.append({"messages": [{"role": "user", "content": f"What is the weather in {city}?"}],
                        "tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                        "parallel_tool_calls": False})
        else:
            out.append({"messages": [{"role": "user", "content": f"Invent a person who lives in {city}, as JSON."}],
                        "response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}})
    return out


def answer_text(choice: dict) -> str:
    calls = choice["message"].get("tool_calls")
    return calls[0]["function"]["arguments"] if calls else choice["message"]["content"]


def measure(base_url: str, kind: str, repeats: int) -> dict:
    tokens, seconds, sample = [], [], ""
    with httpx.Client(timeout=300) as client:
        client.post(f"{base_url}/chat/completions", json={"model": "m", **bodies(kind)[0], "max_tokens": 8})  # warm-up
        for _ in range(repeats):
            for body in bodies(kind):
                t0 = time.perf_counter()
                r = client.post(f"{base_url}/chat/completions", json={"model": "m", "temperature": 0, "max_tokens": 200,
                                                                      **body})
                seconds.append(time.perf_counter() - t0)
                r.raise_for_status()
                tokens.append(r.json()["usage"]["completion_tokens"])
                sample = sample or answer_text(r.json()["choices"][0])
    return {"kind": kind, "calls": len(tokens), "median_tokens": statistics.median(tokens),
            "mean_tokens": round(statistics.fmean(tokens), 1), "median_ms": round(1000 * statistics.median(seconds)),
            "sample": sample}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="a running server (default: start ours)")
    parser.add_argument("--label", default="hearth")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.base_url:
        rows = [measure(args.base_url, kind, args.repeats) for kind in ("tool", "schema")]
    else:
        port = free_port()
        cmd = [sys.executable, "-m", "hearth", "serve", "--port", str(port), "--no-store"]
        with Managed(cmd, port, Path(f"/tmp/forced-calls-{port}.log")) as server:
            rows = [measure(server.base_url, kind, args.repeats) for kind in ("tool", "schema")]
    for row in rows:
        print(f"{args.label}: {row['kind']:6} {row['calls']} calls: median {row['median_tokens']} tokens "
              f"(mean {row['mean_tokens']}), median {row['median_ms']} ms per call; e.g. {row['sample']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
