"""Server-Sent Events as they arrive on the wire, strict enough to judge a stream's framing."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable


@dataclass
class Stream:
    chunks: list[Any] = field(default_factory=list)  # parsed `data:` payloads before [DONE]
    done: bool = False  # saw `data: [DONE]`
    after_done: int = 0  # events after [DONE] (none allowed)
    problems: list[str] = field(default_factory=list)  # unparsable or non-data events


def lines(text: str) -> list[str]:
    """A body's lines as SSE ends them: CR, LF or CRLF only. str.splitlines() also ends a line at U+0085,
    U+2028 and U+2029, which JSON leaves unescaped inside a string: a data line holding one is one line."""
    return re.split(r"\r\n|\r|\n", text)


def parse(lines: Iterable[str]) -> Stream:
    stream = Stream()
    data: list[str] = []

    def flush() -> None:
        if not data:
            return
        payload = "\n".join(data)
        data.clear()
        if stream.done:
            stream.after_done += 1
        elif payload.strip() == "[DONE]":
            stream.done = True
        else:
            try:
                stream.chunks.append(json.loads(payload))
            except ValueError:
                stream.problems.append(f"event {len(stream.chunks) + 1} is not JSON: {payload[:80]!r}")

    for line in lines:
        line = line.rstrip("\r")
        if not line:
            flush()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" ") if line[5:6] == " " else line[5:])
        elif line.startswith(":") or line.split(":", 1)[0] in ("event", "id", "retry"):
            continue  # comments and other SSE fields are legal
        else:
            stream.problems.append(f"not an SSE line: {line[:80]!r}")
    flush()
    return stream
