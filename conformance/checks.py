"""Assertions that cases share. Each raises Failed with a reason a user can act on."""
from __future__ import annotations

import copy
from typing import Any, Callable

import httpx
import openai

from conformance.runner import Failed
from conformance.target import Target, body_of


def expect(condition: Any, reason: str) -> None:
    if not condition:
        raise Failed(reason)


def conforms(target: Target, method: str, route: str, status: int, body: Any, media: str = "application/json") -> None:
    """The body matches the schema OpenAI's document and the contract declare for this response.

    A violation fails the case, but the case goes on: its behavioural checks still run and report too.
    Each problem names the document it breaks (`openai: ...`, `contract: ...`).
    """
    shape_problems(target, method, route, status, body, media)


def shape_problems(target: Target, method: str, route: str, status: int, body: Any, media: str, where: str = "") -> None:
    for label, document in target.documents:
        for problem in document.validate(method, route, status, body, media):
            text = f"{label}: {where}{problem}"
            if text not in target.schema_problems:
                target.schema_problems.append(text)


def ok_json(target: Target, response: httpx.Response, method: str, route: str,
            as_judged: Callable[[Any], Any] = lambda body: body) -> Any:
    """A 200 JSON response that matches its schema; returns the parsed body. `as_judged` maps the body
    to what the schemas are shown (a copy), where a document cannot describe a documented form."""
    body = body_of(response)
    if response.status_code != 200:
        raise Failed(f"expected 200, got {response.status_code}: {_snippet(response)}")
    media = response.headers.get("content-type", "")
    expect(media.startswith("application/json"), f"content-type {media!r}, expected application/json")
    expect(body is not None, "body is not JSON")
    conforms(target, method, route, 200, as_judged(copy.deepcopy(body)))
    return body


def error(
    target: Target,
    response: httpx.Response,
    method: str,
    route: str,
    status: int | tuple[int, ...],
    *,
    type: str | None = "invalid_request_error",
    code: str | tuple[str, ...] | None = None,
    param: str | None = None,
) -> dict:
    """An OpenAI-shaped error: the status, a JSON body matching the error schema, then type/code/param."""
    statuses = (status,) if isinstance(status, int) else status
    if response.status_code not in statuses:
        about = f" naming {param}" if param else ""
        raise Failed(f"expected {' or '.join(map(str, statuses))}{about}, got {response.status_code}: {_snippet(response)}")
    media = response.headers.get("content-type", "")
    expect(media.startswith("application/json"), f"{response.status_code} with content-type {media!r}, expected application/json")
    body = body_of(response)
    expect(isinstance(body, dict) and isinstance(body.get("error"), dict), f"error body is not {{'error': {{...}}}}: {_snippet(response)}")
    conforms(target, method, route, response.status_code, body)
    err = body["error"]
    for field, kind in (("message", str), ("type", str)):
        expect(isinstance(err.get(field), kind), f"error.{field} missing or not a string: {err!r}")
    for field in ("param", "code"):
        expect(field in err and (err[field] is None or isinstance(err[field], str)), f"error.{field} must be present, string or null: {err!r}")
    if type is not None:
        expect(err["type"] == type, f"error.type {err['type']!r}, expected {type!r}")
    codes = (code,) if isinstance(code, str) else code
    if codes:
        expect(err["code"] in codes, f"error.code {err['code']!r}, expected {' or '.join(map(repr, codes))}")
    if param is not None:
        expect(err["param"] == param, f"error.param {err['param']!r}, expected {param!r}")
    return err


def sdk_raises(call: Callable[[], Any], cls: type[openai.APIStatusError], status: int) -> openai.APIStatusError:
    """The SDK call raises exactly this exception class (so client code's except-clauses work)."""
    try:
        call()
    except openai.APIStatusError as exc:
        expect(isinstance(exc, cls), f"SDK raised {type(exc).__name__} (HTTP {exc.status_code}), expected {cls.__name__}")
        expect(exc.status_code == status, f"SDK error status {exc.status_code}, expected {status}")
        return exc
    raise Failed(f"SDK call succeeded, expected {cls.__name__}")


def _snippet(response: httpx.Response, limit: int = 200) -> str:
    try:
        text = response.text
    except Exception:
        return "<unreadable body>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
