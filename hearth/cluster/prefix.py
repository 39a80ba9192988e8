"""A request's prompt prefix as the router sees it: chained hashes of fixed-size text blocks.

The ingress has no tokenizer (the replicas own the models), so the router compares text, not tokens.
Two requests share their first k blocks exactly when the first k * BLOCK characters of their
canonical text agree, and Hearth's prefix cache then holds the tokens of that text on whichever replica
served the first (the chat template renders the same text to the same tokens). Block hashes are
chained (each hashes the one before it), so equal k-th hashes mean equal whole prefixes.

Canonical text: the model string, then the tools, then each message as role and text (chat), or the
prompt (completions). What the template adds around messages is the same for every request to a
model, so it moves every prefix alike and can be left out.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

BLOCK = 256  # characters per block: ~64 tokens of English, Hearth's MIN_CALL
MAX_BLOCKS = 256  # 64 k characters: enough to tell any two prompts apart
ROUTED_PATHS = ("/v1/chat/completions", "/v1/completions")


@dataclass(frozen=True)
class Prefix:
    blocks: tuple[int, ...]  # chained hashes of the whole blocks of the canonical text
    chars: int  # length of the canonical text (its partial last block included)

    @property
    def block_chars(self) -> int:
        return len(self.blocks) * BLOCK


EMPTY = Prefix((), 0)


def _text(value) -> str:
    """The text of a message's content: a string, or a list of parts with `text` (images have none)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(_text(part.get("text") if isinstance(part, dict) else part) for part in value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def canonical_text(path: str, body: dict) -> str:
    """The text whose prefixes decide the route; "" when the request has no prompt to share."""
    model = body.get("model")
    head = (model if isinstance(model, str) else "") + "\x1d"
    if path == "/v1/chat/completions":
        messages = body.get("messages")
        if not isinstance(messages, list):
            return ""
        parts = [head]
        if body.get("tools"):
            parts.append(json.dumps(body["tools"], sort_keys=True, ensure_ascii=False) + "\x1d")
        for m in messages:
            if isinstance(m, dict):
                extra = json.dumps(m["tool_calls"], sort_keys=True) if m.get("tool_calls") else ""
                parts.append(f"{m.get('role', '')}\x1f{_text(m.get('content'))}{extra}\x1e")
        return "".join(parts)
    if path == "/v1/completions":
        prompt = body.get("prompt")
        if isinstance(prompt, list) and prompt:
            prompt = prompt[0]  # one choice per prompt: the first one's prefix routes them all
        if isinstance(prompt, list):  # token ids
            prompt = " ".join(str(t) for t in prompt)
        return head + prompt if isinstance(prompt, str) else ""
    return ""


def blocks_of(text: str) -> Prefix:
    hashes, prev = [], b""
    for i in range(0, min(len(text) // BLOCK, MAX_BLOCKS)):
        prev = hashlib.blake2b(prev + text[i * BLOCK:(i + 1) * BLOCK].encode(), digest_size=8).digest()
        hashes.append(int.from_bytes(prev, "little"))
    return Prefix(tuple(hashes), len(text))


def of_request(path: str, body: bytes) -> Prefix:
    """The prefix of a raw request body; EMPTY for other routes, malformed JSON, or no prompt (the
    replica answers those; any replica will do)."""
    if path not in ROUTED_PATHS or not body:
        return EMPTY
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return EMPTY
    if not isinstance(parsed, dict):
        return EMPTY
    return blocks_of(canonical_text(path, parsed))
