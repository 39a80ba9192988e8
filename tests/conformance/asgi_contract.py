"""schemathesis in-process through ASGI: our app (real engine, real model) against its own openapi/.

Examples and fuzzing phases, positive and negative data; the coverage phase is off (it runs many real
generations whatever max-examples says) and every generation is capped at a few tokens.
Run by test_conformance_asgi.py in a child pytest, so that a crash in native code fails one test
instead of ending the whole session.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Config
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

MAX_TOKENS = 4
EXAMPLES = int(os.environ.get("HEARTH_FUZZ_EXAMPLES", "10"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]


def cap_generation(body) -> None:
    if not isinstance(body, dict) or "messages" not in body and "prompt" not in body:
        return
    body.setdefault("max_tokens", MAX_TOKENS)
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key, 0)
        if value is None or (isinstance(value, int) and not isinstance(value, bool) and (value > MAX_TOKENS or value == -1)):
            body[key] = MAX_TOKENS


SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openai.yaml"
CONFIG = Config.from_dict({
    "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    "generation": {"mode": "all", "max-examples": EXAMPLES, "deterministic": True, "no-shrink": True},
    "request-timeout": 60,  # a shared 2-core machine can be slow; a hang still fails
})
schema = schemathesis.openapi.from_path(str(SPEC), config=CONFIG)


@schema.hook
def map_case(context, case):
    cap_generation(case.body)
    return case


@pytest.fixture
def app():
    """Our ASGI app over a real engine, in this process, once its model is loaded.

    One per operation: schemathesis's pytest plugin ends an ASGI app's lifespan (so our engine's
    close()) when each test item ends, and a closed engine is not started again."""
    from hearth.app import create_app
    from hearth.engine import LoadState
    from hearth.models.defaults import default_model_path
    from support import empty_models_dir, registry_for

    registry, made = registry_for(empty_models_dir())
    application = create_app(registry, startup=registry.startup(default_model_path()))
    schema["/models"]["GET"].Case().call(app=application)  # runs the lifespan, which starts the load
    deadline = time.monotonic() + 180
    while not made or made[0].state != LoadState.READY:
        engine = made[0] if made else None
        assert engine is None or engine.state != LoadState.FAILED, "the model failed to load"
        assert time.monotonic() < deadline, "the model did not load"
        time.sleep(0.1)
    yield application


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_openapi_contract_in_process(case, app):
    case.call_and_validate(app=app, checks=CHECKS)
