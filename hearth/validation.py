"""Request body validation against openapi/, with OpenAI's statuses and codes.

Connexion's own JSON validator answers every failure with a bare 400 and fails with a 500 on
bodies it cannot decode; this one says which parameter is wrong and how (see the error table in
docs/architecture.md: structure and types are 400, out-of-range values are 422).
"""
from __future__ import annotations

import json
import typing as t

from connexion.validators.json import JSONRequestBodyValidator
from jsonschema import ValidationError

from hearth.errors import ApiError

_VALUE_RULES = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum", "maxItems", "maxLength"}


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _param(path: t.Iterable) -> str | None:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def error_for(exc: ValidationError) -> ApiError:
    missing = [e for e in exc.context or () if e.validator == "required" and not e.relative_path]
    if exc.validator in ("anyOf", "oneOf") and len({e.schema_path[0] for e in missing}) == 1:
        return error_for(missing[0])  # one branch wants a field (response_format json_schema): name it
    param = _param(exc.absolute_path)
    where = f" ({param})" if param else ""
    if exc.validator == "required":
        missing = next(k for k in exc.validator_value if k not in exc.instance)
        full = f"{param}.{missing}" if param else missing
        return ApiError(400, f"Missing required parameter: '{full}'.", code="missing_required_parameter", param=full)
    if exc.validator in ("minItems", "minLength") and exc.validator_value == 1:
        kind = "array" if exc.validator == "minItems" else "string"
        return ApiError(400, f"Expected a non-empty {kind}{where}.", code=f"empty_{kind}", param=param)
    if exc.validator in _VALUE_RULES:
        return ApiError(422, f"Invalid value{where}: {exc.message}", code="invalid_value", param=param)
    return ApiError(400, f"Invalid type{where}: {exc.message}", code="invalid_type", param=param)


class OpenAIJSONBodyValidator(JSONRequestBodyValidator):
    async def _parse(self, stream, scope) -> t.Any:
        raw = b"".join([message async for message in stream])
        if not raw.strip():
            raise ApiError(400, "The request body is empty; expected a JSON object.", code="invalid_json")
        try:
            body = json.loads(raw.decode(self._encoding), parse_constant=_reject_constant)
            json.dumps(body, ensure_ascii=False).encode("utf-8")  # rejects lone surrogates (\ud800)
        except (ValueError, LookupError, RecursionError) as exc:
            raise ApiError(400, f"The request body is not valid JSON: {exc}", code="invalid_json") from None
        return body

    def _validate(self, body: t.Any) -> dict | None:
        try:
            return self._validator.validate(body)
        except ValidationError as exc:
            raise error_for(exc) from None
        except RecursionError:
            raise ApiError(400, "The request body is nested too deeply.", code="invalid_json") from None
