"""A grammar (from `grammar.py`) applied to one sequence's sampling: which tokens may come next.

`Grammars` belongs to one loaded model: it builds llguidance's view of the vocabulary once (~1 s, on
first use) and compiles grammar text into `Constraint`s. A `Constraint` lives on the engine thread, one
per sequence, and is used like llama.cpp's own grammar fast path, which keeps its cost near zero:

    token = sample(logits)                       # the sequence's usual sampler chain
    if not constraint.allows(token):             # one bit of a mask llguidance computes in ~20 us
        constraint.mask(logits)                  # forbidden tokens -> -inf (~60 us), then resample
        token = sample(logits)
    constraint.accept(token)                     # never a token the mask forbids
    if constraint.done: finish("stop")           # the grammar is complete: nothing but EOS may follow

Conditioned on being allowed, a token drawn this way has the masked distribution's probability, so
the fast path changes speed, not output. llguidance reports every failure as a state (is_error), never
an abort; a Constraint turns an impossible state into `failed` so the engine ends the sequence.
"""
from __future__ import annotations

import threading
import warnings
import weakref

import numpy as np
from llguidance import LLMatcher, LLTokenizer

from hearth.structured.grammar import GrammarError, _detail, limits, run

# mask byte -> the 8 logit offsets it stands for (0 allowed, -inf forbidden), bit i = token 8k+i
_BYTE_BIAS = np.array([[0.0 if (b >> i) & 1 else -np.inf for i in range(8)] for b in range(256)], dtype=np.float32)


class Grammars:
    """One model's grammar compiler. Thread-safe; the tokenizer is built on first use."""

    def __init__(self, vocab, n_vocab: int, eog: list[int]):
        self._vocab, self.n_vocab, self.eog = vocab, n_vocab, eog
        self._tokenizer: LLTokenizer | None = None
        self._lock = threading.Lock()
        self._writable: dict[str, bool] = {}  # _unwritable's answers, by character

    def tokenizer(self) -> LLTokenizer:
        with self._lock:
            if self._tokenizer is None:
                from llguidance.llamacpp import lltokenizer_from_vocab  # imports llama_cpp

                with warnings.catch_warnings():  # it calls a binding llama-cpp-python marks deprecated
                    warnings.simplefilter("ignore", DeprecationWarning)
                    self._tokenizer = lltokenizer_from_vocab(self._vocab, n_vocab=self.n_vocab, eos_token=self.eog)
            return self._tokenizer

    def compile(self, lark: str, param: str) -> "Constraint":
        """Grammar text -> a fresh Constraint. Slow for big grammars (100s of ms): call it through
        `grammar.run`. A grammar that admits nothing, or names a character the vocabulary cannot
        write, raises GrammarError."""
        unwritable = self._unwritable(lark)
        if unwritable is not None:
            raise GrammarError(f"{param}: this constraint cannot be enforced: it names the character "
                               f"U+{ord(unwritable):04X}, which this model's vocabulary cannot write", param)
        matcher = LLMatcher(self.tokenizer(), lark, log_level=0, limits=limits())
        c = Constraint(matcher, self.n_vocab)
        if matcher.is_error() or not c._compute().any() or c.failed:
            raise GrammarError(f"{param}: this constraint cannot be enforced: "
                               f"{_first_line(matcher.get_error()) or 'no output satisfies it'}", param)
        return c

    def _unwritable(self, text: str) -> str | None:
        """The first character of `text` that no sequence of this vocabulary's tokens spells, if any.
        SmolLM2 has no token for the byte F2 (the lead byte of U+80000..U+BFFFF): a grammar that forces
        such a character gets a mask that skips the byte and a matcher that rejects the next token,
        mid-answer (measured with llguidance 1.9.1). Checked per distinct non-ASCII character, once."""
        for ch in dict.fromkeys(c for c in text if ord(c) > 127):
            writable = self._writable.get(ch)
            if writable is None:
                tok = self.tokenizer()
                try:
                    b = ch.encode()
                    writable = tok.decode_bytes(tok.tokenize_bytes(b)) == b
                except UnicodeEncodeError:  # a lone surrogate: no UTF-8 spells it
                    writable = False
                self._writable[ch] = writable
            if not writable:
                return ch
        return None


