# Generated from openapi/hearth.yaml by scripts/generate. Do not edit.

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: Literal['ok']


class ReplicaStatus(BaseModel):
    id: str
    """
    The Ray Serve replica id (the X-Hearth-Replica response header).
    """
    state: Literal['empty', 'loading', 'ready', 'failed']
    in_flight: int
    queue_depth: int
    running: int
    models: list[str]
    """
    The ids of the models this replica lists.
    """


class StatusModel(BaseModel):
    id: str
    state: Literal['empty', 'loading', 'ready', 'failed']
    n_ctx: int | None = None
    load_seconds: float | None = None


class RequestRecord(BaseModel):
    id: str
    """
    The request id (the X-Request-Id response header).
    """
    time: float
    """
    When it arrived (unix seconds).
    """
    method: str
    route: str
    """
    The route template, e.g. /v1/chat/completions.
    """
    model: str | None = None
    status: int
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_ms: float | None = None
    duration_ms: float


class Error(BaseModel):
    message: str
    type: str
    param: str | None = Field(...)
    code: str | None = Field(...)


class ServerStatus(BaseModel):
    version: str
    """
    Hearth's version.
    """
    state: Literal['empty', 'loading', 'ready', 'failed']
    """
    The engine's load state.
    """
    started_at: float
    """
    When the server started (unix seconds).
    """
    uptime_seconds: float
    models: list[StatusModel]
    in_flight: int
    """
    API requests being answered (not counting /health, /metrics, /status and the page).
    """
    queue_depth: int
    """
    Requests admitted but waiting for a free sequence.
    """
    running: int
    """
    Sequences being decoded.
    """
    prompt_tokens_total: int
    completion_tokens_total: int
    """
    Completion tokens of the requests finished since start.
    """
    tokens_streamed_total: int
    """
    Tokens (text pieces) delivered since start, counted as they arrive: the page derives tokens/s from it.
    """
    recent: list[RequestRecord]
    """
    The last requests, newest first.
    """
    model_management: bool
    """
    Whether LM Studio's model routes (/api/v1/models, /load, /unload) are served.
    """
    replicas: list[ReplicaStatus] | None = None
    """
    Hearth on Ray Serve only (docs/cluster.md): each replica's own state and load; the figures above are their sums.
    """


class ErrorResponse(BaseModel):
    error: Error
