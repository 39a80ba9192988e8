"""schemathesis against the live base URL: generated valid and invalid requests for each route.

Checks: no 5xx except a declared 503 with Retry-After; statuses, content types and response bodies as
declared; invalid data rejected with a 4xx. Bounded: a fixed number of examples per route and mode,
no shrinking, `max_tokens` capped so that every generation stays short.
"""
from __future__ import annotations

import json
import time
from typing import Any

from conformance.cases.embeddings import decoded
from conformance.checks import shape_problems
from conformance.runner import Failed, case
from conformance.target import TIMEOUT, Target

MAX_TOKENS = 4
MAX_KINDS = 3  # distinct kinds of failure collected per route before the route stops early
LENGTH_FIELDS = ("max_tokens", "max_completion_tokens")  # the alias too
SETTINGS = {"examples": 15, "budget": 60.0}  # per route and mode; the CLI may change them
ROUTES = {
    "fuzz.chat_completions": ("POST", "/chat/completions"),
    "fuzz.completions": ("POST", "/completions"),
    "fuzz.embeddings": ("POST", "/embeddings"),
    "fuzz.models_list": ("GET", "/models"),
    "fuzz.models_retrieve": ("GET", "/models/{model_id}"),
}


def cap_generation(case: Any, positive: bool) -> None:
    """Keep every generation short: the server's own default (and a null max_tokens) is unlimited."""
    body = case.body
    if not isinstance(body, dict) or "/embeddings" in case.operation.path:
        return
    body.setdefault("max_tokens", MAX_TOKENS)
    for key in LENGTH_FIELDS:
        if key not in body:
            continue
        value = body[key]
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if value is None or (positive and is_int and not 0 < value <= MAX_TOKENS):
            body[key] = MAX_TOKENS


def _operations(t: Target) -> dict[tuple[str, str], Any]:
    if "fuzz.ops" not in t.notes:
        import schemathesis

        schema = schemathesis.openapi.from_dict(t.spec.document)
        wanted = {(m, t.spec.spec_path(r.replace("{model_id}", "x"))) for m, r in ROUTES.values()}
        ops = {}
        for result in schema.get_all_operations():
            op = result.ok()
            if (op.method.upper(), op.path) in wanted:
                ops[(op.method.upper(), op.path)] = op
        t.notes["fuzz.ops"] = ops
    return t.notes["fuzz.ops"]


def _examples(t: Target, op: Any) -> list[dict]:
    """Valid requests that must succeed: the request schema's documented `example` (and a streamed copy
    where the route streams); a bodiless route plainly; a model route with the id the server lists."""
    if "{model_id}" in op.path:
        return [{"path_parameters": {"model_id": t.model}}]
    body = (op.definition.raw.get("requestBody") or {}).get("content", {}).get("application/json", {}).get("schema")
    if not body:
        return [{}]
    example = t.spec.deref(body).get("example")
    if not isinstance(example, dict):
        return []
    example = {**example, "model": t.model} if "model" in example else dict(example)
    if "max_tokens" in example:
        example["max_tokens"] = MAX_TOKENS
    out = [example]
    if "stream" in t.spec.deref(body).get("properties", {}):
        out.append({**example, "stream": True, "stream_options": {"include_usage": True}})
    return [{"body": b, "media_type": "application/json"} for b in out]


def _base_url(t: Target) -> str:
    return t.origin if t.spec.prefix else t.base_url


def _server_error(op: Any, response: Any) -> str | None:
    status = response.status_code
    if status < 500:
        return None
    if status == 503 and "503" in op.definition.raw.get("responses", {}) and response.headers.get("retry-after"):
        return None
    return f"HTTP {status}: {response.text[:160]!r}"


def _curl(case: Any, base_url: str) -> str:
    try:
        return case.as_curl_command(base_url=base_url)
    except Exception:
        return json.dumps(case.body, default=str)


def _describe(case: Any, response: Any, reason: str) -> str:
    sent = case.body if isinstance(case.body, (dict, list, str, int, float, bool)) else None
    body = json.dumps(sent, ensure_ascii=True, default=str) if sent is not None else ""
    body = body if len(body) <= 200 else body[:197] + "..."
    where = case.formatted_path if hasattr(case, "formatted_path") else case.path
    status = getattr(response, "status_code", "-")
    return f"{case.method} {where} {body} -> {status}: {reason}"


