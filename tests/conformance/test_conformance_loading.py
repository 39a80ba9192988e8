"""503 while loading, deterministically: our server with its model load held back (tests/hooked_server.py
--load-delay). Through the mutating proxy first: each loading mutant must be caught inside the window."""
from __future__ import annotations

import json

from support import RunningServer
from conformance import mutation
from conformance.__main__ import main
from conformance.mutants import MUTANTS
from conformance.proxy import Proxy

LOADING = [m for m in MUTANTS if m.needs == "loading"]


def test_503_with_retry_after_then_ready_and_the_loading_mutants_are_caught(tmp_path):
    running = RunningServer(load_delay=10, wait_ready=False)  # HTTP up, model not yet
    proxy = Proxy(running.url)
    try:
        caught = {}
        for mutant in LOADING:  # each fails at its first answer, well inside the window
            results = mutation.run_cases(proxy.url(mutant.name), list(mutant.catches), model="m")
            caught[mutant.name] = all(r.status == "fail" for r in results)
        report = tmp_path / "loading.json"
        code = main(["--base-url", running.url, "--only", "loading.retry_after", "--report", str(report)])
    finally:
        proxy.close()
        running.stop()
    (result,) = json.loads(report.read_text())["results"]
    assert result["status"] == "pass", result
    assert code == 0
    assert all(caught.values()), caught
