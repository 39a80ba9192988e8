"""The engine's tokens as OpenAI's logprobs objects: chat's `content[]`, completions' parallel lists.

The values are the model's own distribution (log-softmax of the raw logits, before logit_bias,
penalties, temperature, top_k and top_p), as OpenAI reports them. The tokens' bytes, concatenated,
are the UTF-8 of the text they come with (a token a stop string cut carries only its bytes before it).
"""
from __future__ import annotations

from generated.openai import ChatCompletionLogprobs, ChatCompletionTokenLogprob, ChatCompletionTopLogprob
from generated.openai import CompletionLogprobs
from hearth.engine import api


def token_text(piece: bytes) -> str:
    """A token's text; one that is not whole UTF-8 (part of a character) is written as OpenAI writes
    it: `bytes:\\xe6\\x97`."""
    try:
        return piece.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes:" + "".join(f"\\x{b:02x}" for b in piece)


def chat(tokens) -> ChatCompletionLogprobs:
    return ChatCompletionLogprobs(
        content=[
            ChatCompletionTokenLogprob(
                token=token_text(t.piece), logprob=t.logprob, bytes=list(t.piece),
                top_logprobs=[ChatCompletionTopLogprob(token=token_text(a.piece), logprob=a.logprob, bytes=list(a.piece))
                              for a in t.top],
            )
            for t in tokens
        ],
        refusal=None,
    )


def _top(t: api.TokenOut) -> dict[str, float] | None:
    """The alternatives, and always the chosen token too (OpenAI: "up to logprobs+1 elements"); None for
    a token without a logprob (the prompt's first, with echo)."""
    if t.logprob is None:
        return None
    top = {token_text(a.piece): a.logprob for a in t.top}
    top.setdefault(token_text(t.piece), t.logprob)
    return top


class CompletionOffsets:
    """Completions' logprobs for one choice, chunk after chunk: `text_offset` counts characters of the
    choice's whole text, so it runs on across streamed chunks."""

    def __init__(self, start: int = 0):
        self.offset = start

    def logprobs(self, tokens: tuple[api.TokenOut, ...] | list[api.TokenOut]) -> CompletionLogprobs:
        offsets, spelled = [], b""
        for t in tokens:  # a character's offset is where its first byte is; a partial one counts once whole
            offsets.append(self.offset + len(spelled.decode("utf-8", errors="ignore")))
            spelled += t.piece
        self.offset += len(spelled.decode("utf-8", errors="replace"))
        return CompletionLogprobs(
            tokens=[token_text(t.piece) for t in tokens],
            token_logprobs=[t.logprob for t in tokens],
            top_logprobs=[_top(t) for t in tokens],
            text_offset=offsets,
        )
