"""Embeddings: a second context (embeddings=True, mean pooling) on its own thread.

Several inputs go into one llama_decode (one seq id each); each pooled vector is L2-normalised.
Generation keeps running meanwhile: the two threads share the weights, not a context.
"""
from __future__ import annotations

import asyncio
import queue
import threading

import llama_cpp as L

from hearth.engine import embedding_batch
from hearth.engine.api import ContextLengthExceeded, Embeddings

MAX_SEQS = 16  # inputs per decode


class Embedder:
    def __init__(self, model, n_ctx: int, n_threads: int, stats: dict):
        self.model = model
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.stats = stats
        self.ctx = None
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name="hearth-embed", daemon=True)
        self._thread.start()

    async def embed(self, texts: list[str]) -> Embeddings:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._jobs.put((texts, loop, fut))
        return await fut

    def close(self) -> None:
        """Stop the thread and free the context (before the model it belongs to is freed)."""
        self._jobs.put(None)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def _context(self):
        if self.ctx is None:  # created on first use: a server that never embeds never pays for it
            p = L.llama_context_default_params()
            p.n_ctx = p.n_batch = p.n_ubatch = self.n_ctx  # a pooled input must fit one ubatch
            p.n_seq_max = MAX_SEQS
            p.kv_unified = True  # inputs share the cells; each may use the whole context
            p.n_threads = p.n_threads_batch = self.n_threads
            p.embeddings = True
            p.pooling_type = L.LLAMA_POOLING_TYPE_MEAN
            p.no_perf = True
            self.ctx = L.llama_init_from_model(self.model.ptr, p)
            if not self.ctx:
                raise RuntimeError("llama.cpp could not create the embedding context")
            self.batch = L.llama_batch_init(self.n_ctx, 0, 1)
            self.mem = L.llama_get_memory(self.ctx)
        return self.ctx

    def _main(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                break
            texts, loop, fut = job
            try:
                result = self._run(texts)
            except Exception as e:  # noqa: BLE001 - handed to the awaiting request
                loop.call_soon_threadsafe(embedding_batch.settle, fut, None, e)
            else:
                loop.call_soon_threadsafe(embedding_batch.settle, fut, result, None)
        if self.ctx is not None:
            L.llama_batch_free(self.batch)
            L.llama_free(self.ctx)
            self.ctx = None

    def _run(self, texts: list[str]) -> Embeddings:
        inputs = []
        for text in texts:
            tokens = self.model.tokenize(text) or [max(self.model.bos, 0)]
            if len(tokens) > self.n_ctx:
                raise ContextLengthExceeded(
                    f"Input has {len(tokens)} tokens; the embedding context holds {self.n_ctx}.",
                    prompt_tokens=len(tokens), n_ctx=self.n_ctx,
                )
            inputs.append(tokens)
        ctx = self._context()
        vectors: list = [None] * len(inputs)
        i = 0
        while i < len(inputs):  # greedy packing: as many inputs as fit one decode
            group, used = [], 0
            while i < len(inputs) and len(group) < MAX_SEQS and used + len(inputs[i]) <= self.n_ctx:
                group.append(i)
                used += len(inputs[i])
                i += 1
            pooled = embedding_batch.decode(ctx, self.mem, self.batch, [inputs[k] for k in group], self.model.n_embd)
            self.stats["embed_batches"] += 1
            for k, vector in zip(group, pooled):
                vectors[k] = vector
        self.stats["embed_inputs"] += len(inputs)
        return Embeddings(vectors=vectors, prompt_tokens=sum(len(t) for t in inputs))
