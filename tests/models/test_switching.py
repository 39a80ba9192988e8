"""Switching models without a restart, over the real model: a server over a models dir holding SmolLM2
under three keys (links to the one file: each load is a model of its own to llama.cpp)."""
from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import openai
import pytest

from support import ROOT, RunningServer, wait_until
from hearth.models.defaults import default_model_path
from support import write_gguf

CHAT = {"messages": [{"role": "user", "content": "Tell me a story."}], "temperature": 0}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("models")
    smol = default_model_path()
    for rel in ("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf",
                "test/Second-GGUF/second-Q4_1.gguf", "test/Third-GGUF/third-Q4_1.gguf"):
        (root / rel).parent.mkdir(parents=True)
        (root / rel).symlink_to(smol)
    # an embedding model's header: enough to route by (chat on it is refused before any load)
    write_gguf(root / "test/MiniLM-GGUF/minilm-F16.gguf",
                      {"general.architecture": "bert", "bert.context_length": 512, "bert.pooling_type": 1})
    return root


@pytest.fixture(scope="module")
def srv(models_dir):
    running = RunningServer("--models-dir", str(models_dir), "--ctx-size", "512", "--parallel", "4", "--ttl", "0",
                            "--model", str(models_dir / "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf"))
    running.origin = running.url.removesuffix("/v1")
    running.log_path = ROOT / f".pytest_cache/server-{running.port}.log"
    yield running
    running.stop()


def loaded_ids(srv) -> list[str]:
    return [m["id"] for m in httpx.get(f"{srv.url}/models").json()["data"]]


def instances(srv, key: str) -> list[str]:
    models = httpx.get(f"{srv.origin}/api/v1/models").json()["models"]
    return [i["id"] for m in models if m["key"] == key for i in m["loaded_instances"]]


