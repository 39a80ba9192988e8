"""The request being answered, visible to every layer below the request-log middleware."""
from __future__ import annotations

import contextvars
import re
import uuid
from dataclasses import dataclass, field

_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass(slots=True)
class RequestRecord:
    id: str
    time: float  # unix seconds, when it arrived
    method: str
    path: str
    route: str = ""  # the route template (/v1/models/{model_id}); "(unmatched)" when no route matched
    status: int = 0
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft: float | None = None  # seconds from admission to the first token of the first choice
    duration: float = 0.0  # seconds, until the last byte of the response
    requests: list = field(default_factory=list)  # the Requests it admitted (hearth/models/request.py); dropped when it ends


current: contextvars.ContextVar[RequestRecord | None] = contextvars.ContextVar("hearth_request", default=None)


def request_id(incoming: str | None = None) -> str:
    """The client's X-Request-Id when it is a sane token, else a new one."""
    if incoming and _VALID_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex[:16]


def current_request_id() -> str | None:
    rec = current.get()
    return rec.id if rec else None
