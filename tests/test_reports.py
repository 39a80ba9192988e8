"""Every committed report under docs/reports/ says what it measured (no server, no model).

Each report is a pair NAME.json + NAME.md; the JSON carries the stamp of benchmarks/stamp.py (the commit,
the date, the machine: cores, load, autogroup; the command), and the page shows the commit and, for a
smoke run, that it is one, so that a figure from it cannot be quoted as the measurement unawares.
"""
from __future__ import annotations

import json
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
