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
    gpu_layers: int | None = Field(None, ge=0)
    """
    Layers offloaded to a GPU (llama.cpp's n_gpu_layers; 0 on the CPU).
    """
    offload: str | None = Field(None, examples=['CPU'])
    """
    Where its layers went, in words: CPU, or GPU n/N layers (device, size).
    """


class LoadedInstance(BaseModel):
    id: str
    """
    The instance id: what requests, GET /v1/models and unload name it by.
    """
    config: InstanceConfig
    replicas: list[str] | None = None
    """
    Hearth on Ray Serve only (docs/cluster.md): the replicas that hold this instance.
    """


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


class GpuLayers1(RootModel[int]):
    root: int = Field(..., examples=['auto'], ge=0)
    """
    Hearth's extension (LM Studio sets offload in its app and `lms load --gpu`): layers to offload to a GPU, auto (default: as many as fit in free GPU memory with their KV cache), max (all, or a 400 model_does_not_fit), off, or a count.
    """


class GpuLayers(RootModel[GpuLayers1 | Literal['auto', 'max', 'off']]):
    root: GpuLayers1 | Literal['auto', 'max', 'off'] = Field(..., examples=['auto'])
    """
    Hearth's extension (LM Studio sets offload in its app and `lms load --gpu`): layers to offload to a GPU, auto (default: as many as fit in free GPU memory with their KV cache), max (all, or a 400 model_does_not_fit), off, or a count.
    """


class LoadConfig(BaseModel):
    context_length: int
    gpu_layers: int | None = Field(None, ge=0)


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
    Accepted and ignored: the KV cache of an offloaded layer goes with it, as llama.cpp places it.
    """
    gpu_layers: GpuLayers | None = None
    echo_load_config: bool = False
    """
    Answer with the configuration used, under load_config.
    """
