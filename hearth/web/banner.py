"""What `hearth serve` prints once its port is bound: where to go, what is loaded, how to stop."""
from __future__ import annotations

import sys
from typing import Callable

import uvicorn

from hearth.web.telemetry import version


def banner(host: str, port: int, models: str) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    shown = f"[{shown}]" if ":" in shown and not shown.startswith("[") else shown
    base = f"http://{shown}:{port}"
    lines = [
        f"hearth {version()} is listening on {base}" + ("  (all interfaces)" if shown != host else ""),
        f"  API      {base}/v1          OpenAI-compatible; any api key",
        f"  page     {base}/            status, models, chat playground, last requests",
        f"  docs     {base}/docs        metrics {base}/metrics   health {base}/health",
        f"  models   {models}",
        "  stop     Ctrl+C",
    ]
    return "\n".join(lines)


class BannerServer(uvicorn.Server):
    """uvicorn's server, printing the banner only after the socket is bound (never for a port in use)."""

    def __init__(self, config: uvicorn.Config, models: Callable[[], str]):
        super().__init__(config)
        self._models = models

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            print(banner(self.config.host, self.config.port, self._models()), file=sys.stderr, flush=True)
