"""Console lines and report cards (Markdown or JSON) from a list of results.

Every count is split by source (openai / reference / hearth), so that a user comparing servers sees
which failures are OpenAI incompatibilities. The mutation score (how many deliberately broken servers
the suite catches, `python -m conformance.mutation`) is printed beside the pass count.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from conformance.runner import SOURCES, Result

MARK = {"pass": "PASS", "fail": "FAIL", "not observed": "NOT OBSERVED"}
MUTATION = Path(__file__).resolve().parent / "reports" / "mutation.json"  # written by conformance.mutation


def line(result: Result) -> str:
    text = f"{MARK[result.status]} {result.name} [{result.source}]"
    return f"{text}: {result.reason}" if result.reason else text


def counts(results: list[Result]) -> str:
    count = Counter(r.status for r in results)
    text = f"{count['pass']} passed, {count['fail']} failed"
    return text + (f", {count['not observed']} not observed" if count["not observed"] else "")


def mutation_score(path: Path = MUTATION) -> str | None:
    """`caught/total mutants caught`, computed from the recorded matrix's rows against today's mutants.py:
    a mutant the matrix lacks or has not run counts as not caught, and the line says how many."""
    from conformance import mutation

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    s = mutation.score(data)
    commit = ((data.get("stamp") or {}).get("commit") or "")[:12]
    gaps = [f"{s['not_run']} mutant(s) not yet run"] if s["not_run"] else []
    gaps += [f"{s['cases_not_run']} case(s) not in the matrix"] if s["cases_not_run"] else []
    when = f"matrix of {data.get('date')}" + (f", commit {commit}" if commit else "")
    return f"mutation score {s['caught']}/{s['mutants']} mutants caught ({when}" + "".join(f"; {g}" for g in gaps) + ")"


def summary(results: list[Result]) -> str:
    by_source = "; ".join(f"{s}: {counts([r for r in results if r.source == s])}" for s in SOURCES
                          if any(r.source == s for r in results))
    text = f"{counts(results)} ({by_source})"
    score = mutation_score()
    return f"{text}; {score}" if score else text


def write(path: str, results: list[Result], meta: dict) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() == ".json":
        data = {**meta, "summary": summary(results), "results": [r.__dict__ for r in results]}
        target.write_text(json.dumps(data, indent=2) + "\n")
    else:
        target.write_text(markdown(results, meta))


def markdown(results: list[Result], meta: dict) -> str:
    out = [f"# Conformance report: {meta.get('base_url', '')}", ""]
    for key in ("server", "model", "oracle", "spec", "date", "seconds"):
        if meta.get(key) is not None:
            out.append(f"- {key}: {meta[key]}")
    out += [f"- result: **{summary(results)}**", "", "## By source", "",
            "(openai: OpenAI's published schema or documented behaviour; reference: the LM Studio documents; "
            "hearth: Hearth's own policy, and bodies that keep OpenAI's schema but break Hearth's stricter one)", "",
            "| source | pass | fail | not observed |", "|---|---|---|---|"]
    for source in SOURCES:
        count = Counter(r.status for r in results if r.source == source)
        out.append(f"| {source} | {count['pass']} | {count['fail']} | {count['not observed']} |")
    out += ["", "## Report card", "", "| route | feature | pass | fail | of which shape only | not observed |",
            "|---|---|---|---|---|---|"]
    cells: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for r in results:
        cells[(r.route, r.feature)][r.status] += 1
        if r.status == "fail" and r.reason.startswith("schema:"):
            cells[(r.route, r.feature)]["shape"] += 1
    for (route, feature), count in sorted(cells.items()):
        out.append(f"| {route} | {feature} | {count['pass']} | {count['fail']} | {count['shape']} | {count['not observed']} |")
    out += ["", "## Cases", "", "| case | source | route | result | reason | seconds |", "|---|---|---|---|---|---|"]
    for r in results:
        reason = r.reason.replace("|", "\\|").replace("\n", " ")
        out.append(f"| {r.name} | {r.source} | {r.route} | {MARK[r.status]} | {reason} | {r.seconds:.2f} |")
    notes = meta.get("notes")
    if notes:
        out += ["", "## Notes", "", notes.strip()]
    return "\n".join(out) + "\n"
