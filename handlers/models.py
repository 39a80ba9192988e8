"""GET /v1/models and GET /v1/models/{model_id}"""
from __future__ import annotations

from generated.openai import ListModelsResponse, Model
from handlers.shared import common
from hearth.errors import ApiError


def _loaded() -> list[Model]:
    """The loaded instances, with their true ids: the list changes the moment a load or unload completes."""
    infos = [instance.info for instance in common.registry().loaded()]
    return [Model(id=m.id, object="model", created=m.created, owned_by=m.owned_by) for m in infos]


async def list_models():
    return common.json_response(ListModelsResponse(object="list", data=_loaded()))


async def retrieve(model_id: str):
    for model in _loaded():
        if model.id == model_id:
            return common.json_response(model)
    raise ApiError(404, f"The model '{model_id}' does not exist or is not loaded.", code="model_not_found",
                   param="model")
