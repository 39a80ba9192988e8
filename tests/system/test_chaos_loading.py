"""Chaos during a model load: clients vanish while the model they named loads just in time, a load's
own client leaves, a load is unloaded or the server shut down half-way, a model on disk is corrupt.
Afterwards nothing is orphaned
(no load left running, every engine made for the model either serving or closed with its thread gone),
the model loaded once or not at all, every counter is back to 0, and the server keeps serving.

The server runs in this process over a models dir holding SmolLM2 under three keys (links to one file),
so that the registry's and the engines' counters are read directly. A load is held half-way on demand:
`Model` (hearth/engine/model.py) is replaced by one that, for a held file, waits after llama.cpp has
read the weights until the test releases it; everything else is the real engine over the real model.
"""
from __future__ import annotations

import asyncio
import json
import random
import threading
import time

import httpx
import pytest
import uvicorn

from support import free_port
from support import write_gguf
from hearth.app import create_app
from hearth.engine import LoadState
from hearth.engine import model as model_module
from hearth.models.catalog import Catalog
from hearth.models.lifecycle import LoadDefaults, State, default_factory
from hearth.models.registry import Registry
from hearth.models.defaults import default_model_path
from support import raw_request

SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf"
CHAT = {"messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 24}


def until(condition, what: str, timeout: float = 120) -> None:
    """Wait for a state (a hang guard, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


class HeldLoads:
    """Loads of a held file stop once llama.cpp has read its weights, until `release`."""

    def __init__(self):
        self.gates: dict[str, threading.Event] = {}
        self.entered: dict[str, threading.Event] = {}

    def hold(self, name: str) -> None:
        self.gates[name], self.entered[name] = threading.Event(), threading.Event()

    def release(self, name: str) -> None:
        self.gates.pop(name).set()

    def model_class(self):
        held = self

        class HeldModel(model_module.Model):
            def __init__(self, path: str, *args, **kwargs):
                super().__init__(path, *args, **kwargs)
                for name, gate in list(held.gates.items()):
                    if name in path:
                        held.entered[name].set()
                        gate.wait(300)

        return HeldModel


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    for rel in (SMOL, "test/Second-GGUF/second-Q4_1.gguf", "test/Third-GGUF/third-Q4_1.gguf"):
        (root / rel).parent.mkdir(parents=True)
        (root / rel).symlink_to(default_model_path())
    # corrupt models beside them: the first 2 MB of the real one (header whole, tensors missing), the same
    # with a string length overwritten, and a well-formed GGUF of an architecture llama.cpp does not know
    with open(default_model_path(), "rb") as f:
        head = bytearray(f.read(2 << 20))
    for folder in ("Truncated", "Corrupt", "Odd"):
        (root / f"test/{folder}-GGUF").mkdir(parents=True)
    (root / "test/Truncated-GGUF/truncated-Q4_1.gguf").write_bytes(bytes(head))
    head[24:32] = b"\xee" * 8
    (root / "test/Corrupt-GGUF/corrupt-Q4_1.gguf").write_bytes(bytes(head))
    write_gguf(root / "test/Odd-GGUF/odd-Q4_1.gguf", {"general.architecture": "hearth-nonsense"}, [("w", [4, 4])])
    return root


@pytest.fixture(scope="module")
def held():
    loads = HeldLoads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(model_module, "Model", loads.model_class())
        yield loads


def recording_registry(models_dir, engines: list) -> Registry:
    def factory(kind, config):
        engine = default_factory(kind, config)
        engines.append(engine)
        return engine

    return Registry(Catalog(models_dir), factory=factory, jit_ttl=None,
                    defaults=LoadDefaults(n_ctx=512, n_threads=1, n_parallel=2, max_queue=8))


@pytest.fixture(scope="module")
def live(models_dir, held):
    engines: list = []
    registry = recording_registry(models_dir, engines)
    port = free_port()
    app = create_app(registry, startup=registry.startup(models_dir / SMOL))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    until(lambda: server.started and registry.state_of("smollm2-135m-instruct") == "ready", "the server is ready")
    yield port, registry, engines
    server.should_exit = True
    thread.join(30)


def engines_of(engines: list, name: str) -> list:
    return [e for e in engines if name in e.config.model_path]


def freed(engine) -> bool:
    """Its loading thread has ended and it holds no model (llama.cpp's model and contexts were freed)."""
    return not engine._loader.is_alive() and engine._llama is None


def read_answer(sock) -> tuple[int, dict, dict]:
    """A whole plain HTTP answer: (status, headers, JSON body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection without an answer"
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers, json.loads(body)


def read_partly(sock, events: int) -> None:
    """Read an answer's head, then, if it is a stream, until `events` SSE events have arrived."""
    buf = b""
    while b"\r\n\r\n" not in buf or (buf.startswith(b"HTTP/1.1 200") and buf.count(b"data: ") < events):
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection early"
        buf += chunk


def assert_all_idle(port: int, registry: Registry) -> None:
    """Nothing running, waiting or held anywhere, every routable engine serving; then a request is answered."""
    def idle() -> bool:
        stats = [i.engine.stats() for i in registry.instances.values()]
        return all(s.get("outstanding", 0) == s.get("running", 0) == s.get("waiting", 0)
                   == s.get("kv_tokens_running", 0) == 0 for s in stats)

    until(idle, "every engine idle")
    assert [i.id for i in registry.instances.values() if i.holds] == []
    assert registry.stats()["loading"] == 0
    r = httpx.post(f"http://127.0.0.1:{port}/v1/completions", json={"model": "m", "prompt": "Hi", "max_tokens": 2},
                   timeout=120)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 2


def test_clients_vanish_while_their_model_loads_just_in_time(live, held):
    port, registry, engines = live
    rng = random.Random(11)
    loads = registry.counters["loads"]
    held.hold("Second-GGUF")
    body = {"model": "second", **CHAT}
    # wave 1, during the load: half leave before reading, half read their answer (a 503) and leave
    answers = []
    for i in range(8):
        sock = raw_request(port, "/chat/completions", {**body, "stream": i % 4 < 2})
        if i % 2:
            answers.append(read_answer(sock))
        sock.close()
    until(held.entered["Second-GGUF"].is_set, "the load is half-way")
    assert {(status, b["error"]["code"]) for status, _, b in answers} == {(503, "model_loading")}
    assert all(float(h["retry-after"]) > 0 for _, h, _ in answers)
    assert [i.id for i in registry.instances.values() if i.entry.key == "second"] == ["second"]
    assert registry.instances["second"].state is State.LOADING
    # wave 2: clients sent as the load completes (503, or admitted once loaded), gone at random points
    socks = [raw_request(port, "/chat/completions", {**body, "stream": True}) for _ in range(4)]
    held.release("Second-GGUF")
    until(lambda: registry.counters["loads"] == loads + 1, "the load completes")
    socks += [raw_request(port, "/chat/completions", {**body, "stream": True}) for _ in range(4)]
    for sock in socks:
        if rng.random() < 0.5:
            read_partly(sock, rng.randint(1, 3))
        sock.close()
    assert_all_idle(port, registry)
    assert registry.counters["loads"] == loads + 1  # loaded once for 16 clients
    assert len(engines_of(engines, "Second-GGUF")) == 1
    assert registry.state_of("second") == "ready"
    r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={**body, "max_tokens": 2}, timeout=120)
    assert r.status_code == 200 and r.json()["model"] == "second"
    assert httpx.post(f"http://127.0.0.1:{port}/api/v1/models/unload", json={"instance_id": "second"},
                      timeout=120).status_code == 200


def test_a_load_left_by_its_client_and_unloaded_half_way(live, held):
    """The client of POST /api/v1/models/load leaves mid-load, then the instance is unloaded before the
    load ends: it leaves routing at once, the load ends, and its engine is closed, its thread gone."""
    port, registry, engines = live
    loads, unloads = registry.counters["loads"], registry.counters["unloads"]
    held.hold("Third-GGUF")
    sock = raw_request(port, "/models/load", {"model": "third"}, prefix="/api/v1")
    until(held.entered["Third-GGUF"].is_set, "the load is half-way")
    sock.close()
    unloaded = {}
    unloader = threading.Thread(target=lambda: unloaded.update(r=httpx.post(
        f"http://127.0.0.1:{port}/api/v1/models/unload", json={"instance_id": "third"}, timeout=120)))
    unloader.start()
    until(lambda: registry.instances["third"].state is State.UNLOADING, "the unload takes it out of routing")
    models = httpx.get(f"http://127.0.0.1:{port}/v1/models").json()["data"]
    assert "third" not in [m["id"] for m in models]
    held.release("Third-GGUF")
    unloader.join(120)
    assert unloaded["r"].status_code == 200 and unloaded["r"].json() == {"instance_id": "third"}
    [engine] = engines_of(engines, "Third-GGUF")
    assert engine.state is LoadState.EMPTY and freed(engine)
    assert "third" not in registry.instances
    assert (registry.counters["loads"], registry.counters["unloads"]) == (loads + 1, unloads + 1)
    assert_all_idle(port, registry)


def test_a_corrupt_model_on_disk_is_a_clear_error_and_the_others_keep_serving(live):
    """A header that cannot be read keeps its file out of the list (the scan survives it); a file cut
    short, or one llama.cpp cannot load, fails its load with the reason, once (not reloaded by every
    request), its engine closed; the other models serve on."""
    port, registry, engines = live
    origin = f"http://127.0.0.1:{port}"
    keys = [m["key"] for m in httpx.get(f"{origin}/api/v1/models").json()["models"]]
    assert {"truncated", "odd"} <= set(keys) and "corrupt" not in keys
    failures = registry.counters["load_failures"]
    for key, why in (("truncated", "is truncated: its header describes"), ("odd", "llama.cpp could not load")):
        r = httpx.post(f"{origin}/api/v1/models/load", json={"model": key}, timeout=120)
        assert r.status_code == 500, r.text
        error = r.json()["error"]
        assert error["code"] == "model_load_failed" and why in error["message"]
        r = httpx.post(f"{origin}/v1/chat/completions", json={"model": key, **CHAT}, timeout=120)
        assert r.status_code == 500 and why in r.json()["error"]["message"]
    assert registry.counters["load_failures"] == failures + 2
    for name in ("Truncated-GGUF", "Odd-GGUF"):
        [engine] = engines_of(engines, name)
        assert engine.state is not LoadState.READY and freed(engine)
    assert_all_idle(port, registry)


def test_shutdown_during_a_load_leaves_no_engine_behind(models_dir, held):
    """Ctrl-C while a model loads: the registry closes the half-loaded engine; once its load ends the
    engine frees the model and stays closed (never reported ready)."""
    engines: list = []
    registry = recording_registry(models_dir, engines)
    held.hold("Third-GGUF")

    async def load_then_close():
        registry.load("third")
        while not held.entered["Third-GGUF"].is_set():
            await asyncio.sleep(0.01)
        [engine] = engines
        releaser = threading.Thread(target=lambda: (until(lambda: engine._closing, "close() is called"),
                                                    held.release("Third-GGUF")))
        releaser.start()
        await registry.close()
        releaser.join(120)

    asyncio.run(load_then_close())
    [engine] = engines
    assert freed(engine)
    assert engine.state is LoadState.EMPTY
    assert registry.instances == {} and registry.counters["loads"] == 0
