"""Server-sent events with a name per event (`event: <type>` then `data: {...}`), as the Responses API and
Anthropic's Messages API send them: no `data: [DONE]` at the end, the last event says the stream is over."""
from __future__ import annotations

from typing import AsyncIterator

from handlers.shared.sse import EventStream, _json


def encode(event: dict) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + _json(event).encode() + b"\n\n"


class NamedEventStream(EventStream):
    """sse.EventStream (the request cancelled when the stream ends, the client's disconnect included) over
    events named by their `type`."""

    @staticmethod
    async def _encode(events: AsyncIterator[dict]) -> AsyncIterator[bytes]:
        async for event in events:
            yield encode(event)
