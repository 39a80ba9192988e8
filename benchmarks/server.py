"""Start a server (ours, or llama.cpp's llama-server) on a free loopback port, wait until it serves
/v1/models, stop it after."""
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


class Managed:
    """A server process started by the bench, logging to `log_path`. Use as a context manager."""

    def __init__(self, cmd: list[str], port: int, log_path: Path, ready_timeout: float = 180.0):
        self.cmd, self.port = cmd, port
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self.log_path = log_path
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen | None = None
        self.startup_s: float | None = None

    def __enter__(self):
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
            proc.send_signal(signal.SIGINT)  # graceful shutdown (uvicorn, llama-server alike)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self._log.close()


class OwnServer(Managed):
    """`python -m hearth serve` over `model`."""

    def __init__(self, model: str, log_path: Path, ctx_size: int | None = None, threads: int | None = None,
                 parallel: int | None = None, extra_args: list[str] | None = None, ready_timeout: float = 180.0):
        port = free_port()
        cmd = [sys.executable, "-m", "hearth", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--model", str(model)]
        for flag, value in (("--ctx-size", ctx_size), ("--threads", threads), ("--parallel", parallel)):
            if value is not None:
                cmd += [flag, str(value)]
        super().__init__(cmd + (extra_args or []), port, log_path, ready_timeout)


class LlamaServer(Managed):
    """llama.cpp's own C++ server over the same model file, set up like ours: the same threads, as
    many slots as our sequences, `ctx_size` tokens per slot, loopback only, one model id."""

    def __init__(self, binary: str, model: str, log_path: Path, model_id: str, ctx_size: int, threads: int,
                 parallel: int, extra_args: list[str] | None = None, ready_timeout: float = 180.0):
        port = free_port()
        cmd = [binary, "--model", str(model), "--alias", model_id, "--host", "127.0.0.1", "--port", str(port),
               "--threads", str(threads), "--threads-batch", str(threads), "--parallel", str(parallel),
               "--ctx-size", str(ctx_size * parallel), "--no-webui"]
        super().__init__(cmd + (extra_args or []), port, log_path, ready_timeout)
