"""GET /v1/models and GET /v1/models/{model_id}"""
from __future__ import annotations

from generated.openai import ListModelsResponse, Model
from handlers import common
from hearth.errors import ApiError


def _loaded() -> list[Model]:
    model = common.engine().model
    if model is None:
        return []
    return [Model(id=model.id, object="model", created=model.created, owned_by=model.owned_by)]


async def list_models():
    return common.json_response(ListModelsResponse(object="list", data=_loaded()))


async def retrieve(model_id: str):
    for model in _loaded():
        if model.id == model_id:
            return common.json_response(model)
    raise ApiError(404, f"The model '{model_id}' does not exist or is not loaded.", code="model_not_found",
                   param="model")
