"""The loaded GGUF model: weights, vocabulary, tokenizer, detokenizer and chat template.

Read-only after loading, so the generation and embedding threads may share it.
"""
from __future__ import annotations

import ctypes
import os
from datetime import datetime

import jinja2
import jinja2.ext
import llama_cpp as L
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hearth import gguf
from hearth.structured import tool_format
from hearth.engine.api import ChatMessage

_backend_ready = False


def _silent_logger():
    """A log callback that does nothing, in C: llama.cpp logs a few debug lines per decode, and a
    Python callback would take the GIL (waiting on the event loop) for each of them."""
    try:  # libc's abs(int) ignores the other two arguments under the C calling conventions
        return ctypes.cast(ctypes.cast(ctypes.CDLL(None).abs, ctypes.c_void_p), L.llama_log_callback)
    except (OSError, AttributeError, TypeError):
        return L.llama_log_callback(lambda level, text, user_data: None)


_silence = _silent_logger()  # kept alive: llama.cpp holds the pointer


def init_backend(verbose: bool) -> None:
    global _backend_ready
    if not verbose:
        L.llama_log_set(_silence, ctypes.c_void_p())
    if not _backend_ready:
        L.llama_backend_init()
        _backend_ready = True


# where a turn ends in the ChatML fallback (a model without a chat template): its end, or the next turn's
# start (Gemma 3 270M, a base model, also writes "</|im_end|>" and then "<|im_start|>user")
FALLBACK_STOPS = ("<|im_end|>", "<|im_start|>")

class Model:
    def __init__(self, path: str, verbose: bool = False, n_gpu_layers: int = 0):
        gguf.check(path)  # a clear error for a bad file, before llama.cpp sees it
        init_backend(verbose)
        params = L.llama_model_default_params()
        params.n_gpu_layers = n_gpu_layers  # the default offloads every layer (-1); the registry's fit decides
        self.ptr = L.llama_model_load_from_file(os.fsencode(path), params)
        if not self.ptr:
            raise RuntimeError(f"llama.cpp could not load {path} (an architecture it does not know, or tensors it "
                               "cannot read; --verbose shows llama.cpp's own reason)")
        self.vocab = L.llama_model_get_vocab(self.ptr)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        self.n_embd = L.llama_model_n_embd(self.ptr)
        self.n_ctx_train = L.llama_model_n_ctx_train(self.ptr)
        self.bos = L.llama_vocab_bos(self.vocab)
        self._pieces: dict[int, bytes] = {}
        self._piece_buf = ctypes.create_string_buffer(256)
        self._template = self._load_template()
        self.chat_fallback = self._template is None  # chats are rendered in ChatML (render_chat)

    def close(self) -> None:
        if self.ptr:
            L.llama_model_free(self.ptr)
            self.ptr = None

    # metadata ---------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(1 << 16)
        n = L.llama_model_meta_val_str(self.ptr, key.encode(), buf, len(buf))
        if n < 0:
            return None
        if n >= len(buf):
            buf = ctypes.create_string_buffer(n + 1)
            L.llama_model_meta_val_str(self.ptr, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", errors="replace")

    # tokens -----------------------------------------------------------------------------------
    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        arr = (L.llama_token * cap)()
        n = L.llama_tokenize(self.vocab, data, len(data), arr, cap, add_special, True)
        if n < 0:  # never for byte-level vocabularies, but be exact
            cap = -n
            arr = (L.llama_token * cap)()
            n = L.llama_tokenize(self.vocab, data, len(data), arr, cap, add_special, True)
        tokens = arr[:n]
        if len(tokens) >= 2 and tokens[0] == tokens[1] == self.bos:  # template already wrote BOS
            tokens = tokens[1:]
        return tokens

    def piece(self, token: int) -> bytes:
        """The bytes of one token (may end mid-character); special tokens render as nothing."""
        p = self._pieces.get(token)
        if p is None:
            n = L.llama_token_to_piece(self.vocab, token, self._piece_buf, 256, 0, False)
            p = self._piece_buf.raw[: max(n, 0)]
            self._pieces[token] = p
        return p

    def is_eog(self, token: int) -> bool:
        return L.llama_vocab_is_eog(self.vocab, token)

    # chat -------------------------------------------------------------------------------------
    def _load_template(self):
        source = self.meta("tokenizer.chat_template")
        self.renders_tools = tool_format.renders_tools(source)  # its own Hermes-style tool rendering
        if not source:
            return None
        env = ImmutableSandboxedEnvironment(
            loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
        )

        def raise_exception(message):
            raise ValueError(message)

        env.globals.update(raise_exception=raise_exception, strftime_now=lambda f: datetime.now().strftime(f))
        env.filters["tojson"] = tool_format.tojson  # as transformers renders it: no HTML escaping
        return env.from_string(source)

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return L.llama_vocab_get_text(self.vocab, token).decode("utf-8", errors="replace")

    def render_chat(self, messages: tuple[ChatMessage, ...], native=None) -> str:
        """The model's own Jinja chat template (GGUF `tokenizer.chat_template`), ready for the reply.
        `native` (api.Prompt.native): rendered instead, with `tools=`, when the template renders tools."""
        if native is not None and self.renders_tools:
            native_messages, tools = native
            return self._template.render(
                messages=list(native_messages), tools=list(tools) if tools else None, add_generation_prompt=True,
                bos_token=self._token_text(self.bos), eos_token=self._token_text(L.llama_vocab_eos(self.vocab)),
            )
        msgs = [{"role": m.role, "content": m.content} for m in messages]
        if self._template is None:  # ChatML, the most common convention, as a fallback (FALLBACK_STOPS end the turn)
            body = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in msgs)
            return body + "<|im_start|>assistant\n"
        return self._template.render(
            messages=msgs,
            add_generation_prompt=True,
            bos_token=self._token_text(self.bos),
            eos_token=self._token_text(L.llama_vocab_eos(self.vocab)),
        )
