"""GET /models and GET /models/{id}: the true ids, OpenAI's shapes, and the SDK's view of them."""
from __future__ import annotations

import openai

from conformance.checks import error, expect, ok_json, sdk_raises
from conformance.runner import case
from conformance.target import Target


@case("models.list", "GET /models", "list", "openai")
def list_models(t: Target) -> None:
    body = ok_json(t, t.http.get("/models"), "GET", "/models")
    expect(body.get("object") == "list", f"object {body.get('object')!r}, expected 'list'")
    expect(body.get("data"), "data is empty: no model is listed")
    for item in body["data"]:
        expect(item.get("object") == "model", f"data[].object {item.get('object')!r}, expected 'model'")
    page = t.sdk.models.list()
    ids = [m.id for m in page]
    expect(ids == [m["id"] for m in body["data"]], f"SDK saw ids {ids}, raw body has {[m['id'] for m in body['data']]}")


@case("models.retrieve", "GET /models/{model_id}", "retrieve", "reference")
def retrieve(t: Target) -> None:
    listed = ok_json(t, t.http.get("/models"), "GET", "/models")["data"][0]["id"]
    body = ok_json(t, t.http.get(f"/models/{listed}"), "GET", "/models/{model_id}")
    expect(body.get("id") == listed, f"id {body.get('id')!r}, expected {listed!r}")
    expect(body.get("object") == "model", f"object {body.get('object')!r}, expected 'model'")
    model = t.sdk.models.retrieve(listed)
    expect(model.id == listed, f"SDK retrieve gave {model.id!r}")


@case("models.retrieve_unknown", "GET /models/{model_id}", "errors", "openai")
def retrieve_unknown(t: Target) -> None:
    route = "/models/no-such-model-conformance"
    error(t, t.http.get(route), "GET", "/models/{model_id}", 404, code="model_not_found")
    sdk_raises(lambda: t.sdk.models.retrieve("no-such-model-conformance"), openai.NotFoundError, 404)
