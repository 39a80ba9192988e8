"""The chat engine: the compute loop (compute.py) steps it beside every other loaded model; the event loop never waits.

One step, as in nano-vllm's LLMEngine.step: schedule (scheduler.py: admission, the batch plan) ->
run the model (model_runner.py: llama_decode and sampling, tokens with their logprobs) -> process
outputs (postprocess the KV bookkeeping, feed each token to its sequence's output processors,
decide which sequences finish). Requests reach the stepping thread through a thread-safe queue; a step's
Deltas reach the requests' asyncio queues in one `loop.call_soon_threadsafe` (output.Outbox). A
client that stops reading only grows its own queue.

Determinism (what is guaranteed, measured on llama.cpp's CPU kernels):
- Same prompt + same params (seed) on an engine gives the same text, whether the prompt's prefix
  came from the prefix cache, a coalesced copy, or was evaluated afresh: whether a prompt position
  is evaluated in a big call (>= 64 rows, the large-batch kernels) or a small one depends only on
  the prompt, never on what was cached, and a cell is reused only where the new prompt would have
  computed it in the same regime (prefix_cache.py), so the logits are bit-identical on every path. Measured for llama.cpp's CPU kernels on SmolLM2 Q4_1
  (benchmarks/chunking.py checks a model); the tests check it on the default model.
- Alone or under load: bit-identical while the sequence's KV fits 256 cells (llama.cpp pads the
  attention window to 256; from 512 a LONE single-token decode takes a split-KV flash-attention
  path that sums in another order). Past that, text alone vs. under load can differ where two
  tokens are within rounding of each other (rare for greedy; possible for seeded sampling).
"""
from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from dataclasses import replace
from pathlib import Path
from typing import Sequence as Seq

from hearth.engine.api import (
    ContextLengthExceeded, EngineConfig, EngineError, Embeddings, FinishReason, InvalidRequest, LoadState,
    ModelInfo, ModelLoading, ModelNotLoaded, Overloaded, Prompt, SamplingParams, TokenOut,
)
from hearth.engine.compute import Steppable
from hearth.engine.output import Outbox
from hearth.engine.model import FALLBACK_STOPS
from hearth.engine.sequence import Sequence, Status, Stream

log = logging.getLogger("hearth.engine")
KV_BUDGET = 2 << 30  # bytes of KV cache the default slot count may use
N_BATCH = 512
EMBED_CTX = 2048  # tokens per embedding input at most (its compute buffers grow with it)


