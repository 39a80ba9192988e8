"""The ceiling for C concurrent streams on this machine: llama.cpp's bare batch loop in process, no HTTP.

    python -m benchmarks.ceiling [--streams 8] [--tokens 128] [--repeats 3] [--threads N] [--model PATH]

The bench's concurrency prompts (one KV stream per sequence, as both servers run them), each prompt
prefilled with one llama_decode, then one llama_decode per step for all C sequences, greedy (the
argmax of the logits). Prints aggregate tokens/s, the median of the repeats: decode only, and end to
end with a cold prefill of every prompt. In the bench both servers have the prompts cached after the
first run (a first token in ~70 ms), so its 8-stream figure is bounded by the decode-only one. A
server over HTTP cannot beat it: issue 12's "8 streams >= 1.15x llama-server" needs llama-server at
most 1/1.15 of it.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import llama_cpp as L
import numpy as np

from .reference import Tokenizer, quiet
from .scenarios import list_prompt


def run(model_path: str, streams: int, tokens: int, n_threads: int, n_ctx: int = 4096) -> tuple[float, float]:
    """(end-to-end, decode-only) aggregate tokens/s of one run."""
    quiet()
    tok = Tokenizer(model_path)
    prompts = [tok.tokenize(list_prompt(j)) for j in range(streams)]
    tok.close()
    model = L.llama_model_load_from_file(str(model_path).encode(), L.llama_model_default_params())
    p = L.llama_context_default_params()
    p.n_ctx, p.n_batch, p.n_ubatch, p.n_seq_max = n_ctx * streams, 512, 512, streams
    p.n_threads = p.n_threads_batch = n_threads
    p.kv_unified = False
    ctx = L.llama_init_from_model(model, p)
    batch = L.llama_batch_init(512, 0, 1)
    n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(model))

    def decode(rows: list[tuple[int, int, int]]) -> None:
        for i, (token, pos, seq) in enumerate(rows):
            batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, pos, 1, True
            batch.seq_id[i][0] = seq
        batch.n_tokens = len(rows)
        if L.llama_decode(ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")

    def argmax(row: int) -> int:
        return int(np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, row), shape=(n_vocab,)).argmax())

    try:
        t0 = time.perf_counter()
        last, pos = [], []
        for seq, prompt in enumerate(prompts):
            decode([(t, i, seq) for i, t in enumerate(prompt)])
            last.append(argmax(len(prompt) - 1))
            pos.append(len(prompt))
        t1 = time.perf_counter()
        for _ in range(tokens - 1):
            decode([(last[s], pos[s], s) for s in range(streams)])
            last = [argmax(s) for s in range(streams)]
            pos = [x + 1 for x in pos]
        t2 = time.perf_counter()
    finally:
        L.llama_batch_free(batch)
        L.llama_free(ctx)
        L.llama_model_free(model)
    return streams * tokens / (t2 - t0), streams * (tokens - 1) / (t2 - t1)


def main() -> None:
    from hearth.models.defaults import default_model_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="a GGUF (default: the default chat model)")
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    model = args.model or str(default_model_path())
    runs = []
    for i in range(args.repeats):
        runs.append(run(model, args.streams, args.tokens, args.threads))
        print(f"ceiling run {i + 1}/{args.repeats}: {args.streams} streams x {args.tokens} tokens: "
              f"{runs[-1][0]:.1f} tok/s end to end, {runs[-1][1]:.1f} decode only")
    print(f"ceiling, {args.streams} streams, {args.threads} threads: "
          f"{statistics.median(r[0] for r in runs):.1f} tok/s end to end (median of {len(runs)}), "
          f"{statistics.median(r[1] for r in runs):.1f} decode only")


if __name__ == "__main__":
    main()
