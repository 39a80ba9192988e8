"""Embedding inputs packed into one llama_decode, one sequence id each, and their pooled vectors.

The one packer of the two embedding paths: the embedding engine (embedding_engine.py, an embedding
model on the compute thread) and the chat model's embedder (embedder.py, its own pooled context).
"""
from __future__ import annotations

import asyncio
import ctypes

import llama_cpp as L
import numpy as np


def decode(ctx, mem, batch, inputs: list[list[int]], dim: int) -> list[list[float]]:
    """One llama_decode of `inputs` (sequence i = input i) from an empty memory; the L2-normalised pooled
    vector of each. Raises RuntimeError when llama.cpp refuses the batch."""
    n = 0
    for seq, tokens in enumerate(inputs):
        for pos, tok in enumerate(tokens):
            batch.token[n], batch.pos[n], batch.n_seq_id[n], batch.logits[n] = tok, pos, 1, True
            batch.seq_id[n][0] = seq
            n += 1
    batch.n_tokens = n
    L.llama_memory_clear(mem, True)
    rc = L.llama_decode(ctx, batch)
    if rc != 0:
        raise RuntimeError(f"llama_decode (embeddings) returned {rc}")
    return [_normalised(L.llama_get_embeddings_seq(ctx, seq), dim) for seq in range(len(inputs))]


def _normalised(ptr, dim: int) -> list[float]:
    v = np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(dim,)).astype(np.float64)
    norm = float(np.linalg.norm(v))
    return (v / norm if norm > 0 else v).tolist()


def settle(fut: asyncio.Future, result, error) -> None:
    """Resolve an awaiting request's future (on its event loop, through call_soon_threadsafe)."""
    if fut.cancelled():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)
