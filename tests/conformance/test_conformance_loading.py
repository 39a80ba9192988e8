"""503 while loading, deterministically: our server with its model load held back (tests/hooked_server.py --load-delay)."""
from __future__ import annotations

import json

from conftest import RunningServer
from conformance.__main__ import main


def test_503_with_retry_after_then_ready(tmp_path):
    running = RunningServer(load_delay=8, wait_ready=False)  # HTTP up, model not yet
    try:
        report = tmp_path / "loading.json"
        code = main(["--base-url", running.url, "--only", "loading.retry_after", "--report", str(report)])
    finally:
        running.stop()
    (result,) = json.loads(report.read_text())["results"]
    assert result["status"] == "pass", result
    assert code == 0
