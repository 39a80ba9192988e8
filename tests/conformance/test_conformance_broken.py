"""The suite can fail: against a deliberately broken server it reports each breakage, and never crashes."""
from __future__ import annotations

import json

import pytest

from broken_server import BrokenServer
from conformance.__main__ import main

# case -> a fragment of the reason the suite must give
EXPECTED_FAILURES = {
    "models.list": "required property",  # wrong shape
    "models.retrieve_unknown": "expected 404, got 200",  # wrong status
    "chat.plain": "required property",  # wrong shape (no usage, no role)
    "chat.stream.wire": "[DONE]",  # a stream without [DONE]
    "completions.plain": "500",  # a 500
    "embeddings.batch": "indexes",  # batch order
    "errors.malformed_json": "expected 400, got 500",
    "errors.temperature_range": "expected 422 naming temperature, got 200",
    "errors.max_tokens_ceiling": "expected 422 naming max_tokens, got 200",
    "errors.context_length_chat": "expected 400 naming messages, got 200",
    "http.unknown_route": "expected 404, got 200",
    "http.wrong_method": "expected 405, got 200",
    "http.cors_simple": "Access-Control-Allow-Origin",
    "fuzz.completions": "500",
    "chat.n": "choice indexes",  # n ignored
}


@pytest.fixture(scope="module")
def verdict(tmp_path_factory):
    server = BrokenServer()
    report = tmp_path_factory.mktemp("broken") / "report.json"
    try:
        code = main(["--base-url", server.url, "--report", str(report), "--fuzz-examples", "3"])
    finally:
        server.close()
    return code, json.loads(report.read_text())


def test_exit_code_and_summary_line(verdict, capsys):
    code, report = verdict
    assert code == 1
    counts = {s: sum(r["status"] == s for r in report["results"]) for s in ("pass", "fail", "not observed")}
    expected = f"{counts['pass']} passed, {counts['fail']} failed" + (f", {counts['not observed']} not observed" if counts["not observed"] else "")
    assert report["summary"].startswith(expected + " (openai: ")
    assert counts["fail"] >= len(EXPECTED_FAILURES)


@pytest.mark.parametrize("name,fragment", sorted(EXPECTED_FAILURES.items()))
def test_breakage_is_reported(verdict, name, fragment):
    _, report = verdict
    result = next(r for r in report["results"] if r["name"] == name)
    assert result["status"] == "fail", result
    assert fragment in result["reason"], result["reason"]


def test_no_case_crashes_the_suite(verdict):
    """Every registered case produced a verdict line with a reason when it did not pass."""
    from conformance.runner import REGISTRY

    _, report = verdict
    assert [r["name"] for r in report["results"]] == [c.name for c in REGISTRY]
    assert all(r["reason"] for r in report["results"] if r["status"] != "pass")
