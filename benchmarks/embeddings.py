"""Embedding throughput: vectors/s of the embedding engine over the default embedding model.

    .venv/bin/python -m benchmarks.embeddings [--reps 5] [--configs 1:512:16,2:512:16,...]

Each configuration (threads:n_pack:n_seq) runs in a process of its own (two OpenMP teams in one
process slow each other), the configurations take turns, REPS times: 512 sentences of 6-20 words
(~10-25 tokens), sent as 8 concurrent requests of 64. Reported: the median vectors/s of each, and
its ratio to the first configuration measured in the same run (the machine is shared: trust ratios).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import time


def _texts(n: int = 512) -> list[str]:
    words = ("the quick brown fox jumps over a lazy dog while people search for documents about cooking "
             "travel music science history weather sport").split()
    rng = random.Random(0)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(6, 20))) for _ in range(n)]


def _one(threads: int, n_pack: int, n_seq: int) -> float:
    from hearth.models import defaults
    from hearth.engine.api import EngineConfig, LoadState
    from hearth.engine.embedding_engine import EmbeddingEngine

    eng = EmbeddingEngine(EngineConfig(model_path=str(defaults.default_embedding_model_path())),
                          n_pack=n_pack, n_seq=n_seq, n_threads=threads)
    eng.start()
    while eng.state is not LoadState.READY:
        assert eng.state is not LoadState.FAILED
        time.sleep(0.02)
    texts = _texts()

    async def run() -> float:
        await eng.embed(texts[:64])  # warm-up
        t0 = time.perf_counter()
        await asyncio.gather(*(eng.embed(texts[i:i + 64]) for i in range(0, len(texts), 64)))
        return len(texts) / (time.perf_counter() - t0)

    try:
        return asyncio.run(run())
    finally:
        eng.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--configs", default="1:512:16,2:512:16,1:128:8,2:128:8,2:256:16,2:1024:32")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(_one(*map(int, a.one.split(":")))))
        return
    configs = a.configs.split(",")
    samples: dict[str, list[float]] = {c: [] for c in configs}
    for _ in range(a.reps):
        for c in configs:
            out = subprocess.run([sys.executable, "-m", "benchmarks.embeddings", "--one", c],
                                 check=True, capture_output=True, text=True).stdout
            samples[c].append(json.loads(out.strip().splitlines()[-1]))
    base = statistics.median(samples[configs[0]])
    print(f"{'threads:n_pack:n_seq':>22} {'vectors/s':>10} {'ratio':>6}  runs")
    for c in configs:
        m = statistics.median(samples[c])
        print(f"{c:>22} {m:10.0f} {m / base:6.2f}  {[round(x) for x in samples[c]]}")


if __name__ == "__main__":
    main()
