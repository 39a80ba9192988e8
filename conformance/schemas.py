"""Validate JSON against one schema of an OpenAPI document (3.0 with `nullable`, or 3.1).

OpenAPI 3.1's dialect is JSON Schema 2020-12 (`type: [string, "null"]`, `anyOf` with `{type: null}`,
`const`), plus annotation-only keywords (`discriminator`, `example`, `deprecated`, `x-*`) that the
validator ignores. OpenAI's 3.1 document still carries a few 3.0 `nullable: true` marks (a keyword 3.1
no longer has); they are honoured as OpenAI means them, so that no body is rejected for a null its
authors allow."""
from __future__ import annotations

from typing import Any

import jsonschema


def _add_null(node: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI 3.0's `nullable: true` in JSON Schema terms."""
    node = dict(node)
    del node["nullable"]
    if "enum" in node and None not in node["enum"]:
        node["enum"] = [*node["enum"], None]
    kind = node.get("type")
    if isinstance(kind, str):
        node["type"] = [kind, "null"]
        return node
    if isinstance(kind, list):
        node["type"] = [*kind, "null"] if "null" not in kind else kind
        return node
    return {"anyOf": [node, {"type": "null"}]}


def oas30_to_jsonschema(node: Any) -> Any:
    if isinstance(node, list):
        return [oas30_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: oas30_to_jsonschema(value) for key, value in node.items()}
    if out.get("nullable") is True:
        return _add_null(out)
    out.pop("nullable", None)
    return out


class SchemaSet:
    """The `components/schemas` of one document, ready to validate instances by name or by node."""

    def __init__(self, document: dict[str, Any]):
        self.version = str(document.get("openapi", "3.0"))
        components = oas30_to_jsonschema({"schemas": document.get("components", {}).get("schemas", {})})
        self._validator_cls = jsonschema.Draft4Validator if self.version.startswith("3.0") else jsonschema.Draft202012Validator
        self._root = {"components": components}
        self.names = set(components.get("schemas", {}))

    def nullable_finish_reason(self, name: str) -> bool:
        return not self.errors({"$ref": f"#/components/schemas/{name}"}, {"choices": [{"finish_reason": None}]}, only="finish_reason")

    def streamed_completion(self, name: str) -> dict[str, Any]:
        """`name` (a completion response) as OpenAI streams it: `choices[].finish_reason` null until the
        last chunk, and `usage` null on every chunk but the last (the chat chunk schema documents it:
        "When present, it contains a null value except for the last chunk")."""
        label = f"{name}(stream)"
        if label not in self._root["components"]["schemas"]:
            import copy

            schema = copy.deepcopy(self._root["components"]["schemas"][name])
            reason = schema["properties"]["choices"]["items"]["properties"]["finish_reason"]
            schema["properties"]["choices"]["items"]["properties"]["finish_reason"] = {"anyOf": [reason, {"type": "null"}]}
            if "usage" in schema["properties"]:
                schema["properties"]["usage"] = {"anyOf": [schema["properties"]["usage"], {"type": "null"}]}
            self._root["components"]["schemas"][label] = schema
        return {"$ref": f"#/components/schemas/{label}"}

    def errors(self, schema: dict[str, Any], instance: Any, only: str | None = None) -> list[str]:
        """Readable reasons why `instance` does not match `schema` (a node of the same document)."""
        schema = oas30_to_jsonschema(schema)
        root = {**self._root, **schema}
        validator = self._validator_cls(root)
        found = sorted(validator.iter_errors(instance), key=lambda e: (len(e.absolute_path), str(e.message)))
        if only is not None:
            found = [e for e in found if only in e.absolute_path]
        return [f"{_where(e)}: {_short(e)}" for e in found]


def _where(error: jsonschema.ValidationError) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return "$" + path


def _short(error: jsonschema.ValidationError, limit: int = 160) -> str:
    """jsonschema's message with the offending value abbreviated (an embedding can be 500 numbers)."""
    message, shown = error.message, repr(error.instance)
    if len(shown) > 60 and shown in message:
        message = message.replace(shown, f"{shown[:40]}...{shown[-8:]} ({type(error.instance).__name__})")
    return message if len(message) <= limit else message[: limit - 3] + "..."
