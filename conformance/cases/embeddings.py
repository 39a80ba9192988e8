"""POST /embeddings: one vector per input, in order; float and base64 encodings agree."""
from __future__ import annotations

import base64
import math
import struct

from conformance.cases.common import sdk_create
from conformance.checks import expect, ok_json
from conformance.runner import case
from conformance.target import Target

ROUTE = "/embeddings"
R = "POST /embeddings"
TEXTS = ["The cat sat on the mat.", "Quarterly revenue grew by four percent.", "Bonjour"]


def embed(t: Target, input, **extra) -> dict:
    judged = decoded if extra.get("encoding_format") == "base64" else (lambda body: body)
    return ok_json(t, t.post(ROUTE, {"model": t.model, "input": input, **extra}), "POST", ROUTE, judged)


def decoded(body: dict) -> dict:
    """OpenAI's schema types `embedding` as a list of numbers only, though its documented base64 encoding
    returns a string: the shape is judged with each base64 string decoded (everything else unchanged)."""
    for item in body.get("data") or []:
        if isinstance(item, dict) and isinstance(item.get("embedding"), str):
            try:
                raw = base64.b64decode(item["embedding"], validate=True)
                item["embedding"] = list(struct.unpack(f"<{len(raw) // 4}f", raw[: len(raw) // 4 * 4]))
            except ValueError:
                pass  # not base64: the schemas reject the string
    return body


def close(a: list[float], b: list[float], tol: float = 1e-4) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=tol, abs_tol=tol) for x, y in zip(a, b))


@case("embeddings.single", R, "plain", "openai")
def single(t: Target) -> None:
    body = embed(t, TEXTS[0])
    expect(body.get("object") == "list", f"object {body.get('object')!r}, expected 'list'")
    expect(len(body["data"]) == 1, f"{len(body['data'])} vectors for one input")
    item = body["data"][0]
    expect(item.get("object") == "embedding" and item.get("index") == 0, f"data[0] object/index: {item.get('object')!r}/{item.get('index')!r}")
    vector = item["embedding"]
    expect(isinstance(vector, list) and vector and all(isinstance(x, (int, float)) for x in vector), "embedding is not a list of numbers")
    expect(any(x != 0 for x in vector), "embedding is all zeros")
    norm = math.sqrt(sum(x * x for x in vector))
    expect(abs(norm - 1) < 1e-3, f"embedding has length {norm:.4f}; OpenAI's embeddings are normalised to length 1")
    t.notes["embeddings.first"] = vector


@case("embeddings.batch", R, "batch order", "openai")
def batch(t: Target) -> None:
    body = embed(t, TEXTS)
    data = body["data"]
    expect(len(data) == len(TEXTS), f"{len(data)} vectors for {len(TEXTS)} inputs")
    expect([d.get("index") for d in data] == list(range(len(TEXTS))), f"indexes {[d.get('index') for d in data]}, expected 0..{len(TEXTS) - 1} in order")
    dims = {len(d["embedding"]) for d in data}
    expect(len(dims) == 1, f"vectors of different lengths {sorted(dims)}")
    expect(data[0]["embedding"] != data[1]["embedding"], "different inputs gave identical vectors")
    for i, text in enumerate(TEXTS):  # each vector belongs to its own input: the same as that text embedded alone
        alone = embed(t, text)["data"][0]["embedding"]
        expect(close(data[i]["embedding"], alone, 1e-3), f"the batch's vector {i} differs from {text!r} embedded alone")
    usage = body.get("usage") or {}
    expect(isinstance(usage.get("prompt_tokens"), int) and usage["prompt_tokens"] > 0, f"usage.prompt_tokens {usage.get('prompt_tokens')!r}")


@case("embeddings.base64", R, "encoding", "openai")
def base64_matches_float(t: Target) -> None:
    floats = embed(t, TEXTS[:2], encoding_format="float")["data"]
    encoded = embed(t, TEXTS[:2], encoding_format="base64")["data"]
    expect(len(floats) == len(encoded) == 2, f"{len(floats)} float and {len(encoded)} base64 vectors for 2 inputs")
    for f, e in zip(floats, encoded):
        expect(isinstance(e["embedding"], str), f"base64 embedding is a {type(e['embedding']).__name__}, expected a string")
        raw = base64.b64decode(e["embedding"])
        expect(len(raw) % 4 == 0, "base64 payload is not a whole number of float32s")
        decoded = list(struct.unpack(f"<{len(raw) // 4}f", raw))
        expect(close(decoded, f["embedding"]), f"input {f['index']}: base64 decodes to a different vector than float")


@case("embeddings.sdk", R, "plain", "openai")
def sdk(t: Target) -> None:
    """The SDK's default call (it asks for base64 and decodes it) gives the raw float vectors."""
    result = t.sdk.embeddings.create(model=t.model, input=TEXTS[:2])
    expect([d.index for d in result.data] == [0, 1], f"SDK indexes {[d.index for d in result.data]}")
    floats = embed(t, TEXTS[:2], encoding_format="float")["data"]
    expect(len(result.data) == len(floats) == 2, f"SDK gave {len(result.data)} vectors, the float encoding {len(floats)}, for 2 inputs")
    for got, want in zip(result.data, floats):
        expect(close(list(got.embedding), want["embedding"]), f"input {got.index}: SDK vector differs from the float encoding")
    _, parsed = sdk_create(t, t.sdk.embeddings, "POST", ROUTE, model=t.model, input=TEXTS[0], encoding_format="float")
    expect(len(parsed.data) == 1, "one input, one vector")
