"""`<think>...</think>` reasoning split out of an answer's text (Qwen 3, DeepSeek-R1 distills, SmolLM3).

Fed the content text in pieces (any split, even mid-tag), `ThinkSplitter` returns (reasoning, content):
- an answer that begins (after whitespace) with `<think>` is reasoning up to `</think>`, content after it
  (the whitespace right after each tag dropped);
- `opened`: the prompt already opened the block (a template whose generation prompt ends with
  `<think>`), so the answer starts as reasoning;
- any other answer is content, untouched (held back only while its start could still be `<think>`).
The tags themselves are in neither part. Pure: no model, no I/O.
"""
from __future__ import annotations

OPEN, CLOSE = "<think>", "</think>"


class ThinkSplitter:
    def __init__(self, opened: bool = False):
        self._state = "opening" if opened else "start"  # start | opening | reasoning | after | content
        self._buf = ""

    def feed(self, text: str) -> tuple[str, str]:
        self._buf += text
        reasoning = content = ""
        while True:
            if self._state == "start":
                head = self._buf.lstrip()
                if head.startswith(OPEN):
                    self._buf, self._state = head[len(OPEN):], "opening"
                    continue
                if head and not OPEN.startswith(head):
                    self._state = "content"
                    continue
                return reasoning, content  # whitespace, or a start of the open tag: wait
            if self._state == "opening":  # the whitespace right after the open tag
                self._buf = self._buf.lstrip()
                if not self._buf:
                    return reasoning, content
                self._state = "reasoning"
                continue
            if self._state == "reasoning":
                i = self._buf.find(CLOSE)
                if i >= 0:
                    reasoning += self._buf[:i]
                    self._buf, self._state = self._buf[i + len(CLOSE):], "after"
                    continue
                keep = _partial(self._buf, CLOSE)
                reasoning += self._buf[:len(self._buf) - keep]
                self._buf = self._buf[len(self._buf) - keep:]
                return reasoning, content
            if self._state == "after":  # the whitespace that separates reasoning from the answer
                self._buf = self._buf.lstrip()
                if not self._buf:
                    return reasoning, content
                self._state = "content"
                continue
            content += self._buf
            self._buf = ""
            return reasoning, content

    def finish(self) -> tuple[str, str]:
        """The end of the answer: what was held back (an unclosed block stays reasoning)."""
        held, self._buf = self._buf, ""
        if self._state in ("opening", "reasoning"):
            return held, ""
        return "", held if self._state in ("start", "content") else ""

    @property
    def thinking(self) -> bool:
        return self._state in ("opening", "reasoning")


def _partial(text: str, tag: str) -> int:
    """Length of the longest tail of `text` that is a proper prefix of `tag`."""
    for k in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:k]):
            return k
    return 0
