"""LM Studio's REST model routes (GET /api/v1/models, POST /api/v1/models/load and /unload): their shapes,
their errors, and /v1/models following a load and an unload at once. A server without them fails."""
from __future__ import annotations

from conformance.checks import expect, ok_json
from conformance.runner import Failed, case
from conformance.spec import Spec
from conformance.target import Target, body_of

LIST, LOAD, UNLOAD = "/models", "/models/load", "/models/unload"


def _spec(t: Target) -> Spec:
    if "lmstudio.spec" not in t.notes:
        path = t.spec.path.with_name("lmstudio.yaml")
        t.notes["lmstudio.spec"] = Spec(path) if path.exists() else None
    return t.notes["lmstudio.spec"]


def _url(t: Target, route: str) -> str:
    return f"{t.root}/api/v1{route}"


def _ok(t: Target, response, method: str, route: str) -> dict:
    body = body_of(response)
    if response.status_code != 200:
        raise Failed(f"{method} /api/v1{route}: expected 200, got {response.status_code}: {response.text[:200]}")
    expect(isinstance(body, dict), f"{method} /api/v1{route}: the body is not a JSON object")
    spec = _spec(t)
    if spec is not None:
        for problem in spec.validate(method, route, 200, body):
            if problem not in t.schema_problems:
                t.schema_problems.append(problem)
    return body


def _models(t: Target) -> list[dict]:
    response = t.http.get(_url(t, LIST))
    if response.status_code == 404:
        raise Failed("the server has no LM Studio REST API (GET /api/v1/models is 404)")
    return _ok(t, response, "GET", LIST)["models"]


def _loaded_ids(t: Target) -> list[str]:
    return [m["id"] for m in ok_json(t, t.http.get("/models"), "GET", "/models")["data"]]


@case("lmstudio.list", "GET /api/v1/models", "model management", "reference")
def list_models(t: Target) -> None:
    models = _models(t)
    expect(models, "models is empty: no model on disk is listed")
    for m in models:
        expect(m.get("type") in ("llm", "embedding"), f"{m.get('key')!r}: type {m.get('type')!r}")
        for field, kind in (("key", str), ("display_name", str), ("publisher", str), ("size_bytes", int),
                            ("max_context_length", int), ("loaded_instances", list)):
            expect(isinstance(m.get(field), kind), f"{m.get('key')!r}: {field} missing or not {kind.__name__}")
    instances = [i["id"] for m in models for i in m["loaded_instances"]]
    loaded = _loaded_ids(t)
    expect(sorted(instances) == sorted(loaded), f"loaded_instances {instances} differ from GET /v1/models {loaded}")


@case("lmstudio.load_unload", "POST /api/v1/models/load", "model management", "reference")
def load_then_unload(t: Target) -> None:
    llm = next((m for m in _models(t) if m["type"] == "llm"), None)
    if llm is None:
        raise Failed("no chat model on disk to load: the catalog lists none")
    loaded = _ok(t, t.http.post(_url(t, LOAD), json={"model": llm["key"]}, timeout=300), "POST", LOAD)
    instance = loaded["instance_id"]
    try:
        expect(loaded.get("status") == "loaded" and loaded.get("type") == "llm", f"load answered {loaded}")
        expect(isinstance(loaded.get("load_time_seconds"), (int, float)), "load_time_seconds is not a number")
        expect(instance in _loaded_ids(t), f"GET /v1/models does not list {instance!r} once its load answered")
    finally:
        unloaded = _ok(t, t.http.post(_url(t, UNLOAD), json={"instance_id": instance}, timeout=300), "POST", UNLOAD)
    expect(unloaded.get("instance_id") == instance, f"unload answered {unloaded}")
    expect(instance not in _loaded_ids(t), f"GET /v1/models still lists {instance!r} after its unload")


@case("lmstudio.errors", "POST /api/v1/models/load", "errors", "reference")
def errors(t: Target) -> None:
    _models(t)
    checks = (
        (LOAD, {"model": "no-such-model-conformance"}, 404, "model_not_found", "model"),
        (UNLOAD, {"instance_id": "no-such-instance-conformance"}, 404, "model_not_found", "instance_id"),
        (LOAD, {}, 400, None, "model"),
        (UNLOAD, {}, 400, None, "instance_id"),
    )
    for route, body, status, code, param in checks:
        response = t.http.post(_url(t, route), json=body)
        where = f"POST /api/v1{route} {body}"
        expect(response.status_code == status, f"{where}: expected {status}, got {response.status_code}")
        err = (body_of(response) or {}).get("error")
        expect(isinstance(err, dict) and isinstance(err.get("message"), str) and isinstance(err.get("type"), str),
               f"{where}: the body is not OpenAI's error shape: {response.text[:200]}")
        expect(code is None or err.get("code") == code, f"{where}: error.code {err.get('code')!r}, expected {code!r}")
        expect(err.get("param") == param, f"{where}: error.param {err.get('param')!r}, expected {param!r}")
