"""The only place that runs the model for generation: one llama context, one batch, the KV streams.

Each slot is a llama seq id with its own KV stream (`kv_unified=False`): measured here, a sequence's
logits are then bit-identical whatever else shares the batch (joint prefills included), and 8
sequences decode 1.6x faster together than one alone (unified: 1.27x, and joint prefills diverge).
The price: seq_cp across streams copies a whole stream, so prefixes are copied whole then trimmed.
"""
from __future__ import annotations

import random

import llama_cpp as L

from hearth.engine.api import SamplingParams
from hearth.engine.model import Model

TOP_K = 40  # before top-p: top-p alone over a 49k vocabulary costs ~1.2 ms per sequence per step
PENALTY_LAST_N = 64


class Runner:
    def __init__(self, model: Model, n_ctx: int, n_slots: int, n_batch: int, n_threads: int):
        self.model = model
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        p = L.llama_context_default_params()
        p.n_ctx = n_ctx * n_slots  # non-unified: each stream gets n_ctx cells
        p.n_batch = p.n_ubatch = n_batch
        p.n_seq_max = n_slots
        p.n_threads = p.n_threads_batch = n_threads
        p.kv_unified = False
        p.no_perf = True
        self.ctx = L.llama_init_from_model(model.ptr, p)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create the generation context")
        self.mem = L.llama_get_memory(self.ctx)
        self.batch = L.llama_batch_init(n_batch, 0, 1)
        self.n = 0  # tokens in the batch being built

    def close(self) -> None:
        if self.ctx:
            L.llama_batch_free(self.batch)
            L.llama_free(self.ctx)
            self.ctx = None

    # the batch --------------------------------------------------------------------------------
    def add(self, token: int, pos: int, seq_id: int, logits: bool) -> int:
        """Append one token; returns its row (the index to sample from when logits is True)."""
        b, i = self.batch, self.n
        b.token[i] = token
        b.pos[i] = pos
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = seq_id
        b.logits[i] = logits
        self.n = i + 1
        return i

    def decode(self) -> int:
        self.batch.n_tokens = self.n
        self.n = 0
        return L.llama_decode(self.ctx, self.batch)

    # sampling ---------------------------------------------------------------------------------
    def sampler(self, params: SamplingParams):
        chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
        add = L.llama_sampler_chain_add
        if params.presence_penalty or params.frequency_penalty:
            # The binding still declares a leading n_vocab that llama.cpp's C function no longer has; the
            # window is passed in both integer slots so it lands in penalty_last_n either way.
            add(chain, L.llama_sampler_init_penalties(
                PENALTY_LAST_N, PENALTY_LAST_N, 1.0, params.frequency_penalty, params.presence_penalty))
        if params.temperature <= 0:
            add(chain, L.llama_sampler_init_greedy())
            return chain
        add(chain, L.llama_sampler_init_top_k(TOP_K))
        if params.top_p < 1.0:
            add(chain, L.llama_sampler_init_top_p(params.top_p, 1))
        add(chain, L.llama_sampler_init_temp(params.temperature))
        seed = params.seed if params.seed is not None else random.getrandbits(32)
        add(chain, L.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        return chain

    def sample(self, sampler, row: int) -> int:
        return L.llama_sampler_sample(sampler, self.ctx, row)  # also accepts the token

    @staticmethod
    def free_sampler(sampler) -> None:
        L.llama_sampler_free(sampler)

    # KV streams -------------------------------------------------------------------------------
    def seq_clear(self, seq_id: int) -> None:
        L.llama_memory_seq_rm(self.mem, seq_id, -1, -1)

    def seq_trim(self, seq_id: int, n: int) -> None:
        """Keep positions [0, n)."""
        L.llama_memory_seq_rm(self.mem, seq_id, n, -1)

    def seq_copy_prefix(self, src: int, dst: int, n: int) -> None:
        # across streams only whole copies are supported (a partial one aborts the process)
        L.llama_memory_seq_rm(self.mem, dst, -1, -1)
        L.llama_memory_seq_cp(self.mem, src, dst, -1, -1)
        L.llama_memory_seq_rm(self.mem, dst, n, -1)