def fuzz(t: Target, method: str, route: str) -> None:
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.specs.openapi import checks as oas

    spec_path = t.spec.spec_path(route.replace("{model_id}", "x"))
    op = _operations(t).get((method, spec_path))
    if op is None:
        raise Failed(f"{method} {route} is not in the contract {t.spec.path.name}: nothing to fuzz")
    checks = [oas.status_code_conformance, oas.content_type_conformance, oas.response_schema_conformance, oas.negative_data_rejection]
    base_url = _base_url(t)
    headers = {"Authorization": f"Bearer {t.api_key}"}
    failures: dict[str, str] = {}  # kind of failure -> first example of it
    reproduce: list[str] = []
    counted = {"calls": 0, "positive": 0, "accepted": 0}

    def fail(kind: str, case: Any, response: Any, reason: str) -> None:
        if kind not in failures:
            failures[kind] = _describe(case, response, reason)
            reproduce.append(_curl(case, base_url))

    def check(case: Any, mode: str) -> None:
        counted["calls"] += 1
        try:
            response = case.call(base_url=base_url, headers=headers, timeout=TIMEOUT)
        except Exception as exc:  # a dropped connection is a failure of the server, not of the suite
            fail(type(exc).__name__, case, None, f"{mode}: {type(exc).__name__}: {str(exc)[:160]}")
            return
        problem = _server_error(op, response)
        if problem:
            fail(f"HTTP {response.status_code}", case, response, f"{mode}: {problem}")
            return
        ok = 200 <= response.status_code < 300
        if mode == "example" and not ok:  # a valid, documented request must succeed
            fail("example rejected", case, response, f"example: a valid request answered {response.status_code}: {response.text[:160]!r}")
        if mode == GenerationMode.POSITIVE.value:
            counted["positive"] += 1
            counted["accepted"] += ok
        media = response.headers.get("content-type") or [""]  # schemathesis keeps every header as a list
        if (media[0] if isinstance(media, list) else media).startswith("application/json"):
            try:
                body = response.json()
                if isinstance(case.body, dict) and case.body.get("encoding_format") == "base64":
                    body = decoded(body)  # OpenAI's schema types only the float form (as in embeddings.base64)
                shape_problems(t, method, route, response.status_code, body, "application/json")
            except ValueError:
                pass  # not JSON: the content-type check below reports it
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except BaseException as exc:  # schemathesis raises a FailureGroup of the checks that failed
            inner = getattr(exc, "exceptions", None) or [exc]
            first = inner[0]
            title = getattr(first, "title", type(first).__name__)
            message = " ".join(str(getattr(first, "message", first)).split())
            for cut in (" Validated against", " Schema at", " Schema:"):  # keep the finding, drop the schema dump
                message = message.split(cut)[0]
            message = message[:200]
            fail(title, case, response, f"{mode}: {title}: {message}")

    for example in _examples(t, op):  # the documented example, plain and streamed: the happy path first
        check(op.Case(**example), "example")

    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        deadline = time.monotonic() + SETTINGS["budget"]

        @settings(max_examples=SETTINGS["examples"], phases=[Phase.explicit, Phase.generate], deadline=None, database=None,
                  derandomize=True, suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet)
        @given(case=op.as_strategy(generation_mode=mode))
        def attempt(case: Any) -> None:
            if len(failures) >= MAX_KINDS or time.monotonic() > deadline:
                return
            cap_generation(case, mode == GenerationMode.POSITIVE)
            check(case, mode.value)

        try:
            attempt()
        except Unsatisfiable:  # nothing to generate in this mode (e.g. no parameters to break)
            continue
    if failures:
        kinds = list(failures.values())
        head = f"{len(kinds)} kind(s) of failure in {counted['calls']} requests; " if len(kinds) > 1 else ""
        raise Failed(head + " | ".join(k[:360] for k in kinds), "\n\n".join(reproduce))
    if counted["calls"] == 0:
        raise Failed("no request was generated")
    if counted["positive"] and not counted["accepted"] and "{model_id}" not in route:  # random ids are rightly 404
        raise Failed(f"none of {counted['positive']} valid generated requests succeeded")
    t.notes.setdefault("fuzz.calls", {})[f"{method} {route}"] = counted["calls"]


def _register(name: str, method: str, route: str) -> None:
    case(name, f"{method} {route}", "fuzzing", "hearth")(lambda t: fuzz(t, method, route))


for _name, (_method, _route) in ROUTES.items():
    _register(_name, _method, _route)
