"""instructor (structured outputs for LLMs) against the real server, in TOOLS and JSON_SCHEMA modes.

instructor 1.17.0 pins jiter<0.15 and rich<15, which the project's openai 3.54 (jiter>=0.16) and
schemathesis exclude, so it cannot share .venv: it runs in its own virtualenv, made on first use from
the exact pins in tests/clients/instructor-requirements.txt (.venv/clients/instructor; ~1 minute the
first time), and talks to the session's server over HTTP like any client."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQS = ROOT / "tests/clients/instructor-requirements.txt"
VENV = ROOT / ".venv/clients/instructor"


@pytest.fixture(scope="module")
def instructor_python() -> Path:
    python = VENV / "bin/python"
    stamp = VENV / ".installed"
    want = hashlib.sha256(REQS.read_bytes()).hexdigest()
    if not python.exists() or not stamp.exists() or stamp.read_text() != want:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "-r", str(REQS)], check=True,
                       timeout=900)
        stamp.write_text(want)
    return python


def test_instructor_extracts_pydantic_models_in_tools_and_json_schema_modes(server, instructor_python):
    proc = subprocess.run([str(instructor_python), str(ROOT / "tests/clients/instructor_client.py"), server],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [(r["mode"], r["model"]) for r in results] == [
        ("tool_call", "Person"), ("tool_call", "Weather"), ("json_schema_mode", "Person"), ("json_schema_mode", "Weather")]
    assert all(r["type"] == r["model"] for r in results)
    assert all(r["value"]["unit"] in ("celsius", "fahrenheit") for r in results if r["model"] == "Weather")
