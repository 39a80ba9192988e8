"""The README's screenshot, taken with the browser tests' harness over a real server and model:
    .venv/bin/python tests/browser/screenshot.py docs/page.png [--dark]"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import os  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import httpx  # noqa: E402
from support import ROOT, free_port  # noqa: E402  (tests/conftest.py)
from playwright.sync_api import sync_playwright  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main(out: str, dark: bool) -> None:
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}  # as scripts/test
    server = subprocess.Popen([sys.executable, "-m", "hearth", "serve", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while True:  # /health, not /v1/models: probes stay out of the page's last requests
            try:
                if httpx.get(f"{origin}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
            time.sleep(0.2)
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                tempfile.mkdtemp(prefix="hearth-chromium-"), executable_path=CHROMIUM, headless=True, args=FLAGS,
                viewport={"width": 1000, "height": 1000}, color_scheme="dark" if dark else "light",
            )
            page = context.new_page()
            page.goto(origin + "/")
            page.wait_for_selector("#status-text:has-text('Ready')")
            page.fill("#system", "You are a concise assistant.")
            page.fill("#temperature", "0")
            page.fill("#max-tokens", "64")
            page.fill("#prompt", "What is a hearth? Answer in two sentences.")
            page.keyboard.press("Enter")
            page.wait_for_selector(".msg.assistant:not(.streaming)", timeout=120_000)
            page.wait_for_selector("#recent tr")
            page.wait_for_timeout(1200)
            page.screenshot(path=out, full_page=True)
            context.close()
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main(sys.argv[1], "--dark" in sys.argv[2:])
