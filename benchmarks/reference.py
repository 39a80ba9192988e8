"""In-process references, no HTTP, measured in the same run as the server figures.

(a) `bare_loop`: llama-cpp-python's low-level bindings, one sequence, greedy: one prefill `llama_decode`,
    then one `llama_decode` per token, with detokenisation. The ceiling for one stream on this machine.
(b) `high_level`: `Llama.create_completion(temperature=0)`, not streamed, for context: the per-token
    overhead of the high-level API (end-to-end figure only).

Both report end-to-end tokens/s (tokens / (prefill + generation)) and decode tokens/s
((tokens - 1) / time after the first token), the same definitions the HTTP figures use.
"""
from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass

import llama_cpp

_silence = llama_cpp.llama_log_callback(lambda level, text, user_data: None)
_quiet = False


def quiet() -> None:
    """Keep llama.cpp's own logs off stderr (the callback object must stay alive: module global)."""
    global _quiet
    if not _quiet:
        llama_cpp.llama_backend_init()
        llama_cpp.llama_log_set(_silence, ctypes.c_void_p(0))
        _quiet = True


@dataclass
class RefRun:
    tokens: int
    prompt_tokens: int
    ttft: float  # seconds: tokenize + prefill + first sample
    total: float  # seconds for all tokens
    first_eog: int | None = None  # index of the first end-of-generation token (bare loop ignores it)

    @property
    def e2e_tps(self) -> float:
        return self.tokens / self.total

    @property
    def decode_tps(self) -> float:
        return (self.tokens - 1) / (self.total - self.ttft) if self.tokens > 1 else float("nan")


class Tokenizer:
    """Vocabulary only: counts tokens the way the server's model does (used to size prompts)."""

    def __init__(self, model_path: str):
        quiet()
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        self.model = llama_cpp.llama_model_load_from_file(str(model_path).encode(), params)
        if not self.model:
            raise RuntimeError(f"cannot load the vocabulary of {model_path}")
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        data = text.encode()
        cap = len(data) + 8
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, False)
        if n < 0:
            raise RuntimeError("tokenize failed")
        return list(buf[:n])

    def count(self, text: str) -> int:
        return len(self.tokenize(text, add_special=False))

    def close(self) -> None:
        if self.model:
            llama_cpp.llama_model_free(self.model)
            self.model = None


class BareLoop:
    """Reference (a): one context, one sequence, one `llama_decode` per generated token."""

    def __init__(self, model_path: str, n_threads: int, n_ctx: int = 4096, n_batch: int = 512):
        quiet()
        self.model = llama_cpp.llama_model_load_from_file(str(model_path).encode(),
                                                          llama_cpp.llama_model_default_params())
        if not self.model:
            raise RuntimeError(f"cannot load {model_path}")
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        cp = llama_cpp.llama_context_default_params()
        cp.n_ctx, cp.n_batch, cp.n_ubatch = n_ctx, n_batch, n_batch
        cp.n_threads = cp.n_threads_batch = n_threads
        cp.n_seq_max = 1
        self.ctx = llama_cpp.llama_init_from_model(self.model, cp)
        if not self.ctx:
            raise RuntimeError("cannot create a llama context")
        self.n_batch = n_batch
        self.batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self.sampler = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        llama_cpp.llama_sampler_chain_add(self.sampler, llama_cpp.llama_sampler_init_greedy())
        self._piece = ctypes.create_string_buffer(256)

    def _fill(self, tokens: list[int], pos0: int) -> None:
        b = self.batch
        b.n_tokens = len(tokens)
        for i, tok in enumerate(tokens):
            b.token[i] = tok
            b.pos[i] = pos0 + i
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = 0
            b.logits[i] = 0
        b.logits[len(tokens) - 1] = 1

    def _decode(self, tokens: list[int], pos0: int) -> None:
        self._fill(tokens, pos0)
        rc = llama_cpp.llama_decode(self.ctx, self.batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")

    def run(self, prompt: str, n_tokens: int) -> RefRun:
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.ctx), True)
        llama_cpp.llama_sampler_reset(self.sampler)
        t0 = time.perf_counter()
        data = prompt.encode()
        cap = len(data) + 8
        buf = (llama_cpp.llama_token * cap)()
        n_prompt = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, cap, True, False)
        tokens = list(buf[:n_prompt])
        for start in range(0, n_prompt, self.n_batch):  # prefill, in n_batch chunks
            self._decode(tokens[start:start + self.n_batch], start)
        pos, first_eog, ttft, out = n_prompt, None, 0.0, bytearray()
        for i in range(n_tokens):
            tok = llama_cpp.llama_sampler_sample(self.sampler, self.ctx, -1)
            n = llama_cpp.llama_token_to_piece(self.vocab, tok, self._piece, 256, 0, False)
            out += self._piece.raw[:max(n, 0)]
            if i == 0:
                ttft = time.perf_counter() - t0
            if first_eog is None and llama_cpp.llama_vocab_is_eog(self.vocab, tok):
                first_eog = i
            if i + 1 < n_tokens:
                self._decode([tok], pos)
                pos += 1
        total = time.perf_counter() - t0
        self.last_text = out.decode("utf-8", "replace")
        return RefRun(tokens=n_tokens, prompt_tokens=n_prompt, ttft=ttft, total=total, first_eog=first_eog)

    def close(self) -> None:
        if self.ctx:
            llama_cpp.llama_sampler_free(self.sampler)
            llama_cpp.llama_batch_free(self.batch)
            llama_cpp.llama_free(self.ctx)
            llama_cpp.llama_model_free(self.model)
            self.ctx = None


class HighLevel:
    """Reference (b): `Llama.create_completion`, greedy, not streamed."""

    def __init__(self, model_path: str, n_threads: int, n_ctx: int = 4096):
        quiet()
        self.llm = llama_cpp.Llama(model_path=str(model_path), n_ctx=n_ctx, n_threads=n_threads,
                                   n_threads_batch=n_threads, verbose=False)
        quiet()

    def run(self, prompt: str, n_tokens: int) -> RefRun:
        self.llm.reset()  # no prefix reuse from the previous run
        t0 = time.perf_counter()
        out = self.llm.create_completion(prompt, max_tokens=n_tokens, temperature=0.0)
        total = time.perf_counter() - t0
        usage, finish = out["usage"], out["choices"][0]["finish_reason"]
        # create_completion stops at end-of-generation: tokens may be fewer than asked
        n = usage["completion_tokens"]
        return RefRun(tokens=n, prompt_tokens=usage["prompt_tokens"], ttft=float("nan"), total=total,
                      first_eog=None if finish == "length" else n)

    def close(self) -> None:
        self.llm.close()
