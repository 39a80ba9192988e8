"""A request's deltas with `<think>` reasoning split from the content (hearth/structured/reasoning.py), for
every protocol: chat's `reasoning_content`, a Responses `reasoning` item, an Anthropic `thinking` block."""
from __future__ import annotations

from dataclasses import replace
from typing import AsyncIterator

from hearth.models.request import ChoiceDelta, Request
from hearth.structured.reasoning import ThinkSplitter


async def split(request: Request) -> AsyncIterator[tuple[str, ChoiceDelta]]:
    """(reasoning text, the delta with only its content text) per delta of `request.deltas()`."""
    splitters: dict[int, ThinkSplitter] = {}
    async for d in request.deltas():
        s = splitters.get(d.index)
        if s is None:
            s = splitters[d.index] = ThinkSplitter(getattr(request.generations[d.index], "think_open", False))
        reasoning, content = s.feed(d.text) if d.text else ("", "")
        if d.finish_reason is not None:
            more_reasoning, more_content = s.finish()
            reasoning, content = reasoning + more_reasoning, content + more_content
        yield reasoning, (d if content == d.text else replace(d, text=content))
