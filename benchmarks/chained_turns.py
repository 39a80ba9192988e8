"""A 10-turn conversation over the Responses API: time to first token per turn when each turn continues
the stored previous response (`previous_response_id`) against the same turns resent in full (`input`
holding the whole conversation), on the same server, streamed, temperature 0.

Both should reuse the prefix cache (the rendered prompt of turn n starts with that of turn n-1 and its
answer); the figures show whether the chained turns do, with the prompt and cached token counts. Each
way runs on a fresh server (started here), so neither finds the other's prompts in the cache.

    .venv/bin/python -m benchmarks.chained_turns [--turns 10]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

from .server import Managed, free_port

ASKS = ["Tell me about cats.", "What do they eat?", "How long do they live?", "Are they good pets?",
        "What about dogs?", "Which is easier to keep?", "Name three cat breeds.", "Which one is the calmest?",
        "How big does it get?", "Thanks. Summarise our talk."]


def turn(client: httpx.Client, url: str, body: dict) -> tuple[float, dict]:
    """(seconds to the first text delta, the final response)."""
    t0, first, final = time.perf_counter(), None, None
    with client.stream("POST", f"{url}/responses", json={**body, "stream": True}) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            e = json.loads(line[6:])
            if first is None and e["type"].endswith(".delta"):
                first = time.perf_counter() - t0
            if e["type"] in ("response.completed", "response.incomplete"):
                final = e["response"]
    return first if first is not None else time.perf_counter() - t0, final


def conversation(url: str, turns: int, chained: bool) -> list[dict]:
    rows, items, previous = [], [], None
    common = {"model": "m", "temperature": 0, "max_output_tokens": 32}
    with httpx.Client(timeout=600) as client:
        for i in range(turns):
            ask = {"role": "user", "content": ASKS[i % len(ASKS)]}
            body = {**common, "input": [ask], "previous_response_id": previous} if chained else \
                {**common, "input": items + [ask], "store": False}
            ttft, final = turn(client, url, body)
            previous = final["id"]
            items += [ask] + [{"role": "assistant", "content": o["content"][0]["text"]}
                              for o in final["output"] if o["type"] == "message"]
            usage = final["usage"]
            rows.append({"turn": i + 1, "ttft_ms": round(1000 * ttft), "input_tokens": usage["input_tokens"],
                         "cached_tokens": usage["input_tokens_details"]["cached_tokens"]})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10)
    args = parser.parse_args(argv)
    result = {}
    for name, chained in (("chained", True), ("resent", False)):
        port = free_port()
        store = Path(f"/tmp/chained-turns-{port}.sqlite3")
        cmd = [sys.executable, "-m", "hearth", "serve", "--port", str(port), "--store-path", str(store)]
        with Managed(cmd, port, Path(f"/tmp/chained-turns-{port}.log")) as server:
            with httpx.Client(timeout=600) as client:  # warm-up: another prompt, nothing shared but the template
                turn(client, server.base_url, {"model": "m", "input": "Hi", "max_output_tokens": 4, "store": False})
            result[name] = conversation(server.base_url, args.turns, chained)
        store.unlink(missing_ok=True)
    print("turn  chained: ttft ms (prompt / cached tokens)   resent in full: ttft ms (prompt / cached tokens)")
    for a, b in zip(result["chained"], result["resent"]):
        print(f"{a['turn']:>4}  {a['ttft_ms']:>7} ({a['input_tokens']:>4} / {a['cached_tokens']:>4})"
              f"                    {b['ttft_ms']:>7} ({b['input_tokens']:>4} / {b['cached_tokens']:>4})")
    for name in ("chained", "resent"):
        later = [r["ttft_ms"] for r in result[name][1:]]
        print(f"{name}: median ttft over turns 2..{args.turns}: {statistics.median(later)} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
