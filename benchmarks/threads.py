"""Per-thread CPU of a running process, from /proc/<pid>/task/*/stat (Linux).

    python -m benchmarks.threads PID [--seconds 10]      # sample, then print each thread's CPU share

Used to tell where a server's CPU goes while the bench drives it: the event loop (uvicorn's main
thread), the engine thread (Python between llama_decode calls), llama.cpp's worker threads.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def snapshot(pid: int) -> dict[int, tuple[str, int]]:
    """{tid: (name, utime + stime ticks)} for every thread of `pid`."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1: stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        out[int(task.name)] = (name, int(fields[11]) + int(fields[12]))
    return out


def delta(before: dict, after: dict, seconds: float) -> list[tuple[int, str, float]]:
    """[(tid, name, share of one core)], busiest first."""
    rows = []
    for tid, (name, ticks) in after.items():
        used = ticks - before.get(tid, (name, 0))[1]
        if used > 0:
            rows.append((tid, name, used / TICK / seconds))
    return sorted(rows, key=lambda r: -r[2])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.threads", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pid", type=int)
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args(argv)
    t0, before = time.monotonic(), snapshot(a.pid)
    time.sleep(a.seconds)
    after, seconds = snapshot(a.pid), time.monotonic() - t0
    rows = delta(before, after, seconds)
    total = sum(r[2] for r in rows)
    print(f"pid {a.pid}: {total:.2f} cores over {seconds:.1f} s")
    for tid, name, share in rows:
        print(f"  {tid:>8} {name:20s} {share:6.2f} cores  {share / total if total else 0:6.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
