"""The only place that runs the model for generation: one llama context, one batch, the KV streams,
and the samplers (logit bias, penalties, constraints, logprobs).

Each slot is a llama seq id with its own KV stream (`kv_unified=False`): measured here, a sequence's
logits are then bit-identical whatever else shares the batch (joint prefills included), and 8
sequences decode 1.6x faster together than one alone (unified: 1.27x, and joint prefills diverge).
The price: seq_cp across streams copies a whole stream, so prefixes are copied through a buffer.
"""
from __future__ import annotations

import ctypes
import math
import random

import llama_cpp as L
import numpy as np

from hearth.engine.api import SamplingParams, TokenOut, TopLogprob
from hearth.engine.decode_thread import DecodeThread
from hearth.engine.model import Model

TOP_K = 40  # before top-p: top-p alone over a 49k vocabulary costs ~1.2 ms per sequence per step
PENALTY_LAST_N = 64
OVERLAP_MIN = 8  # decoding sequences from which a step overlaps (overlaps())


def top_k(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values, largest first (ties: lower index first). The k-th largest of
    every 64th value bounds the answer from below (at least k values reach it), so only the few
    hundred values above it are sorted: ~20 us over 49k values, where np.argpartition takes ~1 ms."""
    sub = x[::64]
    if len(sub) <= k:
        cand = np.arange(len(x))
    else:
        bound = np.partition(sub, len(sub) - k)[len(sub) - k]
        cand = np.flatnonzero(x >= bound)
    return cand[np.argsort(-x[cand], kind="stable")[:k]]


class Runner:
    def __init__(self, model: Model, n_ctx: int, n_slots: int, n_batch: int, n_threads: int,
                 overlap: bool = False):
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
        self.max_threads = self.n_threads = n_threads
        self.mem = L.llama_get_memory(self.ctx)
        self.batch = L.llama_batch_init(n_batch, 0, 1)
        self.n = 0  # tokens in the batch being built
        self.n_vocab = model.n_vocab
        self._cur = None  # llama_token_data[n_vocab] for constrained sampling, made on first use
        self._exp = None  # float32[n_vocab] scratch for logprobs, made on first use
        self._state = [None, None]  # uint8 buffers for copying a sequence's cells (_read)
        self._views: dict[int, np.ndarray] = {}  # logits views by address (_logits)
        self._thread = DecodeThread(self.decode) if overlap else None  # begin() / end()
        self._joint = None  # the rows and spans of the call begun

    def close(self) -> None:
        if self._thread is not None:
            self._thread.close()
            self._thread = None
        if self.ctx:
            L.llama_batch_free(self.batch)
            L.llama_free(self.ctx)
            self.ctx = None

    def set_threads(self, n: int) -> None:
        """Decode with min(n, the threads it was made with) from the next call on."""
        n = max(1, min(n, self.max_threads))
        if n != self.n_threads:
            L.llama_set_n_threads(self.ctx, n, n)
            self.n_threads = n

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

    def _decode(self) -> None:
        self._check(self.decode())

    @staticmethod
    def _check(rc: int) -> None:
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")

    # one step ---------------------------------------------------------------------------------
    def run(self, plan) -> list[tuple]:
        """Evaluate a scheduler Plan: the joint call, then the other chunks; returns [(sequence,
        TokenOut | Exception)]. Each call's logits are sampled before the next call overwrites them.
        An exception in one sequence's sampling (its constraint) is that sequence's result; a failed
        decode raises."""
        out = []
        if plan.decode or plan.joint:
            joint = self._add_joint(plan)
            self._decode()
            out.extend(self._joint_done(*joint))
        for c in plan.prefill:
            if c.seq.cancelled:
                continue
            first, last = self._add_chunk(c)
            self._decode()
            out.extend(self._chunk_done(c, first, last))
        return out

    def overlaps(self, plan) -> bool:
        """Whether to run the plan with `begin`: one joint call, a decode thread, and enough sequences
        that their output processing outweighs the two thread hand-offs (benchmarks/overhead.py, a 1 ms
        decode: 1 stream 5% slower overlapped, 8 even, 32 7% faster)."""
        return self._thread is not None and not plan.prefill and len(plan.decode) >= OVERLAP_MIN

    def begin(self, plan) -> None:
        """Start the plan's one llama_decode on the decode thread. Until `end()` this thread may run
        anything that leaves the context, the batch and the KV cache alone."""
        self._joint = self._add_joint(plan)
        self._thread.start()

    def end(self) -> list[tuple]:
        """Wait for the call begun by `begin` and sample it: what run(plan) returns."""
        self._check(self._thread.wait())
        joint, self._joint = self._joint, None
        return self._joint_done(*joint)

    def _add_joint(self, plan) -> tuple[list, list]:
        """Append the joint call: one token of every decoding sequence, then the small chunks."""
        rows, spans = [], []
        # in stream order: llama.cpp cuts a batch over several KV streams into ubatches (graph runs) of
        # consecutive stream ids with as many tokens each; out of order, one step would run several
        parts = [(s.slot.id, s, None) for s in plan.decode] + [(c.seq.slot.id, c.seq, c) for c in plan.joint]
        for _, seq, c in sorted(parts, key=lambda p: p[0]):
            if c is None:
                rows.append((seq, self.add(seq.last, len(seq.slot.tokens), seq.slot.id, True)))
            else:
                spans.append((c, self._add_chunk(c)))
        return rows, spans

    def _joint_done(self, rows, spans) -> list[tuple]:
        out = [(seq, self._sample(seq, row)) for seq, row in rows]
        for c, (first, last) in spans:
            out.extend(self._chunk_done(c, first, last))
        return out

    def _add_chunk(self, c) -> tuple[int, int]:
        """Append a prompt chunk's tokens; returns the rows of its first and last token."""
        seq = c.seq
        prompt, sid, end = seq.prompt, seq.slot.id, c.end - 1
        every = seq.prompt_out is not None  # prompt logprobs (echo): every row's logits
        first = self.n
        for pos in range(c.start, c.end):
            row = self.add(prompt[pos], pos, sid, every or (c.sample and pos == end))
        return first, row

    def _chunk_done(self, c, first: int, last: int) -> list[tuple]:
        c.done = True
        seq = c.seq
        if seq.prompt_out is not None:
            self._prompt_logprobs(seq, c, first)
        return [(seq, self._sample(seq, last))] if c.sample else []

    # sampling ---------------------------------------------------------------------------------
    def sampler(self, params: SamplingParams):
        """The request's llama.cpp sampler chain; None for plain greedy (the runner takes the argmax)."""
        plain = not (params.logit_bias or params.presence_penalty or params.frequency_penalty)
        if params.temperature <= 0 and plain and params.constraint is None:
            return None
        chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
        add = L.llama_sampler_chain_add
        if params.logit_bias:
            biases = (L.llama_logit_bias * len(params.logit_bias))()
            for b, (token, bias) in zip(biases, params.logit_bias):
                b.token, b.bias = token, -math.inf if bias <= -100 else bias  # -100 bans, as OpenAI says
            add(chain, L.llama_sampler_init_logit_bias(self.n_vocab, len(biases), biases))  # copies them
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

    @staticmethod
    def free_sampler(sampler) -> None:
        L.llama_sampler_free(sampler)

    def _sample(self, seq, row: int):
        try:
            if seq.sampler is None:  # llama.cpp's greedy sampler takes the first largest logit, as argmax
                token = int(self._logits(row).argmax())  # does, without building a 49k-entry array first
            elif seq.constraint is None:
                token = L.llama_sampler_sample(seq.sampler, self.ctx, row)  # also accepts the token
            else:
                token = self._sample_constrained(seq.sampler, seq.constraint, row)
            k = seq.params.logprobs
            if k is None:
                return TokenOut(token, self.model.piece(token))
            return self._with_logprobs(token, row, k)
        except Exception as exc:  # noqa: BLE001 -- one sequence's failure, reported as its result
            return exc

    def _sample_constrained(self, sampler, constraint, row: int) -> int:
        """llama.cpp's fast path: sample freely, check the token, and only when the constraint rejects
        it sample again from the masked logits. Without a rejection this draws exactly what
        llama_sampler_sample would (one pass of the same chain), so a constraint that allows
        everything changes nothing; conditioned on being allowed, a token drawn this way has the
        masked distribution's probability."""
        token = self._apply(sampler, self._candidates(row))
        if not constraint.allows(token):
            cur = self._candidates(row)
            constraint.mask(self._cur_view["logit"])
            token = self._apply(sampler, cur)
            if not constraint.allows(token):
                raise RuntimeError(f"the constraint allows no token here (resampled {token})")
        L.llama_sampler_accept(sampler, token)
        if constraint.accept(token) is False:
            raise RuntimeError(f"the constraint failed: {getattr(constraint, 'failed', '') or 'no reason given'}")
        return token

    @staticmethod
    def _apply(sampler, cur) -> int:
        L.llama_sampler_apply(sampler, ctypes.byref(cur))
        if not 0 <= cur.selected < cur.size:
            raise RuntimeError("the sampler selected no token")
        return cur.data[cur.selected].id

    def _candidates(self, row: int):
        """The row's logits as a llama_token_data_array, in token order (`_cur_view` views it)."""
        n = self.n_vocab
        if self._cur is None:
            self._cur_data = (L.llama_token_data * n)()
            view = np.frombuffer(self._cur_data, dtype=np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")]))
            self._cur_view, self._ids = view, np.arange(n, dtype=np.int32)
            self._cur = L.llama_token_data_array()
        view = self._cur_view
        view["id"] = self._ids  # samplers reorder the array in place
        view["logit"] = self._logits(row)
        view["p"] = 0.0
        cur = self._cur
        cur.data = ctypes.cast(self._cur_data, L.llama_token_data_p)
        cur.size, cur.selected, cur.sorted = n, -1, False
        return cur

    def _logits(self, row: int) -> np.ndarray:
        """The row's logits, a view into llama.cpp's output buffer (valid until the next decode). Views
        are kept by address: np.ctypeslib.as_array builds one in ~50 us, a third of a greedy step's Python."""
        addr = ctypes.cast(L.llama_get_logits_ith(self.ctx, row), ctypes.c_void_p).value
        view = self._views.get(addr)
        if view is None:
            if len(self._views) > 4 * self.n_batch:  # the output buffer moved often: start over
                self._views.clear()
            view = self._views[addr] = np.frombuffer((ctypes.c_float * self.n_vocab).from_address(addr), np.float32)
        return view

    def _with_logprobs(self, token: int, row: int, k: int) -> TokenOut:
        """The model's own log-probabilities: log-softmax of the raw logits (before bias, penalties,
        constraint, temperature, top-k, top-p). Only when asked: ~0.1 ms per token over a 49k vocabulary."""
        x = self._logits(row)
        if self._exp is None:
            self._exp = np.empty(self.n_vocab, dtype=np.float32)
        m = x.max()
        np.subtract(x, m, out=self._exp)
        np.exp(self._exp, out=self._exp)
        lse = float(m) + math.log(float(self._exp.sum(dtype=np.float64)))
        top = ()
        if k > 0:
            piece = self.model.piece
            top = tuple(TopLogprob(int(i), piece(int(i)), float(x[i]) - lse) for i in top_k(x, k))
        return TokenOut(token, self.model.piece(token), float(x[token]) - lse, top)

    def _prompt_logprobs(self, seq, c, first: int) -> None:
        """Append to seq.prompt_out each prompt token's logprob given the tokens before it: row first + i
        of the call just decoded predicts position c.start + i + 1; the prompt's first token has none."""
        prompt, k = seq.prompt, seq.params.prompt_logprobs
        if c.start == 0:
            seq.prompt_out.append(TokenOut(prompt[0], self.model.piece(prompt[0])))
        for row, pos in enumerate(range(c.start, min(c.end, len(prompt) - 1)), first):
            seq.prompt_out.append(self._with_logprobs(prompt[pos + 1], row, k))

    # KV streams -------------------------------------------------------------------------------
    def seq_clear(self, seq_id: int) -> None:
        L.llama_memory_seq_rm(self.mem, seq_id, -1, -1)

    def seq_trim(self, seq_id: int, n: int) -> None:
        """Keep positions [0, n)."""
        L.llama_memory_seq_rm(self.mem, seq_id, n, -1)

    def seq_copy_prefix(self, src: int, dst: int, n: int) -> None:
        """dst holds src's first n positions. Copied cell by cell through a buffer (llama's per-sequence
        state), not with seq_cp: across streams seq_cp copies a whole stream (n_ctx cells, ~10 ms here,
        deferred to the next decode), this costs ~5 us per cell src holds. Bit-identical to src."""
        self._write(dst, *self._read(src, 0))
        L.llama_memory_seq_rm(self.mem, dst, n, -1)

    def seq_swap(self, a: int, b: int) -> None:
        """Exchange the cells of streams a and b."""
        cells_a, cells_b = self._read(a, 0), self._read(b, 1)
        self._write(a, *cells_b)
        self._write(b, *cells_a)

    def _read(self, seq_id: int, which: int):
        """(pointer, size): seq_id's cells, in buffer `which` (0 or 1), grown on use and kept."""
        size = L.llama_state_seq_get_size_ext(self.ctx, seq_id, 0)
        buf = self._state[which]
        if buf is None or buf.nbytes < size:
            buf = self._state[which] = np.empty(max(size, 0 if buf is None else 2 * buf.nbytes), np.uint8)
        ptr = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))
        got = L.llama_state_seq_get_data_ext(self.ctx, ptr, buf.nbytes, seq_id, 0)
        if got == 0:
            raise RuntimeError(f"llama.cpp could not read the cells of sequence {seq_id}")
        return ptr, got

    def _write(self, seq_id: int, ptr, size: int) -> None:
        L.llama_memory_seq_rm(self.mem, seq_id, -1, -1)
        if L.llama_state_seq_set_data_ext(self.ctx, ptr, size, seq_id, 0) != size:
            raise RuntimeError(f"llama.cpp could not write the cells of sequence {seq_id}")
