"""One stamp for every report under docs/reports/: the commit measured, the date, the machine, the command.

A figure is worth quoting only with what it measured: `stamp()` records the commit (`git rev-parse
HEAD`, and whether the tree had uncommitted changes to tracked files: then the figures are not of that
commit), the date, the cores, the load average before (and, via `finish()`, after) and Linux's
`sched_autogroup_enabled` (with autogroup on, a nice level does not keep other sessions' work away),
and the command line. `short` marks a smoke run (a few requests, a small budget): its page says so in
its first lines, so that nobody quotes it as the measurement.

`write(name, report, markdown)` writes docs/reports/<name>.json and .md (or any --out path).
Used by benchmarks/cluster.py, scripts/loadtest.py, scripts/fuzz.py and conformance/mutation.py.
"""
from __future__ import annotations

import datetime
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "docs" / "reports"
AUTOGROUP = Path("/proc/sys/kernel/sched_autogroup_enabled")


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def stamp(command: str | list[str] | None = None, short: str | None = None) -> dict:
    """What a report measured. `command`: the command line (default: this process's); `short`: why it is a smoke run."""
    if command is None:
        script = Path(sys.argv[0]).resolve()
        command = [script.relative_to(ROOT).as_posix() if script.is_relative_to(ROOT) else sys.argv[0], *sys.argv[1:]]
    if isinstance(command, list):
        command = shlex.join(command)
    try:
        autogroup = AUTOGROUP.read_text().strip()
    except OSError:
        autogroup = None
    return {"commit": _git("rev-parse", "HEAD") or None,
            "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "cores": os.cpu_count(), "loadavg_before": [round(x, 2) for x in os.getloadavg()],
            "sched_autogroup_enabled": autogroup, "command": command, "short_run": short}


def finish(info: dict) -> dict:
    """Adds the load average at the end of the run."""
    info["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return info


def header(info: dict) -> list[str]:
    """Markdown lines saying what was measured, for the top of a report page."""
    commit = info.get("commit") or "unknown"
    commit = f"`{commit[:12]}`" + (" **with uncommitted changes** (the figures are not of that commit)" if info.get("dirty") else "")
    load = " / ".join(f"{x:.2f}" for x in info.get("loadavg_before") or [])
    after = info.get("loadavg_after")
    if after:
        load += " before, " + " / ".join(f"{x:.2f}" for x in after) + " after"
    lines = []
    if info.get("short_run"):
        lines += [f"> **Short run** ({info['short_run']}): it shows the harness works; its figures are not the "
                  "measurement and must not be quoted as one.", ""]
    lines += [f"`{info.get('command')}`", "",
              f"Commit {commit}, {info.get('date')}; {info.get('cores')} cores, load average {load} (1/5/15 min), "
              f"sched_autogroup_enabled={info.get('sched_autogroup_enabled')}."]
    return lines


def write(name: str | Path, report: dict, markdown: str) -> tuple[Path, Path]:
    """docs/reports/<name>.json and .md (a path with a folder is taken as it is)."""
    out = Path(name)
    if out.parent == Path("."):
        out = REPORTS / out
    out.parent.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out.with_suffix(".json"), out.with_suffix(".md")
    json_path.write_text(json.dumps(report, indent=1, default=str) + "\n")
    md_path.write_text(markdown if markdown.endswith("\n") else markdown + "\n")
    return json_path, md_path
