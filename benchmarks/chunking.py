"""Prefill chunk size, in process: how fast, and which reuse boundaries stay bit-identical.

    .venv/bin/python -m benchmarks.chunking [--sizes 32,64,128,256,512] [--repeats 3] [--threads 2]

Chunk sizes for prefill, and whether cached and fresh prefixes stay bit-identical (llama.cpp's CPU
kernels round differently in calls of < 64 rows than in larger ones; the engine's cut is in
hearth/engine/prefix_cache.py, and tests/core/test_prefill_calls.py checks it). This measures, over the engine's own context settings
(`Runner`: non-unified KV, 16 streams, n_batch 512):

- prefill time of a fresh ~1,000-token chat prompt evaluated in aligned chunks of each size;
- exactness, each as the final logits compared bit for bit with the fresh path of the same size:
  `fresh C vs fresh 32`   whether chunk size changes the numbers at all;
  `reuse at C`            another prompt's cells reused up to a C boundary, the rest in aligned C chunks
                          (the guarantee the engine gives today, for C = 32);
  `reuse at 32, C chunks` reused up to a 32 boundary, the rest in C-aligned chunks (the first one
                          short): whether reuse can be finer than the chunk.
"""
from __future__ import annotations

import argparse
import ctypes
import hashlib
import statistics
import time

import llama_cpp as L

from benchmarks.scenarios import QUESTIONS, PromptFactory
from hearth.engine.api import ChatMessage
from hearth.engine.model import Model
from hearth.engine.model_runner import Runner
from hearth.models.defaults import default_model_path


def prefill(runner: Runner, seq: int, tokens: list[int], start: int, chunk: int) -> float:
    """Evaluate tokens[start:] into stream `seq`, in calls aligned to `chunk`; returns seconds."""
    t0 = time.perf_counter()
    pos = start
    while pos < len(tokens):
        end = min(len(tokens), pos - pos % chunk + chunk)
        for p in range(pos, end):
            runner.add(tokens[p], p, seq, p == len(tokens) - 1)
        rc = runner.decode()
        if rc:
            raise RuntimeError(f"llama_decode returned {rc}")
        pos = end
    return time.perf_counter() - t0


def last_logits(runner: Runner, n_vocab: int) -> bytes:
    ptr = L.llama_get_logits_ith(runner.ctx, -1)
    return ctypes.string_at(ptr, n_vocab * 4)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.chunking", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="32,64,128,256,512")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--system-tokens", type=int, default=1000)
    a = ap.parse_args(argv)
    sizes = [int(x) for x in a.sizes.split(",")]

    model = Model(str(default_model_path()))
    runner = Runner(model, 4096, 16, 512, a.threads)
    n_vocab = model.n_vocab
    factory = PromptFactory(lambda t: len(model.tokenize(t, add_special=False)))
    system = factory.system_prompt(a.system_tokens)

    def chat_tokens(q: str) -> list[int]:
        return model.tokenize(model.render_chat((ChatMessage("system", system), ChatMessage("user", q))))

    p, q = chat_tokens(QUESTIONS[0]), chat_tokens(QUESTIONS[1])
    d = next(i for i, (x, y) in enumerate(zip(p, q)) if x != y)  # first position where they differ
    print(f"prompt {len(p)} tokens; the other prompt shares its first {d}; threads {a.threads}")

    def clear(*seqs):
        for s in seqs:
            runner.seq_clear(s)

    fresh: dict[int, bytes] = {}
    print(f"{'chunk':>5} {'fresh s':>8} {'(min-max)':>15} {'tok/s':>7} {'=fresh' + str(sizes[0]):>9} | "
          f"{'reuse@C':>7} {'s':>6} {'exact':>5} | {'reuse@32':>8} {'s':>6} {'exact':>5}", flush=True)
    prefill(runner, 0, p, 0, 32)  # warm-up
    for c in sizes:
        times = []
        for _ in range(a.repeats):
            clear(0)
            times.append(prefill(runner, 0, p, 0, c))
        fresh[c] = last_logits(runner, n_vocab)
        # reuse at a C boundary: the other prompt's cells, trimmed, then the rest of p
        clear(0, 1)
        prefill(runner, 1, q, 0, c)
        n = d - d % c
        runner.seq_copy_prefix(1, 0, n)
        t_reuse = prefill(runner, 0, p, n, c)
        same_reuse = last_logits(runner, n_vocab) == fresh[c]
        # reuse at a 32 boundary, the rest in C-aligned chunks
        clear(0)
        n32 = d - d % 32
        runner.seq_copy_prefix(1, 0, n32)
        t_fine = prefill(runner, 0, p, n32, c)
        same_fine = last_logits(runner, n_vocab) == fresh[c]
        clear(0, 1)
        med = statistics.median(times)
        print(f"{c:>5} {med:8.3f} {min(times):7.3f}-{max(times):7.3f} {len(p) / med:7.0f} "
              f"{str(fresh[c] == fresh[sizes[0]]):>9} | {n:>7} {t_reuse:6.3f} {str(same_reuse):>5} | "
              f"{n32:>8} {t_fine:6.3f} {str(same_fine):>5}", flush=True)
    print("logits sha1:", {c: hashlib.sha1(v).hexdigest()[:10] for c, v in fresh.items()})
    runner.close()
    model.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
