"""Server-sent events with a name per event (`event: <type>` then `data: {...}`), as the Responses API and
Anthropic's Messages API send them: no `data: [DONE]` at the end, the last event says the stream is over."""
from __future__ import annotations

import json
from typing import AsyncIterator

from starlette.responses import StreamingResponse

from handlers.shared.common import until_done_or_disconnect
from hearth.models.request import Request

_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode(event: dict) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + _json(event).encode() + b"\n\n"


class NamedEventStream(StreamingResponse):
    """SSE over an event generator; the request is cancelled when the stream ends for any reason, the
    client's disconnect included."""

    def __init__(self, events: AsyncIterator[dict], request: Request):
        super().__init__(self._encode(events), media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.request = request

    @staticmethod
    async def _encode(events: AsyncIterator[dict]) -> AsyncIterator[bytes]:
        async for event in events:
            yield encode(event)

    async def __call__(self, scope, receive, send):
        async def stream() -> None:
            try:
                await self.stream_response(send)
            except OSError:
                pass  # the client went away mid-write

        await until_done_or_disconnect(stream, receive, self.request)
