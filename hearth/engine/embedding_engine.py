"""An embedding model (a GGUF with a pooling type, e.g. BERT) served by a llama.cpp context in embeddings mode.

Inputs of every waiting request are packed into one `llama_decode` (one sequence id each, up to
N_PACK tokens and N_SEQ sequences; a longer input goes alone), pooled as the GGUF says
(all-MiniLM-L6-v2: mean) and L2-normalised. A request's vectors come back in input order once all
of them are computed. Small packs are faster per vector: attention spans the whole pack.

`start()` loads it on a thread of its own; then the compute loop (compute.py) steps it beside every
other loaded model: `step()` runs one decode and returns whether it did any work.
"""
from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from hearth.engine.api import (
    ContextLengthExceeded, EngineConfig, Embeddings, LoadState, ModelInfo, ModelLoading, ModelNotLoaded,
    Overloaded,
)
from hearth.engine import embedding_batch
from hearth.engine.compute import Steppable

log = logging.getLogger("hearth.embedding")
N_PACK = 512  # tokens packed into one decode (benchmarks/embeddings.py)
N_SEQ = 16  # inputs per decode


@dataclass(eq=False)
class _Job:
    inputs: list[list[int]]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    vectors: list = field(default_factory=list)
    left: int = 0


class EmbeddingEngine(Steppable):
    def __init__(self, config: EngineConfig, n_pack: int = N_PACK, n_seq: int = N_SEQ, n_threads: int | None = None):
        self.config = config
        self.state = LoadState.EMPTY
        self.model: ModelInfo | None = None
        self.n_pack, self.n_seq = n_pack, n_seq
        self.n_batch = 0  # tokens one decode holds: the longest input the model takes, or n_pack
        # stepped by the compute loop: all cores, or one while it is lent to a helper (compute.py)
        self.n_threads = n_threads or config.n_threads or os.cpu_count() or 1
        self.threads_now = self.n_threads  # what decodes use now (set_threads)
        self.max_tokens = 0  # tokens of one input at most: set on load
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()  # jobs from the event loop
        self._ready: deque = deque()  # (job, index) waiting for a decode, on the thread stepping it
        self._lock = threading.Lock()
        self._outstanding = 0
        self._closing = False
        self._model = self._ctx = self._batch = None
        self._stats = {"requests": 0, "embed_inputs": 0, "embed_tokens": 0, "embed_batches": 0, "rejected": 0}

    # lifecycle (compute.Steppable: start, close) ----------------------------------------------
    def load(self) -> None:
        """Load the model and make its context."""
        import llama_cpp as L

        from hearth.engine.model import Model

        cfg = self.config
        model = Model(cfg.model_path, verbose=cfg.verbose, n_gpu_layers=cfg.n_gpu_layers)
        self.n_batch = max(self.n_pack, min(model.n_ctx_train or self.n_pack, 8192))
        try:
            p = L.llama_context_default_params()
            p.n_ctx = p.n_batch = p.n_ubatch = self.n_batch  # a pooled input must sit in one ubatch
            p.n_seq_max = self.n_seq
            p.kv_unified = True
            p.n_threads = p.n_threads_batch = self.n_threads
            p.embeddings = True
            p.pooling_type = L.LLAMA_POOLING_TYPE_UNSPECIFIED  # the GGUF's own (`<arch>.pooling_type`)
            p.no_perf = True
            ctx = L.llama_init_from_model(model.ptr, p)
            if ctx and L.llama_pooling_type(ctx) == L.LLAMA_POOLING_TYPE_NONE:  # no pooling in the file: mean
                L.llama_free(ctx)
                p.pooling_type = L.LLAMA_POOLING_TYPE_MEAN
                ctx = L.llama_init_from_model(model.ptr, p)
            if not ctx:
                raise RuntimeError(f"llama.cpp could not create an embedding context for {cfg.model_path}")
        except BaseException:
            model.close()
            raise
        self._L, self._model, self._ctx = L, model, ctx
        self.pooling = L.llama_pooling_type(ctx)
        self._batch = L.llama_batch_init(self.n_batch, 0, 1)
        self._mem = L.llama_get_memory(ctx)
        self._dim = L.llama_model_n_embd(model.ptr)
        self.max_tokens = min(model.n_ctx_train or self.n_batch, self.n_batch)  # positions the model has
        mid = cfg.model_id or Path(cfg.model_path).name.removesuffix(".gguf")
        self.model = ModelInfo(id=mid, n_ctx=self.max_tokens, created=int(os.path.getmtime(cfg.model_path)))

    def unload(self) -> None:
        """Fail whatever waits and free the context and the model (out of the compute loop by now)."""
        self._fail_all(ModelNotLoaded("the embedding model was unloaded"))
        if self._ctx is not None:
            self._L.llama_batch_free(self._batch)
            self._L.llama_free(self._ctx)
            self._model.close()
            self._ctx = self._model = self._batch = None

    # compute (one thread) ---------------------------------------------------------------------
    def has_work(self) -> bool:
        return bool(self._ready) or not self._inbox.empty()

    def abort(self) -> None:
        self._fail_all(RuntimeError("the embedding engine failed"))

    def set_threads(self, n: int) -> None:
        n = max(1, min(n, self.n_threads))
        if self._ctx is not None and n != self.threads_now:
            self._L.llama_set_n_threads(self._ctx, n, n)
            self.threads_now = n

    def _admit(self, job: _Job) -> None:
        job.vectors = [None] * len(job.inputs)
        job.left = len(job.inputs)
        self._ready.extend((job, i) for i in range(len(job.inputs)))

    def _admit_waiting(self) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._admit(item)

    def step(self) -> bool:
        """One llama_decode over as many waiting inputs as fit; False if there was nothing to do."""
        self._admit_waiting()
        if not self._ready or self._ctx is None:
            return False
        group, n = [], 0
        while self._ready and len(group) < self.n_seq:  # first come, first packed
            job, i = self._ready[0]
            if group and n + len(job.inputs[i]) > self.n_pack:
                break
            self._ready.popleft()
            group.append((job, i))
            n += len(job.inputs[i])
        try:
            pooled = embedding_batch.decode(self._ctx, self._mem, self._batch, [job.inputs[i] for job, i in group],
                                            self._dim)
        except RuntimeError as error:
            for job, _ in group:
                self._finish(job, error)
            return True
        self._stats["embed_batches"] += 1
        self._stats["embed_inputs"] += len(group)
        self._stats["embed_tokens"] += n
        for (job, i), vector in zip(group, pooled):
            if job.left <= 0:  # the job already failed
                continue
            job.vectors[i] = vector
            job.left -= 1
            if job.left == 0:
                self._finish(job, None)
        return True

    def _finish(self, job: _Job, error: BaseException | None) -> None:
        if job.left < 0:
            return
        job.left = -1
        with self._lock:
            self._outstanding -= 1
        if error is not None:
            job.loop.call_soon_threadsafe(embedding_batch.settle, job.future, None, error)
        else:
            result = Embeddings(vectors=job.vectors, prompt_tokens=sum(len(t) for t in job.inputs))
            job.loop.call_soon_threadsafe(embedding_batch.settle, job.future, result, None)

    def _fail_all(self, error: BaseException) -> None:
        self._admit_waiting()
        while self._ready:
            job, _ = self._ready.popleft()
            self._finish(job, error)

    # requests (event loop) --------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        """[CLS] text [SEP] for BERT: the model's own special tokens, special-token text parsed as
        Hugging Face's tokenizers do (no BOS de-duplication, unlike a chat prompt)."""
        L, vocab = self._L, self._model.vocab
        data = text.encode("utf-8")
        cap = len(data) + 8
        arr = (L.llama_token * cap)()
        n = L.llama_tokenize(vocab, data, len(data), arr, cap, True, True)
        if n < 0:
            cap = -n
            arr = (L.llama_token * cap)()
            n = L.llama_tokenize(vocab, data, len(data), arr, cap, True, True)
        return arr[:n]

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        if self.state is LoadState.LOADING:
            raise ModelLoading("the embedding model is still loading", retry_after=1)
        if self.state is not LoadState.READY or self._closing:
            raise ModelNotLoaded("no embedding model is loaded")
        inputs = []
        for text in texts:
            tokens = self.tokenize(text) or [max(self._model.bos, 0)]  # BERT always has [CLS] [SEP]
            if len(tokens) > self.max_tokens:
                raise ContextLengthExceeded(
                    f"Input has {len(tokens)} tokens; this embedding model takes at most {self.max_tokens}.",
                    prompt_tokens=len(tokens), n_ctx=self.max_tokens,
                )
            inputs.append(tokens)
        if not inputs:
            return Embeddings(vectors=[], prompt_tokens=0)
        with self._lock:
            if self._outstanding >= self.config.max_queue:
                self._stats["rejected"] += 1
                raise Overloaded("the embedding model is overloaded; retry shortly", retry_after=1)
            self._outstanding += 1
            self._stats["requests"] += 1
        loop = asyncio.get_running_loop()
        job = _Job(inputs, loop, loop.create_future())
        self._inbox.put(job)
        self.wake()
        return await job.future

    async def submit(self, prompt, params):
        raise ModelNotLoaded("this is an embedding model: it serves /v1/embeddings only")

    def stats(self) -> dict[str, int]:
        return {**self._stats, "outstanding": self._outstanding, "n_threads": self.n_threads}
