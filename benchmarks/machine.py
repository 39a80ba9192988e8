"""How busy the machine is with other work, from /proc (Linux; elsewhere the figures are None).

On 2 cores, llama.cpp's threads wait for each other at every step: one other busy process can slow
a decode loop 10 times over. A figure is only worth reading with the share of the CPUs that other
processes took while it was measured, so every scenario records it, and `wait_quiet` can hold a
scenario back until the machine is idle.
"""
from __future__ import annotations

import os
import re
import subprocess
import time


def _machine_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies over all CPUs since boot."""
    try:
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = vals[3] + vals[4]  # idle + iowait
    total = sum(vals)
    return total - idle, total


def _process_ticks(pid: int) -> int:
    """utime + stime of every thread of `pid` (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return 0


def pid_listening(port: int) -> int | None:
    """The process serving a local TCP port (to tell its CPU time from everyone else's)."""
    try:
        out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"pid=(\d+)", out)
    return int(m.group(1)) if m else None


class CpuMeter:
    """Shares of all CPUs used by our processes (this one, the server) and by everything else."""

    def __init__(self, own_pids: list[int]):
        self.own_pids = [os.getpid()] + [p for p in own_pids if p]
        self._start: tuple | None = None

    def _sample(self):
        m = _machine_ticks()
        return None if m is None else (m, sum(_process_ticks(p) for p in self.own_pids))

    def start(self) -> "CpuMeter":
        self._start = self._sample()
        return self

    def stop(self) -> dict:
        end = self._sample()
        if self._start is None or end is None:
            return {"other": None, "ours": None}
        (busy0, total0), own0 = self._start
        (busy1, total1), own1 = end
        total = max(total1 - total0, 1)
        ours = own1 - own0
        return {"other": round(max(busy1 - busy0 - ours, 0) / total, 3), "ours": round(ours / total, 3)}

    def wait_quiet(self, max_wait: float, threshold: float = 0.10, log=print, need: int = 2) -> dict:
        """Wait (up to `max_wait` s) for `need` quiet seconds: other processes under `threshold` of the CPUs."""
        t0 = time.monotonic()
        quiet_for, told, last = 0, False, None
        while True:
            self.start()
            time.sleep(1.0)
            last = self.stop()["other"]
            if last is None:
                return {"waited": 0.0, "other": None}
            quiet_for = quiet_for + 1 if last < threshold else 0
            waited = time.monotonic() - t0
            if quiet_for >= need or waited >= max_wait:
                if told or (waited >= max_wait and max_wait > 0):
                    log(f"waited {waited:.0f} s for the machine: other processes now at {last:.0%} of the CPUs")
                return {"waited": round(waited, 1), "other": last}
            if not told and waited > 3:
                log(f"other processes use {last:.0%} of the CPUs: waiting up to {max_wait:.0f} s for quiet")
                told = True


class Gate:
    """Called around every measured run: waits for a quiet machine before it (up to `max_wait` s, 0: no
    wait), and records the share of the CPUs other processes took during it (waits excluded)."""

    def __init__(self, own_pids: list[int], max_wait: float, log=print):
        self.meter = CpuMeter(own_pids)
        self.max_wait, self.log = max_wait, log
        self.shares: list[float] = []
        self.waited = 0.0
        self._busy = self._own = self._total = 0
        self._t0 = None

    def before(self) -> None:
        if self.max_wait > 0:
            self.waited += self.meter.wait_quiet(self.max_wait, log=self.log, need=1)["waited"]
        self._t0 = self.meter._sample()

    def after(self) -> float | None:
        end = self.meter._sample()
        if self._t0 is None or end is None:
            return None
        (b0, t0), o0 = self._t0
        (b1, t1), o1 = end
        busy, own, total = b1 - b0, o1 - o0, max(t1 - t0, 1)
        self._busy, self._own, self._total = self._busy + busy, self._own + own, self._total + total
        share = round(max(busy - own, 0) / total, 3)
        self.shares.append(share)
        return share

    def summary(self) -> dict:
        if not self._total:
            return {"other": None, "ours": None, "worst_run": None, "waited": round(self.waited, 1)}
        return {"other": round(max(self._busy - self._own, 0) / self._total, 3),
                "ours": round(self._own / self._total, 3), "worst_run": max(self.shares),
                "waited": round(self.waited, 1)}
