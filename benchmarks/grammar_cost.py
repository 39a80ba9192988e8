"""What a grammar costs per generated token, against the decode step it rides on, measured in one run.

    .venv/bin/python -m benchmarks.grammar_cost [--model PATH] [--threads N] [--repeat N]

Walks the tokens of a JSON document that satisfies a schema (name/age/tags/address) and, at every
token, times:
  (a) one `llama_decode` of one token for one sequence: the reference;
  (b) llguidance: computing the next-token mask (what Hearth does every constrained step);
  (c) llguidance: applying that mask to the logits (Hearth does it only when the sampled token is refused);
  (d) llama.cpp's grammar sampler (`json_schema_to_gbnf` + `llama_sampler_init_grammar`) applied to the
      whole vocabulary (what llama.cpp does when the sampled token is refused);
  (e) llama.cpp's grammar sampler applied to the one sampled token (its fast path).
Prints medians and 90th percentiles in ms, and each as a fraction of (a). The vocabulary size is printed:
(b)-(d) grow with it.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import time

import llama_cpp as L
import numpy as np

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {"type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
                    "required": ["street", "city"], "additionalProperties": False},
    },
    "required": ["name", "age", "tags", "address"],
    "additionalProperties": False,
}
DOC = {"name": "Ada Lovelace", "age": 36, "tags": ["mathematician", "writer", "first programmer"],
       "address": {"street": "12 St James's Square", "city": "London"}}
TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    from hearth.structured import grammar as G
    from hearth.structured.constraint import Grammars
    from hearth.engine.model import Model
    from hearth.models.defaults import default_model_path
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(default_model_path()))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="walks of the document (more samples)")
    args = ap.parse_args()

    model = Model(args.model)
    n_vocab = model.n_vocab
    p = L.llama_context_default_params()
    p.n_ctx, p.n_batch, p.n_threads, p.n_threads_batch, p.no_perf = 1024, 512, args.threads, args.threads, True
    ctx = L.llama_init_from_model(model.ptr, p)
    batch = L.llama_batch_init(512, 0, 1)
    eog = [t for t in range(n_vocab) if model.is_eog(t)]
    grammars = Grammars(model.vocab, n_vocab, eog)
    t = time.perf_counter()
    grammars.tokenizer()
    tokenizer_s = time.perf_counter() - t
    lark = G.json_schema(SCHEMA)
    gbnf = json_schema_to_gbnf(json.dumps(SCHEMA))
    doc = model.tokenize(json.dumps(DOC), add_special=False)
    cand = np.zeros(n_vocab, dtype=TOKEN_DATA)
    one = np.zeros(1, dtype=TOKEN_DATA)
    times: dict[str, list[float]] = {k: [] for k in "abcde"}

    def decode(tokens: list[int], pos: int) -> None:
        for i, tok in enumerate(tokens):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = tok, pos + i, 1
            batch.seq_id[i][0], batch.logits[i] = 0, i == len(tokens) - 1
        batch.n_tokens = len(tokens)
        assert L.llama_decode(ctx, batch) == 0

    def apply(sampler, arr: np.ndarray) -> None:
        cur = L.llama_token_data_array(
            data=ctypes.cast(arr.ctypes.data, ctypes.POINTER(L.llama_token_data)), size=len(arr), selected=-1,
            sorted=False)
        L.llama_sampler_apply(sampler, ctypes.byref(cur))

    prompt = model.tokenize("Describe Ada Lovelace as JSON:\n")
    for _ in range(args.repeat):
        L.llama_memory_seq_rm(L.llama_get_memory(ctx), -1, -1, -1)
        decode(prompt, 0)
        pos = len(prompt)
        c = grammars.compile(lark, "bench")
        smp = L.llama_sampler_init_grammar(model.vocab, gbnf.encode(), b"root")
        for tok in doc:
            logits = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, -1), shape=(n_vocab,)).copy()
            s = time.perf_counter(); c._fresh = False; c._compute(); times["b"].append(time.perf_counter() - s)
            s = time.perf_counter(); c.mask(logits.copy()); times["c"].append(time.perf_counter() - s)
            cand["id"] = np.arange(n_vocab)
            cand["logit"] = logits
            s = time.perf_counter(); apply(smp, cand); times["d"].append(time.perf_counter() - s)
            one[0] = (tok, logits[tok], 0.0)
            s = time.perf_counter(); apply(smp, one); times["e"].append(time.perf_counter() - s)
            assert c.allows(tok) and np.isfinite(one[0]["logit"]), "the document must satisfy the schema"
            c.accept(tok)
            L.llama_sampler_accept(smp, tok)
            s = time.perf_counter(); decode([tok], pos); times["a"].append(time.perf_counter() - s)
            pos += 1
        L.llama_sampler_free(smp)

    ref = statistics.median(times["a"])
    names = {"a": "decode step (reference)", "b": "llguidance: compute mask", "c": "llguidance: apply mask",
             "d": "llama.cpp grammar: whole vocabulary", "e": "llama.cpp grammar: one token"}
    print(f"vocabulary {n_vocab} tokens; {len(doc)} tokens x {args.repeat} walks; "
          f"llguidance tokenizer built in {tokenizer_s:.2f} s (once per model)")
    print(f"{'':40} {'median ms':>10} {'p90 ms':>10} {'/ decode':>10}")
    result = {}
    for k, name in names.items():
        med, p90 = statistics.median(times[k]), pct(times[k], 0.9)
        result[k] = {"what": name, "median_ms": med * 1e3, "p90_ms": p90 * 1e3, "ratio_to_decode": med / ref}
        print(f"{name:40} {med * 1e3:10.3f} {p90 * 1e3:10.3f} {med / ref:10.3f}")
    print(json.dumps({"n_vocab": n_vocab, "threads": args.threads, "figures": result}))
    L.llama_batch_free(batch)
    L.llama_free(ctx)
    model.close()


if __name__ == "__main__":
    main()
