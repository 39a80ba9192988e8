"""Start our own server on a free loopback port, wait until it serves /v1/models, stop it after."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(base_url: str, timeout: float, proc: subprocess.Popen | None = None) -> float:
    """Poll GET /v1/models until it answers 200 with a model; return the seconds waited."""
    t0 = time.monotonic()
    last = "no answer"
    while time.monotonic() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} before it was ready")
        try:
            resp = httpx.get(base_url + "/models", timeout=2.0)
            if resp.status_code == 200 and resp.json().get("data"):
                return time.monotonic() - t0
            last = f"HTTP {resp.status_code}"
        except (httpx.HTTPError, ValueError) as e:
            last = type(e).__name__
        time.sleep(0.25)
    raise TimeoutError(f"{base_url}/models not ready after {timeout:.0f} s ({last})")


class OwnServer:
    """`python -m hearth serve` over `model`, logging to `log_path`. Use as a context manager."""

    def __init__(self, model: str, log_path: Path, ctx_size: int | None = None, threads: int | None = None,
                 parallel: int | None = None, extra_args: list[str] | None = None, ready_timeout: float = 180.0):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.cmd = [sys.executable, "-m", "hearth", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                    "--model", str(model)]
        for flag, value in (("--ctx-size", ctx_size), ("--threads", threads), ("--parallel", parallel)):
            if value is not None:
                self.cmd += [flag, str(value)]
        self.cmd += extra_args or []
        self.log_path = log_path
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen | None = None
        self.startup_s: float | None = None

    def __enter__(self) -> "OwnServer":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            self.startup_s = wait_ready(self.base_url, self.ready_timeout, self.proc)
        except BaseException:
            self.__exit__(None, None, None)
            tail = self.log_path.read_text(errors="replace")[-2000:]
            print(f"bench: server log tail ({self.log_path}):\n{tail}", file=sys.stderr)
            raise
        return self

    def cpu_seconds(self) -> float | None:
        """CPU time the server process (all its threads) has used so far, from /proc."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError, AttributeError):
            return None

    def idle_cpu(self, seconds: float = 1.0) -> float | None:
        """Fraction of one core the server uses while no request runs (a busy-waiting engine skews
        every figure on 2 cores, the in-process reference's included)."""
        c0 = self.cpu_seconds()
        time.sleep(seconds)
        c1 = self.cpu_seconds()
        return None if c0 is None or c1 is None else (c1 - c0) / seconds

    def __exit__(self, *exc) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self._log.close()
