# Generated from openapi/lmstudio.yaml by scripts/generate. Do not edit.

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, RootModel


class Error(BaseModel):
    message: str
    type: str = Field(..., examples=['invalid_request_error'])
    param: str | None = Field(...)
    code: str | None = Field(...)


class ErrorResponse(BaseModel):
    error: Error


class ModelType(RootModel[Literal['llm', 'embedding']]):
    root: Literal['llm', 'embedding']


class Quantization(BaseModel):
    name: str | None = Field(..., examples=['Q4_1'])
    bits_per_weight: float | None = Field(...)


class InstanceConfig(BaseModel):
    context_length: int
    """
    The context of this instance, in tokens.
    """
    parallel: int | None = None
    """
    Sequences it decodes together. Absent for embedding models.
    """


class LoadedInstance(BaseModel):
    id: str
    """
    The instance id: what requests, GET /v1/models and unload name it by.
    """
    config: InstanceConfig


class ModelEntry(BaseModel):
    type: ModelType
    publisher: str = Field(..., examples=['HuggingFaceTB'])
    key: str = Field(..., examples=['smollm2-135m-instruct'])
    display_name: str = Field(..., examples=['SmolLM2-135M-Instruct'])
    architecture: str | None = Field(None, examples=['llama'])
    quantization: Quantization | None
    size_bytes: int
    params_string: str | None = Field(..., examples=['135M'])
    loaded_instances: list[LoadedInstance]
    max_context_length: int
    """
    The context the model was trained for, in tokens.
    """
    format: Literal['gguf'] | None = Field(...)
    state: Literal['not-loaded', 'loading', 'loaded'] | None = None
    """
    Hearth's addition (LM Studio's v0 API had loaded/not-loaded): whether an instance is loaded, or loading now.
    """


class ModelList(BaseModel):
    models: list[ModelEntry]


class LoadRequest(BaseModel):
    model: str = Field(..., min_length=1)
    """
    The key of a model on disk (GET /api/v1/models).
    """
    context_length: int | None = Field(None, ge=1)
    """
    Tokens of context per sequence (default: the server's --ctx-size, at most the model's own).
    """
    ttl: int | None = Field(None, ge=1)
    """
    Idle seconds before it is unloaded (default never).
    """
    eval_batch_size: int | None = Field(None, ge=1)
    """
    Accepted and ignored.
    """
    flash_attention: bool | None = None
    """
    Accepted and ignored (llama.cpp chooses).
    """
    num_experts: int | None = Field(None, ge=1)
    """
    Accepted and ignored.
    """
    offload_kv_cache_to_gpu: bool | None = None
    """
    Accepted and ignored (CPU only).
    """
    echo_load_config: bool = False
    """
    Answer with the configuration used, under load_config.
    """


class LoadConfig(BaseModel):
    context_length: int


class LoadResponse(BaseModel):
    type: ModelType
    instance_id: str
    load_time_seconds: float
    status: Literal['loaded']
    load_config: LoadConfig | None = None


class UnloadRequest(BaseModel):
    instance_id: str = Field(..., min_length=1)


class UnloadResponse(BaseModel):
    instance_id: str
