"""Mutation proof in CI: each mutant (conformance/mutants.py) breaks one behaviour of our real server,
through the mutating proxy, and every case listed as catching it fails. Every case is listed for some
mutant, so every case is seen failing. The full mutant x case matrix is `python -m conformance.mutation
--matrix` (too slow for CI; its result is in conformance/reports/mutation.md)."""
from __future__ import annotations

import pytest

from conformance import mutation, runner
from conformance.mutants import MUTANTS
from conformance.proxy import Proxy

READY = [m for m in MUTANTS if m.needs == "ready"]


def test_every_case_is_listed_as_catching_a_mutant_and_every_listed_case_exists():
    import conformance.cases  # noqa: F401

    names = {c.name for c in runner.REGISTRY}
    listed = {c for m in MUTANTS for c in m.catches}
    assert listed <= names, sorted(listed - names)
    assert names <= listed, f"cases no mutant is listed for: {sorted(names - listed)}"
    assert all(m.catches for m in MUTANTS)


@pytest.fixture(scope="module")
def proxy(server):
    running = Proxy(server)
    yield running
    running.close()


def test_the_unmutated_proxy_breaks_nothing(proxy, model_id):
    """Through the proxy without a mutant, every case a mutant is checked with passes: a catch is the mutant's."""
    names = sorted({c for m in READY for c in m.catches})
    failed = {r.name: r.reason for r in mutation.run_cases(proxy.url("none"), names, model=model_id) if r.status != "pass"}
    assert not failed, failed


@pytest.mark.parametrize("mutant", READY, ids=[m.name for m in READY])
def test_mutant_is_caught_by_every_case_listed_for_it(proxy, model_id, mutant):
    results = mutation.run_cases(proxy.url(mutant.name), list(mutant.catches), model=model_id)
    passed = {r.name: r.status for r in results if r.status != "fail"}
    assert not passed, f"{mutant.name} ({mutant.breaks}) was not caught by {passed}"