def load(srv, key: str, **extra) -> dict:
    r = httpx.post(f"{srv.origin}/api/v1/models/load", json={"model": key, **extra}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def unload(srv, instance_id: str) -> httpx.Response:
    return httpx.post(f"{srv.origin}/api/v1/models/unload", json={"instance_id": instance_id}, timeout=120)


def rss_kb(srv) -> int:
    status = Path(f"/proc/{srv.proc.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


def test_jit_race_eight_first_requests_load_once(srv):
    """Eight clients name an unloaded model at once: one load; each client (the openai SDK with its
    default retries, honouring Retry-After) gets its answer with no code of its own."""
    assert instances(srv, "second") == []

    async def ask():
        async with openai.AsyncOpenAI(base_url=srv.url, api_key="x") as client:
            return await client.chat.completions.create(model="second", max_tokens=4, **CHAT)

    async def all_at_once():
        return await asyncio.gather(*(ask() for _ in range(8)))

    answers = asyncio.run(all_at_once())
    assert [a.model for a in answers] == ["second"] * 8
    assert instances(srv, "second") == ["second"]  # one instance, not "second:2"...
    assert srv.log_path.read_text().count("hearth: model second ready in") == 1  # one load, as the server logs it
    assert unload(srv, "second").status_code == 200


def test_switch_under_load(srv):
    """Streams run on one model while another loads; once loaded, it serves unnamed requests and the
    running streams finish whole."""
    first = loaded_ids(srv)[-1]
    results, started = [], threading.Barrier(5)

    def stream():
        with openai.OpenAI(base_url=srv.url, api_key="x") as client:
            chunks = client.chat.completions.create(model="local", max_tokens=64, stream=True,
                                                    stream_options={"include_usage": True}, **CHAT)
            started.wait()
            seen = list(chunks)
        results.append((seen[0].model, seen[-2].choices[0].finish_reason, seen[-1].usage.completion_tokens))

    threads = [threading.Thread(target=stream) for _ in range(4)]
    for t in threads:
        t.start()
    started.wait()
    assert load(srv, "third")["instance_id"] == "third"
    assert loaded_ids(srv)[-1] == "third"  # listed the moment its load completed
    with openai.OpenAI(base_url=srv.url, api_key="x") as client:
        assert client.chat.completions.create(model="local", max_tokens=2, **CHAT).model == "third"
    for t in threads:
        t.join(120)
    assert results == [(first, "length", 64)] * 4
    assert unload(srv, "third").status_code == 200
    assert "third" not in loaded_ids(srv)


def test_unload_during_a_stream_lets_it_finish(srv):
    load(srv, "second")
    body = {"model": "second", "max_tokens": 200, "stream": True, "stream_options": {"include_usage": True}, **CHAT}
    unloaded = {}
    with httpx.stream("POST", f"{srv.url}/chat/completions", json=body, timeout=120) as r:
        lines = r.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        assert json.loads(first[6:])["model"] == "second"

        worker = threading.Thread(target=lambda: unloaded.update(response=unload(srv, "second")))
        worker.start()
        wait_until(lambda: "second" not in loaded_ids(srv), "the unload takes it out of routing", timeout=30)
        events = [line[6:] for line in lines if line.startswith("data: ")]
    worker.join(60)
    # the stream went on to its 200th token after the model left routing: it was not freed under the stream
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length" and chunks[-1]["usage"]["completion_tokens"] == 200
    assert unloaded["response"].status_code == 200 and "second" not in loaded_ids(srv)


def test_idle_ttl_from_the_request(srv):
    with openai.OpenAI(base_url=srv.url, api_key="x") as client:
        answer = client.chat.completions.create(model="third", max_tokens=2, extra_body={"ttl": 1}, **CHAT)
    assert answer.model == "third" and "third" in loaded_ids(srv)
    wait_until(lambda: "third" not in loaded_ids(srv), "the idle TTL to unload the model", timeout=30)


def test_memory_is_returned_after_ten_load_unload_cycles(srv):
    load(srv, "second")
    assert unload(srv, "second").status_code == 200  # warm: llama.cpp's one-time allocations
    before = rss_kb(srv)
    while_loaded = []
    for _ in range(10):
        load(srv, "second")
        while_loaded.append(rss_kb(srv))
        assert unload(srv, "second").status_code == 200
    after = rss_kb(srv)
    print(f"RSS before {before / 1024:.1f} MB, loaded {while_loaded[0] / 1024:.1f}..{while_loaded[-1] / 1024:.1f} MB, "
          f"after 10 cycles {after / 1024:.1f} MB")
    assert after - before < 8 * 1024  # back within a few MB
    assert while_loaded[-1] - while_loaded[0] < 8 * 1024  # no copy left behind by a reload


def test_management_errors(srv):
    r = httpx.post(f"{srv.origin}/api/v1/models/load", json={"model": "no-such-model"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = unload(srv, "no-such-instance")
    assert r.status_code == 404 and r.json()["error"]["param"] == "instance_id"
    r = httpx.post(f"{srv.origin}/api/v1/models/load", json={"model": "second", "context_length": 10**6})
    assert r.status_code == 422 and r.json()["error"]["param"] == "context_length"
    for bad in ("most", -1, 1.5):
        r = httpx.post(f"{srv.origin}/api/v1/models/load", json={"model": "second", "gpu_layers": bad})
        assert r.status_code in (400, 422) and r.json()["error"]["param"] == "gpu_layers", (bad, r.text)
    r = httpx.post(f"{srv.url}/chat/completions", json={"model": "text-embedding-minilm", "max_tokens": 2, **CHAT})
    assert r.status_code == 400 and "embedding model" in r.json()["error"]["message"]
    assert r.json()["error"]["param"] == "model"


def test_cli_ls_ps_load_unload(srv):
    def hearth(*args) -> str:
        out = subprocess.run([sys.executable, "-m", "hearth", *args, "--url", srv.origin], capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout

    listing = hearth("ls")
    assert re.search(r"^smollm2-135m-instruct\s+135M\s+llama\s+98\.4 MB\s+8192\s+LOADED$", listing, re.M)
    assert re.search(r"^text-embedding-minilm\s", listing, re.M)
    assert "Loaded second as 'second'" in hearth("load", "second", "--ttl", "600", "--context-length", "256",
                                                 "--gpu-layers", "max")  # no GPU in a CPU build: all on the CPU
    ps = hearth("ps")
    assert re.search(r"^second\s+second\s+llm\s+256\s.*\sCPU$", ps, re.M)
    assert {"identifier": "second", "key": "second", "type": "llm", "context_length": 256, "parallel": 4,
            "gpu_layers": 0, "offload": "CPU"} in json.loads(hearth("ps", "--json"))
    assert "Unloaded 'second'." in hearth("unload", "second")
    assert hearth("unload", "--all").startswith("Unloaded ")
    assert "No models are loaded" in hearth("ps") and loaded_ids(srv) == []
