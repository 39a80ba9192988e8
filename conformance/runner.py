"""Cases, their registry, and the loop that runs them: one verdict per case, never a crash."""
from __future__ import annotations

import fnmatch
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Iterable

import httpx
import openai

from conformance.target import Target


class Failed(AssertionError):
    """The server broke the contract; the message is the one-line reason, `details` what reproduces it."""

    def __init__(self, reason: str, details: str = ""):
        super().__init__(reason)
        self.details = details


class Skipped(Exception):
    """The case does not apply to this server (the message says why)."""


@dataclass(frozen=True)
class Case:
    name: str  # dotted, e.g. "chat.stream.usage"
    route: str  # "POST /chat/completions", or "any" for wire-level cases
    feature: str  # what the report card groups by
    run: Callable[[Target], None]
    needs_model: bool = True  # wait for the server to be ready before this case


@dataclass
class Result:
    name: str
    route: str
    feature: str
    status: str  # "pass" | "fail" | "skip"
    reason: str
    seconds: float
    details: str = ""  # e.g. the full request that failed, for the JSON report


REGISTRY: list[Case] = []


def case(name: str, route: str, feature: str, needs_model: bool = True):
    def register(func: Callable[[Target], None]) -> Callable[[Target], None]:
        REGISTRY.append(Case(name, route, feature, func, needs_model))
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
    except Skipped as exc:
        status, reason = "skip", str(exc)
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
    if target.schema_problems and status != "skip":
        shown = "; ".join(target.schema_problems[:3]) + (f" (+{len(target.schema_problems) - 3} more)" if len(target.schema_problems) > 3 else "")
        reason = f"{reason}; schema: {shown}" if status == "fail" else f"schema: {shown}"
        status = "fail"
    return Result(item.name, item.route, item.feature, status, reason, time.monotonic() - started, details)


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
