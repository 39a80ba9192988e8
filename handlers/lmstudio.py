"""GET /api/v1/models, POST /api/v1/models/load, POST /api/v1/models/unload: LM Studio's REST shapes."""
from __future__ import annotations

import re

from generated.lmstudio import (
    InstanceConfig, LoadConfig, LoadedInstance, LoadRequest, LoadResponse, ModelEntry, ModelList, Quantization,
    UnloadRequest, UnloadResponse,
)
from handlers.shared import common
from hearth.engine import api
from hearth.models.catalog import CatalogEntry
from hearth.errors import ApiError, from_engine, invalid_value


def _bits(quantization: str | None) -> float | None:
    match = re.search(r"\d+", quantization or "")
    return float(match.group()) if match else None


def _gpu_layers(value) -> str | int | None:
    """The load request's gpu_layers (a generated RootModel union) as hearth/models/fit.py takes it."""
    while hasattr(value, "root"):
        value = value.root
    return value


def _instance(instance) -> LoadedInstance:
    config = {"context_length": instance.context_length, "gpu_layers": instance.placement.gpu_layers,
              "offload": instance.placement.describe()}
    if instance.type == "llm" and (parallel := instance.engine.stats().get("n_parallel")):
        config["parallel"] = parallel
    return LoadedInstance(id=instance.id, config=InstanceConfig(**config))


def _entry(entry: CatalogEntry, instances) -> ModelEntry:
    return ModelEntry(
        type=entry.type, publisher=entry.publisher, key=entry.key, display_name=entry.display_name,
        architecture=entry.architecture,
        quantization=Quantization(name=entry.quantization, bits_per_weight=_bits(entry.quantization))
        if entry.quantization else None,
        size_bytes=entry.size_bytes, params_string=entry.params_string,
        loaded_instances=[_instance(i) for i in instances],
        max_context_length=entry.max_context_length, format="gguf",
        state="loaded" if instances else ("loading" if common.registry().is_loading(entry.key) else "not-loaded"),
    )


async def list_models():
    view = common.registry().catalog_view()
    return common.json_response(ModelList(models=[_entry(entry, instances) for entry, instances in view]))


async def load(body: dict):
    req = LoadRequest.model_validate(body)
    registry = common.registry()
    entry = registry.find(req.model)
    if entry is not None and req.context_length and entry.max_context_length \
            and req.context_length > entry.max_context_length:
        raise invalid_value("context_length", f"context_length {req.context_length} exceeds what '{entry.key}' "
                                              f"supports ({entry.max_context_length} tokens).")
    try:
        instance = await registry.wait_loaded(registry.load(req.model, context_length=req.context_length, ttl=req.ttl,
                                                            gpu_layers=_gpu_layers(req.gpu_layers)))
    except api.EngineError as exc:
        raise from_engine(exc, "model") from None
    response = LoadResponse(type=instance.type, instance_id=instance.id,
                            load_time_seconds=round(instance.load_seconds, 3), status="loaded")
    if req.echo_load_config:
        response.load_config = LoadConfig(context_length=instance.context_length,
                                          gpu_layers=instance.placement.gpu_layers)
    return common.json_response(response)


async def unload(body: dict):
    req = UnloadRequest.model_validate(body)
    try:
        instance = await common.registry().unload(req.instance_id)
    except api.ModelNotLoaded as exc:
        raise ApiError(404, exc.message, code="model_not_found", param="instance_id") from None
    return common.json_response(UnloadResponse(instance_id=instance.id))
