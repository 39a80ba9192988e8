"""Console lines and report cards (Markdown or JSON) from a list of results."""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from conformance.runner import Result

MARK = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}


def line(result: Result) -> str:
    text = f"{MARK[result.status]} {result.name}"
    return f"{text}: {result.reason}" if result.reason else text


def summary(results: list[Result]) -> str:
    count = Counter(r.status for r in results)
    text = f"{count['pass']} passed, {count['fail']} failed"
    return text + (f", {count['skip']} skipped" if count["skip"] else "")


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
    for key in ("server", "model", "spec", "date", "seconds"):
        if meta.get(key) is not None:
            out.append(f"- {key}: {meta[key]}")
    schema_only = sum(1 for r in results if r.status == "fail" and r.reason.startswith("schema:"))
    out += [f"- result: **{summary(results)}** ({schema_only} of the failures are response-shape violations only)",
            "", "## Report card", "", "(fail: all failures; of which shape only: the behaviour checked was right but a body broke the schema)", "",
            "| route | feature | pass | fail | of which shape only | skip |", "|---|---|---|---|---|---|"]
    cells: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for r in results:
        cells[(r.route, r.feature)][r.status] += 1
        if r.status == "fail" and r.reason.startswith("schema:"):
            cells[(r.route, r.feature)]["shape"] += 1
    for (route, feature), count in sorted(cells.items()):
        out.append(f"| {route} | {feature} | {count['pass']} | {count['fail']} | {count['shape']} | {count['skip']} |")
    out += ["", "## Cases", "", "| case | route | result | reason | seconds |", "|---|---|---|---|---|"]
    for r in results:
        reason = r.reason.replace("|", "\\|").replace("\n", " ")
        out.append(f"| {r.name} | {r.route} | {MARK[r.status]} | {reason} | {r.seconds:.2f} |")
    notes = meta.get("notes")
    if notes:
        out += ["", "## Notes", "", notes.strip()]
    return "\n".join(out) + "\n"
