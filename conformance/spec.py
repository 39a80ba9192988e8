"""The documents a response is judged by, and the answer to "which schema does this response follow?".

Two documents judge every response body and stream chunk:
- the oracle, OpenAI's published OpenAPI description (`openai-openapi.yaml`, vendored with its MIT
  licence): the shapes any OpenAI client may rely on;
- the contract, the server's own document (Hearth's `openapi/openai.yaml`, or `--spec`): stricter
  than the oracle, never looser; the fuzz cases also generate their requests from it.
"""
from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

import yaml

from conformance.schemas import SchemaSet

HERE = Path(__file__).resolve().parent
ORACLE = HERE / "openai-openapi.yaml"  # github.com/openai/openai-openapi, commit f85dbe2
CANDIDATES = (HERE.parent / "openapi" / "openai.yaml",)  # the contract, found beside the package in a checkout
ERROR_SCHEMA_NAMES = ("ErrorResponse", "Error")  # fallback for statuses an operation does not declare
STREAM_MEDIA = "text/event-stream"
STREAM_FALLBACK = {"/chat/completions": "CreateChatCompletionStreamResponse", "/completions": "CreateCompletionResponse"}


def locate(explicit: str | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get("CONFORMANCE_SPEC")
    if env:
        return Path(env)
    for path in CANDIDATES:
        if path.exists():
            return path
    raise FileNotFoundError("no OpenAPI document found; pass --spec PATH (tried %s)" % ", ".join(map(str, CANDIDATES)))


@functools.lru_cache(maxsize=4)
def load(path: Path) -> "Spec":
    """A parsed document, once per process (OpenAI's is 3 MB of YAML)."""
    return Spec(Path(path))


class Spec:
    def __init__(self, path: Path):
        self.path = path
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        self.document: dict[str, Any] = yaml.load(path.read_text(), Loader=loader)
        self.schemas = SchemaSet(self.document)
        self.paths: dict[str, Any] = self.document.get("paths", {})

    def describe(self) -> str:
        """Which contract a report was made against: title, version and a content hash."""
        info = self.document.get("info", {})
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()[:12]
        return f"{info.get('title', self.path.name)} {info.get('version', '')} (OpenAPI {self.document.get('openapi')}, sha256 {digest})"

    # -- lookups --------------------------------------------------------------------------------
    def spec_path(self, route: str) -> str | None:
        """The document's path for a route relative to the base URL ("/chat/completions")."""
        for candidate in (route, "/v1" + route):
            if candidate in self.paths:
                return candidate
        for path in self.paths:  # templated paths: /models/{model_id}
            if _matches(path, route) or _matches(path, "/v1" + route):
                return path
        return None

    @property
    def prefix(self) -> str:
        """"/v1" when the document spells the version in its paths, so that base URLs can be joined."""
        return "/v1" if any(p.startswith("/v1/") for p in self.paths) else ""

    def response_schema(self, method: str, route: str, status: int, media: str = "application/json") -> tuple[str, dict] | None:
        """(label, schema) declared for this response, else the error schema for an error status."""
        path = self.spec_path(route)
        operation = (self.paths.get(path) or {}).get(method.lower()) if path else None
        if operation:
            responses = operation.get("responses", {})
            response = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
            response = self.deref(response) if response else None
            content = (response or {}).get("content", {})
            node = (content.get(media) or {}).get("schema")
            if media == STREAM_MEDIA:
                node = self._chunk_schema(node, route)
            if node:
                return _label(node), node
        if status >= 400:
            for name in ERROR_SCHEMA_NAMES:
                if name in self.schemas.names:
                    return name, {"$ref": f"#/components/schemas/{name}"}
        return None

    def validate(self, method: str, route: str, status: int, body: Any, media: str = "application/json") -> list[str]:
        """Reasons the body breaks the contract ([] when it keeps it, or when nothing is declared)."""
        found = self.response_schema(method, route, status, media)
        if not found:
            return []
        label, node = found
        return [f"{label} {reason}" for reason in self.schemas.errors(node, body)[:3]]

    def _chunk_schema(self, node: Any, route: str) -> dict | None:
        """The schema of one chunk's JSON, however the document spells an event stream:
        an event object whose `data` carries `contentSchema` (what schemathesis reads), the chunk
        schema itself (OpenAI's style), or nothing usable (then the chunk component by name)."""
        found = _find_key(node, "contentSchema", self)
        if found is not None:
            return found
        if _is_object_schema(node, self) and "data" not in self.deref(node).get("properties", {}):
            return node
        name = STREAM_FALLBACK.get(route)
        if name not in self.schemas.names:
            return None
        if route == "/completions" and not self.schemas.nullable_finish_reason(name):
            # OpenAI's document declares no stream for /completions; its API streams chunks shaped as
            # the response, with `finish_reason: null` until the last one. Judge them so, nothing looser.
            return self.schemas.streamed_completion(name)
        return {"$ref": f"#/components/schemas/{name}"}

    def declared_statuses(self, method: str, route: str) -> set[str]:
        path = self.spec_path(route)
        operation = (self.paths.get(path) or {}).get(method.lower()) if path else None
        return set((operation or {}).get("responses", {}))

    def deref(self, node: dict) -> dict:
        while isinstance(node, dict) and "$ref" in node:
            parts = node["$ref"].lstrip("#/").split("/")
            target: Any = self.document
            for part in parts:
                target = target[part]
            node = target
        return node


def _find_key(node: Any, key: str, spec: Spec, depth: int = 0) -> Any:
    if depth > 8:
        return None
    node = spec.deref(node) if isinstance(node, dict) else node
    if isinstance(node, dict):
        if key in node:
            return node[key]
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = _find_key(child, key, spec, depth + 1)
        if found is not None:
            return found
    return None


def _matches(template: str, route: str) -> bool:
    a, b = template.strip("/").split("/"), route.strip("/").split("/")
    return len(a) == len(b) and all(x == y or (x.startswith("{") and x.endswith("}")) for x, y in zip(a, b))


def _label(node: dict) -> str:
    ref = node.get("$ref", "")
    return ref.rsplit("/", 1)[-1] if ref else "schema"


def _is_object_schema(node: Any, spec: Spec) -> bool:
    if not isinstance(node, dict):
        return False
    target = spec.deref(node)
    return target.get("type") == "object" or "properties" in target or "allOf" in target or "oneOf" in target