def plan_slots(config: EngineConfig, kv_bytes_per_token: int) -> tuple[int, int]:
    """(n_parallel, n_slots): sequences decoded together, and KV streams (the extra ones cache prefixes)."""
    cores = os.cpu_count() or 1
    per_stream = config.n_ctx * kv_bytes_per_token
    fit = max(2, KV_BUDGET // max(1, per_stream))
    n_parallel = config.n_parallel or max(1, min(4 * cores, 16, fit - 1))
    n_slots = max(n_parallel + 1, config.n_slots or min(2 * n_parallel, fit))
    return n_parallel, n_slots


class LlamaEngine(Steppable):
    """A chat model: loads on a thread of its own, then the compute loop (compute.py) steps it."""

    def __init__(self, config: EngineConfig):
        self.config = config
        self.state = LoadState.EMPTY
        self.model: ModelInfo | None = None
        self.load_error: str | None = None
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()  # Sequences from the event loop
        self._lock = threading.Lock()
        self._outstanding = 0  # submitted and not finished: running + waiting
        self._llama = None
        self._scheduler = None
        self._embedder = None
        self._overlap = False  # a decode thread: llama_decode overlaps the last step's output processing
        self._sampled: list[tuple] = []  # the last step's tokens, processed at the start of the next (step)
        self.n_parallel = 0
        self._stats = dict.fromkeys((
            "requests", "finished", "cancelled", "rejected", "prefill_tokens", "cached_prompt_tokens",
            "cache_hits", "coalesced", "completion_tokens", "decode_calls", "embed_inputs", "embed_batches",
        ), 0)

    # lifecycle (compute.Steppable: start, close) ----------------------------------------------
    def load(self) -> None:
        from hearth.engine.embedder import Embedder
        from hearth.engine.model import Model
        from hearth.engine.model_runner import Runner
        from hearth.engine.prefix_cache import PrefixCache
        from hearth.engine.scheduler import Scheduler
        import llama_cpp as L

        cfg = self.config
        model = Model(cfg.model_path, verbose=cfg.verbose, n_gpu_layers=cfg.n_gpu_layers)
        p = model.ptr
        head_dim = model.n_embd // max(1, L.llama_model_n_head(p))
        per_token = 2 * 2 * L.llama_model_n_layer(p) * L.llama_model_n_head_kv(p) * head_dim
        self.n_parallel, n_slots = plan_slots(cfg, per_token)
        threads = cfg.n_threads or os.cpu_count() or 1
        # the output layer is offloaded last (n_layer + 1): from there on the CPU only waits on the GPU
        self._overlap = cfg.overlap if cfg.overlap is not None else cfg.n_gpu_layers > L.llama_model_n_layer(p)
        runner = Runner(model, cfg.n_ctx, n_slots, N_BATCH, threads, self._overlap)
        self._llama = (model, runner)
        cache = PrefixCache(runner, n_slots)
        self._cache = cache
        self._outbox = Outbox()
        self._scheduler = Scheduler(runner, cache, self.n_parallel, self._stats, self._finished, self._outbox)
        # one thread: a second multi-threaded OpenMP team in the process makes libgomp throttle its
        # spin-waits, and generation then runs ~40% slower for the rest of the process's life
        self._embedder = Embedder(model, min(cfg.n_ctx, EMBED_CTX), 1, self._stats)
        mid = cfg.model_id or Path(cfg.model_path).name.removesuffix(".gguf")
        self.model = ModelInfo(id=mid, n_ctx=cfg.n_ctx, created=int(os.path.getmtime(cfg.model_path)))
        self._tokenize, self._render = model.tokenize, model.render_chat
        self._model = model
        self._bos = model.bos if model.bos >= 0 else 0

    def unload(self) -> None:
        """Fail what runs and waits, free the contexts and the model (out of the compute loop by now)."""
        if self._llama is None:
            return
        self._admit()
        self._scheduler.fail_all("engine closed")
        self._embedder.close()
        model, runner = self._llama
        self._llama = None
        runner.close()
        model.close()

    # compute (on the thread stepping it: the compute thread or a helper) -----------------------
    def _admit(self) -> None:
        waiting = self._scheduler.waiting
        while True:
            try:
                waiting.append(self._inbox.get_nowait())
            except queue.Empty:
                return

    def has_work(self) -> bool:
        """Takes in what arrived; whether step() has anything to do."""
        self._admit()
        return self._scheduler.has_work() or bool(self._sampled)

    def set_threads(self, n: int) -> None:
        self._llama[1].set_threads(n)

    def abort(self) -> None:
        """After a failed step: end the running and waiting requests, keep serving."""
        self._sampled = []
        self._scheduler.fail_all("engine error")

    def step(self) -> bool:
        """schedule -> run the model -> process the outputs. Returns whether anything was evaluated.

        A step's sampled tokens go through their output processors (detokenizing, stop strings, the
        deltas) at the start of the next step. With a decode thread (`overlap`), that happens while
        the next step's llama_decode runs, as vLLM's asynchronous scheduling does: each sequence is
        then one token ahead of its processed output, so one that a stop string ends has had one more
        token decoded, which is dropped. Ends known when a token is sampled (end of generation,
        max_tokens, the context, a finished constraint) take the sequence out of the next call."""
        sched, runner = self._scheduler, self._llama[1]
        plan = sched.schedule()
        previous, self._sampled = self._sampled, []
        if plan and runner.overlaps(plan):
            runner.begin(plan)
            ends = self._process_all(previous)
            self._outbox.flush()  # the event loop's wake-up too (a socket write) while the model decodes
            sampled = runner.end()
        else:
            ends = self._process_all(previous)
            sampled = runner.run(plan) if plan else []
        sched.postprocess(plan)
        self._finish_all(ends)
        self._sampled = [self._take(seq, out) for seq, out in sampled if seq.status is not Status.FINISHED]
        if not self._overlap:  # nothing to overlap: process them now
            self._finish_all(self._process_all(self._sampled))
            self._sampled = []
        self._outbox.flush()
        return bool(plan)

    def _process_all(self, taken: list[tuple]) -> list[tuple]:
        """Each token through `_process`; the (sequence, reason, flush) of those that end their sequence."""
        return [end for end in map(self._process, taken) if end]

    def _finish_all(self, ends: list[tuple]) -> None:
        for seq, reason, flush in ends:
            self._scheduler.finish(seq, reason, flush)

    def _take(self, seq: Sequence, out: TokenOut | Exception) -> tuple:
        """A token just sampled: the next call decodes it, unless the sequence certainly ends with it."""
        end = None
        if isinstance(out, Exception):
            log.error("hearth: sampling failed for one sequence", exc_info=out)
            end = FinishReason.ERROR
        elif (self._model.is_eog(out.id) or seq.constraint is not None and seq.constraint.done):
            end = FinishReason.STOP
        elif seq.params.max_tokens is not None and seq.n_out + 1 >= seq.params.max_tokens:
            end = FinishReason.LENGTH
        elif len(seq.slot.tokens) + 1 >= self.config.n_ctx:  # prompt + completion reached the context ceiling
            end = FinishReason.LENGTH
        if end is None:
            seq.last = out.id
        else:
            seq.status = Status.ENDING
        return seq, out, end

    def _process(self, taken: tuple) -> tuple | None:
        """One sampled token through its sequence's output processors; (sequence, reason, flush) when
        it ends the sequence."""
        seq, out, end = taken
        if seq.cancelled or seq.status is Status.FINISHED:
            return None  # leaves at the next step, or has left
        if isinstance(out, Exception) or self._model.is_eog(out.id):
            return seq, end, True
        seq.n_out += 1
        try:
            delta, stopped = seq.output.feed(out)
        except Exception:
            log.exception("hearth: an output processor failed for one sequence")
            return seq, FinishReason.ERROR, True
        if delta is not None:
            self._outbox.put(seq, delta)
        if stopped:
            return seq, FinishReason.STOP, False
        return (seq, end, True) if end is not None else None

    def _finished(self, seq: Sequence) -> None:
        with self._lock:
            self._outstanding -= 1

    # requests ---------------------------------------------------------------------------------
    def _check_ready(self) -> None:
        if self.state is LoadState.LOADING:
            raise ModelLoading("the model is still loading", retry_after=1)
        if self.state is not LoadState.READY:
            raise ModelNotLoaded("no model is loaded")

    async def submit(self, prompt: Prompt, params: SamplingParams) -> Stream:
        self._check_ready()
        text = self._render(prompt.messages, prompt.native) if prompt.messages is not None else (prompt.text or "")
        if prompt.messages is not None and self._model.chat_fallback and \
                (params.constraint is None or params.constraint.free_text):
            # a model without a chat template (a base model) writes the fallback's end-of-turn as text and
            # never stops: measured with Gemma 3 270M, "Say hello.<|im_end|>\n<|im_start|>admin\n..." to max_tokens.
            # Not where a grammar alone ends the answer: there a stop string could only cut it short (Gemma
            # wrote "<|im_start|>" inside a forced apply_patch call, and the call ended half-written)
            params = replace(params, stop=(*params.stop, *(s for s in FALLBACK_STOPS if s not in params.stop)))
        tokens = self._tokenize(text) or [self._bos]
        n_ctx = self.config.n_ctx
        if len(tokens) >= n_ctx:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {n_ctx} tokens, but the prompt has {len(tokens)} tokens.",
                prompt_tokens=len(tokens), n_ctx=n_ctx,
            )
        constraint = await self._compile(params)
        with self._lock:
            if self._outstanding >= self.n_parallel + self.config.max_queue:
                self._stats["rejected"] += 1
                raise Overloaded("the server is overloaded; retry shortly", retry_after=1)
            self._outstanding += 1
            self._stats["requests"] += 1
        loop = asyncio.get_running_loop()
        stream = Stream(loop, len(tokens), self.wake)
        stream.think_open = prompt.messages is not None and text.rstrip().endswith("<think>")
        self._inbox.put(Sequence(tokens, params, stream, loop, constraint))
        self.wake()
        return stream

    async def _compile(self, params: SamplingParams):
        """Check what only the model can judge; compile the request's constraint for this sequence."""
        n_vocab = self._model.n_vocab
        for token, _ in params.logit_bias:
            if not 0 <= token < n_vocab:
                raise InvalidRequest(
                    f"logit_bias names token {token}, outside this model's vocabulary (0..{n_vocab - 1}).",
                    param="logit_bias")
        for k in (params.logprobs, params.prompt_logprobs):
            if k is not None and not 0 <= k <= 20:
                raise InvalidRequest("logprobs must be between 0 and 20.", param="logprobs")
        if params.constraint is None:
            return None
        try:
            return await params.constraint.compile(self._model)
        except EngineError:
            raise
        except Exception as exc:  # a bug in a constraint must not become a 500 without a trace
            log.exception("hearth: compiling a constraint failed")
            raise InvalidRequest(f"the constraint could not be compiled: {exc}", param=None, status=400) from exc

    async def embed(self, texts: Seq[str]) -> Embeddings:
        self._check_ready()
        return await self._embedder.embed(list(texts))

    def stats(self) -> dict[str, int]:
        s = dict(self._stats)
        sched = self._scheduler
        if sched is not None:
            s["running"] = len(sched.running)
            s["waiting"] = len(sched.waiting)
            s["n_parallel"] = self.n_parallel
            s["slots"] = len(self._cache.slots)
            s["kv_tokens"] = sum(len(x.tokens) for x in self._cache.slots)
            s["kv_tokens_running"] = sum(len(x.tokens) for x in self._cache.slots if x.seq is not None)
            s["evictions"] = self._cache.evictions
        s["outstanding"] = self._outstanding
        return s
