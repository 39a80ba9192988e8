"""POST /v1/embeddings"""
from __future__ import annotations

import base64

import numpy as np

from generated.openai import CreateEmbeddingRequest, CreateEmbeddingResponse, Embedding, EmbeddingUsage
from handlers.shared import common
from hearth.engine import api
from hearth.errors import from_engine, invalid_value


async def create(body: dict):
    req = CreateEmbeddingRequest.model_validate(body)
    if req.dimensions is not None:
        raise invalid_value("dimensions", "dimensions is not supported: vectors have the model's own size.")
    texts = [req.input.root] if isinstance(req.input.root, str) else [item.root for item in req.input.root]
    with common.request(req.model, "embedding", req.ttl) as request:
        try:
            result = await request.embed(texts)
        except api.EngineError as exc:
            raise from_engine(exc, "input") from None

    def encode(vector: list[float]):
        if req.encoding_format == "base64":
            return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
        return vector

    return common.json_response(
        CreateEmbeddingResponse(
            object="list",
            data=[Embedding(index=i, object="embedding", embedding=encode(v)) for i, v in enumerate(result.vectors)],
            model=request.id,
            usage=EmbeddingUsage(prompt_tokens=result.prompt_tokens, total_tokens=result.prompt_tokens),
        )
    )
