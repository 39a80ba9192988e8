"""Judging bodies and events by OpenAI's published schema (the oracle) and by Hearth's own documents."""
from __future__ import annotations

import json
from pathlib import Path

from conformance.spec import ORACLE, load

ROOT = Path(__file__).resolve().parent.parent


def errors(document: Path, schema: str, instance) -> list[str]:
    return load(document).schemas.errors({"$ref": f"#/components/schemas/{schema}"}, instance)


def assert_openai(schema: str, instance) -> None:
    """`instance` validates against OpenAI's schema `schema` (e.g. Response, ResponseStreamEvent)."""
    found = errors(ORACLE, schema, instance)
    assert not found, f"{schema} per OpenAI's schema: {found[:3]} in {json.dumps(instance)[:400]}"


def assert_ours(document: str, schema: str, instance) -> None:
    """`instance` validates against `schema` of openapi/<document>.yaml."""
    found = errors(ROOT / "openapi" / f"{document}.yaml", schema, instance)
    assert not found, f"{schema} per openapi/{document}.yaml: {found[:3]} in {json.dumps(instance)[:400]}"


def sse_events(lines) -> list[tuple[str | None, dict]]:
    """(event name, data) per SSE event, from the lines of a stream."""
    out, name = [], None
    for line in lines:
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            out.append((name, json.loads(line[len("data: "):])))
            name = None
    return out
