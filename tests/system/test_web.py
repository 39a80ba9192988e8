"""/health, /metrics, /status, /docs, X-Request-Id, the request log and the banner (hearth/web)."""
from __future__ import annotations

import io
import json
import logging
import re
import socket
import subprocess
import sys

import httpx
import pytest

from support import ROOT, FakeEngine, ask
from hearth.engine import api
from hearth.web import requestlog

CHAT = {"model": "any", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8, "temperature": 0}


def origin(server: str) -> str:
    return server.removesuffix("/v1")


def metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for found, value in re.findall(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", text, re.M):
        if all(f'{k}="{v}"' in found.split(",") for k, v in labels.items()):
            total += float(value)
    return total


# /health --------------------------------------------------------------------------------------
def test_health_is_200_when_ready(server):
    r = httpx.get(f"{origin(server)}/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


@pytest.mark.anyio
async def test_health_is_503_with_the_api_error_body_while_loading():
    r = await ask(FakeEngine(state=api.LoadState.LOADING), "GET", "/health")
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
    assert r.json() == {"error": {"message": "The model is still loading; retry shortly.", "type": "server_error",
                                  "param": None, "code": "model_loading"}}


@pytest.mark.anyio
async def test_health_is_503_when_no_model_is_ready():
    r = await ask(FakeEngine(state=api.LoadState.FAILED), "GET", "/health")
    assert r.status_code == 503 and r.json()["error"]["code"] == "model_unavailable"


# /metrics -------------------------------------------------------------------------------------
def test_metrics_count_a_streamed_request(server):
    base = origin(server)
    before = httpx.get(f"{base}/metrics").text
    with httpx.stream("POST", f"{server}/chat/completions", json={**CHAT, "stream": True,
                                                                 "stream_options": {"include_usage": True}}, timeout=120) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data: {")]
    usage = json.loads(lines[-1][6:])["usage"]
    after = httpx.get(f"{base}/metrics").text
    assert httpx.get(f"{base}/metrics").headers["content-type"].startswith("text/plain")

    def grew(name, **labels):
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert grew("hearth_requests_total", route="/v1/chat/completions", status="200") == 1
    assert grew("hearth_prompt_tokens_total") == usage["prompt_tokens"]
    assert grew("hearth_completion_tokens_total") == usage["completion_tokens"]
    assert grew("hearth_time_to_first_token_seconds_count") == 1
    assert grew("hearth_inter_token_latency_seconds_count") >= 1
    assert grew("hearth_request_duration_seconds_count", route="/v1/chat/completions") == 1
    assert metric(after, "hearth_running_sequences") == 0 and metric(after, "hearth_queue_depth") == 0
    assert metric(after, "hearth_kv_cells_used") > 0  # the prompt stays cached as a prefix
    assert metric(after, "hearth_model_load_seconds") > 0
    assert metric(after, "hearth_model_ready") == 1
    for name in ("hearth_prefix_cache_hits_total", "hearth_requests_in_flight", "hearth_kv_cells_running"):
        assert re.search(rf"^{name} ", after, re.M), name


def test_route_label_is_the_template_not_the_path(server):
    base = origin(server)
    httpx.get(f"{server}/models/no-such-model-{id(server)}")
    httpx.get(f"{base}/no/such/route")
    text = httpx.get(f"{base}/metrics").text
    assert metric(text, "hearth_requests_total", route="/v1/models/{model_id}", status="404") >= 1
    assert metric(text, "hearth_requests_total", route="(unmatched)", status="404") >= 1
    assert "no-such-model" not in text and "/no/such/route" not in text


# /status, /docs, the page ---------------------------------------------------------------------
def test_status_reports_the_server_and_the_last_requests(server):
    base = origin(server)
    r = httpx.post(f"{server}/chat/completions", json=CHAT, timeout=120)
    status = httpx.get(f"{base}/status").json()
    assert status["state"] == "ready" and status["uptime_seconds"] > 0
    assert status["models"][0]["id"] == r.json()["model"] and status["models"][0]["load_seconds"] > 0
    last = status["recent"][0]
    assert last["id"] == r.headers["x-request-id"]
    assert (last["method"], last["route"], last["status"], last["model"]) == \
        ("POST", "/v1/chat/completions", 200, r.json()["model"])
    assert last["completion_tokens"] == r.json()["usage"]["completion_tokens"] and last["ttft_ms"] > 0
    assert all(x["route"] != "/status" for x in status["recent"])  # the page's polls are not listed


@pytest.mark.anyio
async def test_status_while_loading_names_the_model_being_loaded():
    status = (await ask(FakeEngine(state=api.LoadState.LOADING), "GET", "/status",
                        app_options={"key": "Some-Model.Q4_1"})).json()
    assert status["state"] == "loading"
    assert status["models"] == [{"id": "Some-Model.Q4_1", "state": "loading", "n_ctx": None, "load_seconds": None,
                                 "offload": "CPU"}]


def test_page_and_docs_are_served_from_the_package(server):
    base = origin(server)
    page = httpx.get(f"{base}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        assert httpx.get(base + asset).status_code == 200, asset
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    assert httpx.get(f"{base}/static/app.py").status_code in (400, 404)
    docs = httpx.get(f"{base}/docs/")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    config = httpx.get(f"{base}/docs/swagger-ui-config.json").json()
    for entry in config["urls"]:
        assert httpx.get(base + entry["url"]).json()["openapi"].startswith("3.0")


# X-Request-Id and the request log ---------------------------------------------------------------
def test_request_id_is_echoed_or_made(server):
    r = httpx.get(f"{server}/models", headers={"X-Request-Id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    made = httpx.get(f"{server}/models").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", made)
    bad = httpx.get(f"{server}/models", headers={"X-Request-Id": "no spaces\tor tabs"}).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", bad)


@pytest.mark.anyio
async def test_a_500_names_the_request_id_of_its_response(caplog):
    r = await ask(FakeEngine(fail_after=1), "POST", "/v1/chat/completions", json=CHAT)
    assert r.status_code == 500
    rid = r.headers["x-request-id"]
    assert f"request id {rid}" in r.json()["error"]["message"]
    assert any(f"request id {rid}" in rec.getMessage() for rec in caplog.records)


@pytest.mark.anyio
async def test_json_log_has_one_line_per_request():
    stream = io.StringIO()
    handlers = {name: list(logging.getLogger(name).handlers) for name in ("hearth", "hearth.web")}
    requestlog.configure("json")
    for name in handlers:
        logging.getLogger(name).handlers[0].setStream(stream)
    try:
        r = await ask(FakeEngine(), "POST", "/v1/chat/completions", json=CHAT)
        await ask(FakeEngine(), "GET", "/health")  # a probe: not logged
    finally:
        for name, old in handlers.items():
            logging.getLogger(name).handlers[:] = old
            logging.getLogger(name).propagate = True
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [x["event"] for x in lines if x["event"] != "request"] == ["model_ready"] * 2  # each app's start
    lines = [x for x in lines if x["event"] == "request"]
    assert len(lines) == 1, lines
    line = lines[0]
    assert line["event"] == "request" and line["request_id"] == r.headers["x-request-id"]
    assert (line["method"], line["route"], line["status"], line["model"]) == \
        ("POST", "/v1/chat/completions", 200, "fake-model")
    assert (line["prompt_tokens"], line["completion_tokens"]) == (3, 3)
    assert line["ttft_ms"] >= 0 and line["duration_ms"] >= line["ttft_ms"]


def test_text_log_and_banner_of_the_shared_server(server):
    r = httpx.post(f"{server}/chat/completions", json=CHAT, timeout=120)
    port = server.split(":")[-1].split("/")[0]
    log = (ROOT / f".pytest_cache/server-{port}.log").read_text()
    assert f"is listening on http://127.0.0.1:{port}" in log
    assert f"page     http://127.0.0.1:{port}/ " in log and "stop     Ctrl+C" in log
    assert "runs on  CPU" in log  # a CPU build of llama.cpp: no layer offloaded
    assert re.search(r"hearth: model \S+ ready in [0-9.]+ s", log)
    rid = r.headers["x-request-id"]
    line = next(line for line in log.splitlines() if rid in line)
    assert re.search(rf"{rid} POST /v1/chat/completions 200 model=\S+ tokens=\d+\+\d+ ttft=\d+ms \d+ms$", line)


def test_no_banner_when_the_port_is_taken():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "hearth", "serve", "--port", str(port)], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "is listening" not in out.stderr + out.stdout
