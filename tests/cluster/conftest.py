"""A real cluster for tests/cluster/test_cluster.py: `python -m hearth.cluster` (what scripts/cluster runs) with
a local Ray head, two replicas of the real model, on a free loopback port."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


class RunningCluster:
    def __init__(self, *args: str, timeout: float = 240):
        from support import free_port

        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = self.root + "/v1"
        (ROOT / ".pytest_cache").mkdir(exist_ok=True)
        self.log_path = ROOT / f".pytest_cache/cluster-{self.port}.log"
        self.log = open(self.log_path, "w")
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
        self.proc = subprocess.Popen([sys.executable, "-m", "hearth.cluster", "--port", str(self.port), *args],
                                     cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while "ready in" not in self.log_path.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the cluster did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.5)

    def stats(self) -> dict:
        return httpx.get(self.root + "/cluster/stats", timeout=10).json()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # what Ctrl-C does: serve.shutdown(), then ray.shutdown()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    pytest.importorskip("ray.serve", reason="Ray is not installed (pip install -c constraints.txt "
                        "-c constraints-ray.txt '.[ray]', or run scripts/cluster once)")
    store = tmp_path_factory.mktemp("cluster") / "responses.sqlite3"  # both replicas' one store
    c = RunningCluster("--replicas", "2", "--ctx-size", "4096", "--max-queued", "4", "--store-path", str(store))
    try:
        yield c
    finally:
        c.stop()