_per_model: "weakref.WeakKeyDictionary[object, Grammars]" = weakref.WeakKeyDictionary()
_per_model_lock = threading.Lock()


def grammars_for(vocab) -> Grammars:
    """The Grammars of a loaded model (`vocab`: hearth.engine.model.Model), made once; dies with it."""
    with _per_model_lock:
        g = _per_model.get(vocab)
        if g is None:
            eog = [t for t in range(vocab.n_vocab) if vocab.is_eog(t)]
            g = _per_model[vocab] = Grammars(vocab.vocab, vocab.n_vocab, eog)
        return g


class GrammarSpec:
    """What a request constrains (grammar text from `grammar.py`, already validated), compiled per
    sequence against the model's vocabulary by the engine (`compile`)."""

    def __init__(self, lark: str, param: str, free_text: bool = False):
        self.lark, self.param, self.free_text = lark, param, free_text
        self._fresh: tuple[object, Constraint] | None = None  # (vocab, an unused Constraint) to copy

    async def compile(self, vocab) -> "Constraint":
        """A Constraint in the start state, compiled on a deep-stack thread off the event loop (n choices
        compile the grammar once, then copy it). What cannot be enforced raises InvalidRequest (400)."""
        return await run(self._compile, vocab)

    def _compile(self, vocab) -> "Constraint":
        from hearth.engine.api import InvalidRequest

        if self._fresh is not None and self._fresh[0] is vocab:
            return self._fresh[1].copy()
        try:
            c = grammars_for(vocab).compile(self.lark, self.param)
        except GrammarError as e:
            raise InvalidRequest(e.message, param=e.param, status=400) from None
        self._fresh = (vocab, c.copy())
        return c


def _first_line(error: str) -> str:
    return _detail(error) if error else ""


class Constraint:
    """One sequence's grammar state. Engine thread only (not thread-safe)."""

    def __init__(self, matcher: LLMatcher, n_vocab: int):
        self._m = matcher
        self._n = n_vocab
        self._words = np.zeros((n_vocab + 31) // 32, dtype=np.int32)
        self._fresh = False  # whether _words is the mask for the current state
        self.failed = ""  # set when no token can follow (an unsatisfiable branch): end the sequence

    def copy(self) -> "Constraint":
        """An independent constraint in the same state (one per choice when n > 1)."""
        return Constraint(self._m.deep_copy(), self._n)

    def _compute(self) -> np.ndarray:
        if not self._fresh:
            self._m.unsafe_compute_mask_ptr(self._words.ctypes.data, self._words.nbytes)
            self._fresh = True
            if self._m.is_error():
                self.failed = _first_line(self._m.get_error())
        return self._words

    def allows(self, token: int) -> bool:
        words = self._compute()
        return 0 <= token < self._n and bool((int(words[token >> 5]) >> (token & 31)) & 1)

    def mask(self, logits: np.ndarray) -> None:
        """Forbidden tokens' logits -> -inf, in place (`logits`: float32, n_vocab long, may be a strided view)."""
        words = self._compute()
        bias = _BYTE_BIAS[words.view(np.uint8)].reshape(-1)
        logits[: self._n] += bias[: self._n]

    def accept(self, token: int) -> bool:
        """Advance past `token` (which allows() must have admitted). False: the matcher failed."""
        self._fresh = False
        if not self._m.consume_token(token):
            self.failed = _first_line(self._m.get_error()) or "the grammar rejected a token"
            return False
        return True

    @property
    def done(self) -> bool:
        """Complete: only end-of-generation may follow."""
        return self._m.is_stopped() and not self._m.is_error()

    @property
    def accepting(self) -> bool:
        """The text so far is a complete answer (end-of-generation would be allowed)."""
        return self._m.is_accepting()

    def forced(self) -> list[int]:
        """Tokens the grammar forces next (may be empty)."""
        return self._m.compute_ff_tokens()
