"""Mutation proof in CI: each mutant (conformance/mutants.py) breaks one behaviour of our real server,
through the mutating proxy, and is caught. To stay within the test budget each case runs once: against
the first mutant that lists it (a mutant that is nobody's first runs its first listed case), so every
mutant is seen caught and every case is seen failing. `python -m conformance.mutation --write` runs
every listed pair (conformance/reports/mutation.md); `--matrix` every mutant against every case."""
from __future__ import annotations

import pytest

from conformance import mutation, runner
from conformance.mutants import MUTANTS
from conformance.proxy import Proxy

READY = [m for m in MUTANTS if m.needs == "ready"]
AWAITING_A_MUTANT: set[str] = set()  # cases that landed without a mutant yet: debt, not exemption


def assigned() -> dict[str, list[str]]:
    """mutant -> the cases it is checked with in CI: each case under the first mutant listing it."""
    plan: dict[str, list[str]] = {m.name: [] for m in READY}
    seen: set[str] = set()
    for m in READY:
        for name in m.catches:
            if name not in seen:
                seen.add(name)
                plan[m.name].append(name)
        plan[m.name] = plan[m.name] or [m.catches[0]]
    return plan


PLAN = assigned()


def test_every_case_is_listed_as_catching_a_mutant_and_every_listed_case_exists():
    import conformance.cases  # noqa: F401

    names = {c.name for c in runner.REGISTRY}
    listed = {c for m in MUTANTS for c in m.catches}
    assert listed <= names, sorted(listed - names)
    assert names - AWAITING_A_MUTANT <= listed, f"cases no mutant is listed for: {sorted(names - listed - AWAITING_A_MUTANT)}"
    assert AWAITING_A_MUTANT <= names - listed, f"no longer awaiting: {sorted(AWAITING_A_MUTANT & listed)}"
    assert all(m.catches for m in MUTANTS)


@pytest.fixture(scope="module")
def proxy(server):
    running = Proxy(server)
    yield running
    running.close()


def test_the_unmutated_proxy_breaks_nothing(proxy, model_id):
    """Through the proxy without a mutant, every case a mutant is checked with passes: a catch is the mutant's."""
    names = sorted({c for cases in PLAN.values() for c in cases})
    failed = {r.name: r.reason for r in mutation.run_cases(proxy.url("none"), names, model=model_id) if r.status != "pass"}
    assert not failed, failed


@pytest.mark.parametrize("mutant", READY, ids=[m.name for m in READY])
def test_mutant_is_caught(proxy, model_id, mutant):
    results = mutation.run_cases(proxy.url(mutant.name), PLAN[mutant.name], model=model_id)
    passed = {r.name: r.status for r in results if r.status != "fail"}
    assert not passed, f"{mutant.name} ({mutant.breaks}) was not caught by {passed}"
    other = {r.name: r.reason for r in results if not mutant.named_by(r.reason)}
    assert not other, f"{mutant.name}: failed for another reason (naming none of {mutant.names}): {other}"
