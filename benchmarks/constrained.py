"""Scenario `constrained`: tokens/s with a json_schema response_format against the same request without
it, at 1 and 8 concurrent streams, paired in the same run (the ratio is what counts; target >= 0.85).

Both requests are chat completions over the same prompts, temperature 0, max_tokens 128, with the
end-of-generation tokens banned by logit_bias so that each stream runs exactly 128 tokens. The schema
(an object holding a long array of short strings) cannot be complete within 128 tokens, so the
constrained stream also runs 128 tokens, every one of them through the grammar. Each repeat measures
unconstrained then constrained at each level; the ratio is the median over repeats of
constrained aggregate tok/s / unconstrained aggregate tok/s (aggregate: all tokens / wall time).

    .venv/bin/python -m benchmarks.constrained [--base-url URL --label NAME] [--levels 1,8] [--repeats 3]

Without --base-url it starts our server. Against llama-server, pass its URL: the same schema goes in
the same `response_format` (llama.cpp turns it into a GBNF grammar).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys

from .client import Target, list_models
from .scenarios import NoGate, _summary, _together, median

N_TOKENS = 128
EOG_BAN = {"0": -100, "2": -100}  # SmolLM2's <|endoftext|> and <|im_end|>
SCHEMA = {
    "type": "object",
    "properties": {
        "topic": {"type": "string", "maxLength": 40},
        "facts": {"type": "array", "items": {"type": "string", "maxLength": 80}, "minItems": 100},
    },
    "required": ["topic", "facts"],
    "additionalProperties": False,
}
TOPICS = ["cats", "the sea", "volcanoes", "bread", "trains", "the moon", "bees", "chess", "rivers", "glass"]


def body(i: int) -> dict:
    return {"messages": [{"role": "user", "content": f"List one hundred short facts about {TOPICS[i % len(TOPICS)]} "
                                                  "as JSON: a topic and an array of facts."}],
         "max_tokens": N_TOKENS, "temperature": 0.0, "seed": 1234 + i}


def target_for(base: Target, constrained: bool) -> Target:
    extra = dict(base.extra)
    extra["logit_bias"] = EOG_BAN
    if constrained:
        extra["response_format"] = {"type": "json_schema", "json_schema": {"name": "facts", "schema": SCHEMA}}
    return Target(base.base_url, base.model, base.include_usage, extra)


async def constrained(target: Target, levels: list[int], repeats: int, gate=NoGate()) -> dict:
    runs = []
    plain_t, schema_t = target_for(target, False), target_for(target, True)
    await _together(schema_t, [body(0) | {"max_tokens": 8}])  # warm-up (compiles the tokenizer once)
    for rep in range(repeats):
        for level in levels:
            row = {"level": level, "repeat": rep}
            for name, t in (("unconstrained", plain_t), ("constrained", schema_t)):
                gate.before()
                results, wall = await _together(t, [body(i) for i in range(level)])
                row[name] = {"wall": wall, "tokens": sum(r.tokens for r in results),
                             "aggregate_tps": sum(r.tokens for r in results) / wall,
                             "other_cpu": gate.after(),
                             "streams": [_summary(r, N_TOKENS) for r in results],
                             "failures": [f for r in results if (f := r.failure(N_TOKENS))]}
            row["ratio"] = row["constrained"]["aggregate_tps"] / row["unconstrained"]["aggregate_tps"]
            failed = row["unconstrained"]["failures"] + row["constrained"]["failures"]
            print(f"bench: constrained C={level} repeat {rep + 1}: {row['unconstrained']['aggregate_tps']:.1f} -> "
                  f"{row['constrained']['aggregate_tps']:.1f} tok/s, ratio {row['ratio']:.3f}"
                  + (f" FAILED: {failed[:2]}" if failed else ""), flush=True)
            runs.append(row)
    return {"runs": runs, "levels": {str(level): summarize(runs, level) for level in levels}}


def summarize(runs: list[dict], level: int) -> dict:
    rows = [r for r in runs if r["level"] == level]
    ok = [r for r in rows if not r["unconstrained"]["failures"] and not r["constrained"]["failures"]]
    return {"unconstrained_tps": median([r["unconstrained"]["aggregate_tps"] for r in ok]),
            "constrained_tps": median([r["constrained"]["aggregate_tps"] for r in ok]),
            "ratio": median([r["ratio"] for r in ok]), "repeats_ok": len(ok), "repeats": len(rows),
            "target": 0.85}


def main(argv: list[str] | None = None) -> None:
    from pathlib import Path

    from hearth.models.defaults import default_model_path

    from .machine import Gate
    from .server import OwnServer

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", help="any OpenAI-compatible server (default: start ours)")
    ap.add_argument("--label", default=None)
    ap.add_argument("--levels", default="1,8")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--wait-quiet", type=float, default=60.0, help="seconds to wait for a quiet machine per run")
    ap.add_argument("--out", default="bench-results")
    a = ap.parse_args(argv)
    levels = [int(x) for x in a.levels.split(",")]

    def run(base_url: str, pids: list[int]) -> dict:
        gate = Gate(pids, a.wait_quiet, lambda m: print(f"bench: {m}", flush=True))
        return asyncio.run(constrained(Target(base_url, list_models(base_url)[0]), levels, a.repeats, gate))

    if a.base_url:
        label, res = a.label or a.base_url, run(a.base_url, [])
    else:
        with OwnServer(default_model_path(), Path(a.out) / "constrained-server.log") as server:
            label, res = a.label or "hearth", run(server.base_url, [server.proc.pid])
    out = Path(a.out) / f"constrained-{label.replace('/', '_').replace(':', '_')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"label": label, **res}, indent=1))
    print(json.dumps({"label": label, "levels": res["levels"]}, indent=1))
    print(f"bench: wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
