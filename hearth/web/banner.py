"""What `hearth serve` prints once its port is bound: where to go, what is loaded, how to stop."""
from __future__ import annotations

from hearth.web.telemetry import version


def banner(host: str, port: int, models: str, offload: str = "CPU") -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    shown = f"[{shown}]" if ":" in shown and not shown.startswith("[") else shown
    base = f"http://{shown}:{port}"
    lines = [
        f"hearth {version()} is listening on {base}" + ("  (all interfaces)" if shown != host else ""),
        f"  API      {base}/v1          OpenAI-compatible; any api key",
        f"  page     {base}/            status, models, chat playground, last requests",
        f"  docs     {base}/docs        metrics {base}/metrics   health {base}/health",
        f"  models   {models}",
        f"  runs on  {offload}",
        "  stop     Ctrl+C",
    ]
    return "\n".join(lines)
