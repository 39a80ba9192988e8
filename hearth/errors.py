"""Every error, from every layer, as OpenAI's body: {"error": {message, type, param, code}}; on the
routes of Anthropic's Messages API (ANTHROPIC_ROUTES) as Anthropic's: {"type": "error", "error": {type, message}}."""
from __future__ import annotations

import json
import logging
import math
import uuid

from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

from generated.openai import Error, ErrorResponse
from hearth.engine import api as engine
from hearth.web.record import current_request_id

log = logging.getLogger("hearth")

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type: str = INVALID_REQUEST,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.type = status, message, code, param, type
        self.headers = headers or {}

    def response(self, path: str = "") -> ConnexionResponse:
        """The error answered on `path` (the route decides the protocol's error shape)."""
        if path.startswith(ANTHROPIC_ROUTES):
            status, body = anthropic(self)
            return ConnexionResponse(status_code=status, mimetype="application/json", content_type="application/json",
                                     body=json.dumps(body), headers=self.headers)
        body = ErrorResponse(error=Error(message=self.message, type=self.type, param=self.param, code=self.code))
        return ConnexionResponse(
            status_code=self.status,
            mimetype="application/json",
            content_type="application/json",
            body=body.model_dump_json(),
            headers=self.headers,
        )


ANTHROPIC_ROUTES = ("/v1/messages",)
# Anthropic's statuses and error types: 422 is a 400 there; a server that cannot take the request now is 529
ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                   404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}


def anthropic(error: ApiError) -> tuple[int, dict]:
    """(status, body) of `error` in Anthropic's shape. The message names the parameter, as Anthropic's do."""
    status = {422: 400, 503: 529}.get(error.status, error.status)
    kind = ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    message = error.message if not error.param or error.param in error.message else f"{error.param}: {error.message}"
    return status, {"type": "error", "error": {"type": kind, "message": message}}


def body_too_large() -> ApiError:
    return ApiError(413, STATUS_MESSAGES[413])


def invalid_value(param: str, message: str) -> ApiError:
    return ApiError(422, message, code="invalid_value", param=param)


def from_engine(exc: engine.EngineError, param: str) -> ApiError:
    """`param` names the request field holding the prompt (messages, prompt or input)."""
    if isinstance(exc, engine.ModelNotLoaded):
        return ApiError(404, exc.message, code="model_not_found", param="model")
    if isinstance(exc, engine.ModelLoading):
        return ApiError(503, exc.message, code="model_loading", type=SERVER_ERROR, headers=retry_after(exc.retry_after))
    if isinstance(exc, engine.Overloaded):
        return ApiError(503, exc.message, code="server_overloaded", type=SERVER_ERROR,
                        headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, engine.QueueTimeout):
        return ApiError(503, exc.message, code="queue_timeout", type=SERVER_ERROR,
                        headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, engine.WrongModelType):
        return ApiError(400, exc.message, code="model_not_supported", param="model")
    if isinstance(exc, engine.ModelLoadFailed):
        log.error("%s", exc.message)
        return ApiError(500, exc.message, code="model_load_failed", type=SERVER_ERROR)
    if isinstance(exc, engine.ModelDoesNotFit):
        return ApiError(400, exc.message, code="model_does_not_fit", param="model")
    if isinstance(exc, engine.ContextLengthExceeded):
        return ApiError(400, exc.message, code="context_length_exceeded", param=param)
    if isinstance(exc, engine.InvalidRequest):
        return ApiError(exc.status, exc.message, code=exc.code, param=exc.param)
    return internal(exc)


def retry_after(seconds: float) -> dict[str, str]:
    """Retry-After in whole seconds, rounded up; retry-after-ms exact (the openai SDKs read it first)."""
    return {"Retry-After": str(max(1, math.ceil(seconds))), "retry-after-ms": str(max(1, round(seconds * 1000)))}


def internal(exc: BaseException) -> ApiError:
    request_id = current_request_id() or uuid.uuid4().hex[:16]  # the X-Request-Id the client got
    log.error("unhandled error (request id %s)", request_id, exc_info=exc,
              extra={"event": "error", "fields": {"request_id": request_id}})
    return ApiError(500, f"Internal server error (request id {request_id}).", type=SERVER_ERROR)


STATUS_MESSAGES = {
    404: "Unknown route. This server serves /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models, "
         "/v1/responses and /v1/messages.",
    405: "Method not allowed on this route.",
    413: "Request body too large.",
    415: "Content-Type must be application/json.",
}


def _from_status(status: int, detail: str | None, headers=None) -> ApiError:
    if status >= 500:
        return ApiError(status, detail or "Server error.", type=SERVER_ERROR, headers=dict(headers or {}))
    message = STATUS_MESSAGES.get(status) or detail or "Bad request."
    return ApiError(status, message, headers=dict(headers or {}))


def _path(request: ConnexionRequest | None) -> str:
    try:
        return request.url.path
    except Exception:  # noqa: BLE001 - no request to read the route from: OpenAI's shape
        return ""


def handle_api_error(request: ConnexionRequest, exc: ApiError) -> ConnexionResponse:
    return exc.response(_path(request))


def handle_problem(request: ConnexionRequest, exc: ProblemException) -> ConnexionResponse:
    """Connexion's own problems: body validation (400), content type (415), routing."""
    detail = exc.detail if isinstance(exc.detail, str) else exc.title
    if detail == "RequestBody is required":
        detail = "The request body is empty; expected a JSON object."
    error = _from_status(exc.status, detail, exc.headers)
    if exc.status == 400:
        error.code = "invalid_json"
    return error.response(_path(request))


def handle_http_exception(request: ConnexionRequest, exc: HTTPException) -> ConnexionResponse:
    return _from_status(exc.status_code, exc.detail, exc.headers).response(_path(request))


def handle_unexpected(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    return internal(exc).response(_path(request))
