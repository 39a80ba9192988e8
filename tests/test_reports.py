"""Every committed report under docs/reports/ says what it measured (no server, no model).

Each report is a pair NAME.json + NAME.md; the JSON carries the stamp of benchmarks/stamp.py (the commit,
the date, the machine: cores, load, autogroup; the command), and the page shows the commit and, for a
smoke run, that it is one, so that a figure from it cannot be quoted as the measurement unawares.

Figures quoted in README.md and docs/*.md trace to these files: a measured number carries a marker right
after it (invisible when rendered), `93%<!-- fig cluster summary.prefix.hit_rate x100 -->`: the report
(docs/reports/NAME.json, else conformance/reports/NAME.json), the dotted key of the value, and an optional
scale (x100 for a percentage of a fraction, x1000 for ms of seconds). The number must equal the value
rounded to the decimals quoted; the report must be a full run (not a smoke run) of a commit in this
branch's history. A figure no report holds is marked older instead, with the commit it was measured at:
`(older: measured at `abc1234`)`; that commit must exist.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from benchmarks import stamp

REPORTS = sorted(stamp.REPORTS.glob("*.json"))
NEEDED = ("commit", "date", "cores", "loadavg_before", "sched_autogroup_enabled", "command")


def problems(json_path: Path) -> list[str]:
    found = []
    md = json_path.with_suffix(".md")
    if not md.exists():
        return [f"{md.name} missing"]
    info = json.loads(json_path.read_text()).get("stamp") or {}
    found += [f"stamp lacks {k}" for k in NEEDED if info.get(k) in (None, "")]
    page = md.read_text()
    if info.get("commit") and info["commit"][:7] not in page:
        found.append("the page does not name the commit")
    if info.get("short_run") and "**Short run**" not in page:
        found.append("a short run whose page does not say so")
    return found


def test_there_are_reports():
    assert {"loadtest", "fuzz"} <= {p.stem for p in REPORTS}


@pytest.mark.parametrize("path", REPORTS, ids=[p.stem for p in REPORTS])
def test_report_is_stamped(path):
    assert problems(path) == []


def test_the_check_sees_an_unstamped_report_and_a_hidden_short_run(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"stamp": {"commit": "0123456789ab", "short_run": "--requests 4"}}))
    (tmp_path / "a.md").write_text("# A report\n\nCommit `0123456789ab`.\n")
    found = problems(tmp_path / "a.json")
    assert "a short run whose page does not say so" in found
    assert "stamp lacks cores" in found and "stamp lacks command" in found


def test_stamp_marks_a_dirty_tree_and_a_short_run():
    info = stamp.stamp(["x", "--y"], short="a smoke run")
    assert info["command"] == "x --y" and len(info["commit"]) == 40 and isinstance(info["dirty"], bool)
    page = "\n".join(stamp.header(stamp.finish(info)))
    assert "**Short run** (a smoke run)" in page and info["commit"][:12] in page
    assert ("uncommitted changes" in page) == info["dirty"]


DOCS = [stamp.ROOT / "README.md", *sorted((stamp.ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"(?<![\w.])(-?\d[\d,]*(?:\.\d+)?)[^\d<>\n]{0,8}?<!-- fig (\S+) (\S+)(?: x(\d+))? -->")
OLDER = re.compile(r"older: measured at `([0-9a-f]{7,40})`")


def report_json(name: str) -> dict:
    for folder in (stamp.REPORTS, stamp.ROOT / "conformance" / "reports"):
        if (folder / f"{name}.json").exists():
            return json.loads((folder / f"{name}.json").read_text())
    raise AssertionError(f"no report {name}.json")


def lookup(data, key: str):
    for part in key.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def figure_problems(text: str, known_commit=lambda c: True, load=report_json) -> list[str]:
    """What is wrong with the marked figures and older marks of one page."""
    found = []
    markers = list(MARKER.finditer(text))
    if len(markers) != text.count("<!-- fig "):
        found.append("a fig marker not right after its number (at most 8 characters of unit between)")
    for m in markers:
        quoted, name, key, scale = m.group(1), m.group(2), m.group(3), int(m.group(4) or 1)
        data = load(name)
        try:
            value = lookup(data, key) * scale
        except (KeyError, IndexError, TypeError, ValueError):
            found.append(f"{name}: no number at {key}")
            continue
        decimals = len(quoted.split(".")[1]) if "." in quoted else 0
        if round(value, decimals) != float(quoted.replace(",", "")):
            found.append(f"{quoted} quoted, {name} {key} is {value:,.{decimals}f}")
        info = data.get("stamp") or {}
        if info.get("short_run"):
            found.append(f"{quoted} quoted from a short run of {name}")
        if not info.get("commit") or not known_commit(info["commit"]):
            found.append(f"{quoted} quoted from {name}, a report of a commit not in this history ({info.get('commit')})")
    found += [f"older mark names an unknown commit {c}" for c in OLDER.findall(text) if not known_commit(c)]
    return found


def in_history(commit: str) -> bool:
    """The commit is HEAD or an ancestor of it."""
    run = subprocess.run(["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=stamp.ROOT, capture_output=True)
    return run.returncode == 0


@pytest.mark.parametrize("page", DOCS, ids=[p.name for p in DOCS])
def test_quoted_figures_match_their_reports(page):
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=stamp.ROOT, capture_output=True).returncode:
        pytest.skip("not a git checkout: the stamps' commits cannot be checked")
    assert figure_problems(page.read_text(), in_history) == []


def test_the_figure_check_sees_a_wrong_figure_and_a_short_run():
    good = "hits: 93%<!-- fig cluster summary.prefix.hit_rate x100 -->"
    assert figure_problems(good) == []
    assert figure_problems("hits: **94%**<!-- fig cluster summary.prefix.hit_rate x100 -->") == [
        "94 quoted, cluster summary.prefix.hit_rate is 93"]
    smoke = {"stamp": {"commit": "0123456", "short_run": "--requests 16"}, "result": {"requests": 16}}
    assert figure_problems("16 requests<!-- fig x result.requests -->", load=lambda name: smoke) == [
        "a fig marker not right after its number (at most 8 characters of unit between)"]
    assert figure_problems("16 asked<!-- fig x result.requests -->", load=lambda name: smoke) == [
        "16 quoted from a short run of x"]
    assert figure_problems("(older: measured at `0000000`)", lambda c: False)
    assert figure_problems(good, lambda c: False)  # a report of a commit outside the history
