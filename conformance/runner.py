"""Cases, their registry, and the loop that runs them: one verdict per case, never a crash."""
from __future__ import annotations

import fnmatch
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Iterable

import httpx
import openai

from conformance.target import CONTRACT_LABEL, Target


class Failed(AssertionError):
    """The server broke the contract; the message is the one-line reason, `details` what reproduces it."""

    def __init__(self, reason: str, details: str = ""):
        super().__init__(reason)
        self.details = details


class NotObserved(Exception):
    """What the case checks cannot be seen on this server now (e.g. the loading window on a server that
    is already loaded). Neither a pass nor a failure: the report counts it apart. A missing route or
    feature is never this: it is a failure."""


SOURCES = ("openai", "reference", "hearth")
# openai: OpenAI's published schema or documented behaviour; reference: the LM Studio documents the
# product is specified from; hearth: our own policy where neither speaks (e.g. 415, 413, 405).


@dataclass(frozen=True)
class Case:
    name: str  # dotted, e.g. "chat.stream.usage"
    route: str  # "POST /chat/completions", or "any" for wire-level cases
    feature: str  # what the report card groups by
    source: str  # one of SOURCES: who says the server must behave so
    run: Callable[[Target], None]
    needs_model: bool = True  # wait for the server to be ready before this case


@dataclass
class Result:
    name: str
    route: str
    feature: str
    status: str  # "pass" | "fail" | "not observed"
    reason: str
    seconds: float
    details: str = ""  # e.g. the full request that failed, for the JSON report
    source: str = "openai"  # the case's source; "hearth" when only our stricter contract's shapes failed


REGISTRY: list[Case] = []


def case(name: str, route: str, feature: str, source: str, needs_model: bool = True):
    assert source in SOURCES, source

    def register(func: Callable[[Target], None]) -> Callable[[Target], None]:
        assert all(c.name != name for c in REGISTRY), f"two cases named {name}"
        REGISTRY.append(Case(name, route, feature, source, func, needs_model))
        return func

    return register


def select(cases: Iterable[Case], pattern: str | None) -> list[Case]:
    """--only: comma-separated globs or substrings of case names."""
    if not pattern:
        return list(cases)
    parts = [p.strip() for p in pattern.split(",") if p.strip()]

    def wanted(name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) if any(c in p for c in "*?[") else p in name for p in parts)

    return [c for c in cases if wanted(c.name)]


def run_one(target: Target, item: Case) -> Result:
    started = time.monotonic()
    target.schema_problems = []
    details = ""
    try:
        item.run(target)
        status, reason = "pass", ""
    except NotObserved as exc:
        status, reason = "not observed", str(exc)
    except Failed as exc:
        status, reason, details = "fail", str(exc), exc.details
    except AssertionError as exc:
        status, reason = "fail", str(exc) or "assertion failed"
    except openai.APIStatusError as exc:
        status, reason = "fail", f"unexpected HTTP {exc.status_code} from the SDK call: {_oneline(exc.message)}"
    except (openai.APIConnectionError, httpx.TransportError) as exc:
        status, reason = "fail", f"transport error: {type(exc).__name__}: {_oneline(str(exc))}"
    except Exception as exc:  # the server's reply broke an assumption the SDK or the case relies on
        where = traceback.extract_tb(exc.__traceback__)[-1]
        status, reason = "fail", f"{type(exc).__name__}: {_oneline(str(exc))} (at {where.name}:{where.lineno})"
    source = item.source
    problems = target.schema_problems
    if problems and status != "not observed":
        # a body that keeps OpenAI's document but breaks only our stricter contract is our policy's failure
        if status == "pass" and all(p.startswith(CONTRACT_LABEL + ":") for p in problems):
            source = "hearth"
        shown = "; ".join(problems[:3]) + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else "")
        reason = f"{reason}; schema: {shown}" if status == "fail" else f"schema: {shown}"
        status = "fail"
    return Result(item.name, item.route, item.feature, status, reason, time.monotonic() - started, details, source)


def run(target: Target, cases: list[Case], emit: Callable[[Result], None]) -> list[Result]:
    results = []
    ready = False
    for item in cases:
        if item.needs_model and not ready:
            target.wait_ready()
            ready = True
        result = run_one(target, item)
        emit(result)
        results.append(result)
    return results


def _oneline(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
