"""What the tests share: free ports, the real server (in a subprocess or in process), registries as
`hearth serve` builds them, a fake engine, GGUF files written from scratch, real-model engine helpers."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from conformance.spec import ORACLE, load
from hearth.engine import api
from hearth.models.catalog import Catalog, CatalogEntry
from hearth.models.lifecycle import LoadDefaults
from hearth.models.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 240  # a hang guard, not a timing assert: the shared 2-core machine can be 20x oversubscribed


def wait_for(predicate, timeout: float, step: float = 0.1):
    """The predicate's first truthy value within the timeout, else its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def wait_until(condition, what: str, timeout: float = TIMEOUT, poll: float = 0.01) -> None:
    """Poll `condition` until it holds: a bounded wait on an event or counter (a hang guard), never a sleep
    that assumes how long something takes."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(poll)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningServer:
    """`python -m hearth serve` in a subprocess; `url` is its base URL (…/v1).

    `load_delay`: serve through tests/hooked_server.py, whose engine factory holds the real model's load
    back that many seconds (the 503 `model_loading` window, on demand)."""

    def __init__(self, *args: str, env: dict | None = None, wait_ready: bool = True, timeout: float = 180,
                 load_delay: float | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        key = (env or {}).get("HEARTH_API_KEY")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        (ROOT / ".pytest_cache").mkdir(exist_ok=True)  # the server's log, which some tests read
        self.log = open(ROOT / f".pytest_cache/server-{self.port}.log", "w")
        if not {"--store-path", "--no-store"} & set(args):  # stored responses: the server's own file, not ~/.cache
            args = (*args, "--store-path", str(ROOT / f".pytest_cache/responses-{self.port}.sqlite3"))
        launcher = ["-m", "hearth"] if load_delay is None else \
            [str(ROOT / "tests" / "hooked_server.py"), "--load-delay", str(load_delay)]
        self.proc = subprocess.Popen(
            [sys.executable, *launcher, "serve", "--port", str(self.port), *args],
            env={**os.environ, **(env or {})}, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        self._wait(timeout, ready=wait_ready)

    def _wait(self, timeout: float, ready: bool) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                r = httpx.get(f"{self.url}/models", timeout=2, headers=self.headers)
                if not ready or r.json()["data"]:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError("server did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class InProcessServer:
    """The real app over the real model, built as `hearth serve` builds it (a registry that loads the model
    at start), served by uvicorn from a thread on a free loopback port, so that a test can read the
    engine's counters (`engine.stats()`) beside the HTTP answers. `app_options`: create_app's keywords
    (limits, api_keys, ...); the rest is the registry's LoadDefaults (n_ctx, n_parallel, max_queue, ...)."""

    def __init__(self, app_options: dict | None = None, **load_defaults):
        import uvicorn

        from hearth.app import create_app
        from hearth.engine import LoadState
        from hearth.models.defaults import default_model_path

        registry, made = registry_for(empty_models_dir(), LoadDefaults(**load_defaults))
        startup = registry.startup(default_model_path())
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        app = create_app(registry, startup=startup, **(app_options or {}))
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="in-process-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 180
        while not made:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the registry made no engine"
            time.sleep(0.05)
        self.engine = made[0]
        while not (self.server.started and self.engine.state is LoadState.READY):
            assert self.thread.is_alive() and self.engine.state is not LoadState.FAILED, "in-process server failed"
            assert time.monotonic() < deadline, "in-process server did not become ready"
            time.sleep(0.05)

    def stats(self) -> dict:
        return self.engine.stats()

    def wait_idle(self, timeout: float = 120) -> dict:
        """The engine's counters once nothing is outstanding (a hang guard, not a timing assertion)."""
        deadline = time.monotonic() + timeout
        while (stats := self.engine.stats())["outstanding"] or stats.get("running"):
            assert time.monotonic() < deadline, f"the engine never went idle: {stats}"
            time.sleep(0.05)
        return stats

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


# registries, as `hearth serve` builds them ----------------------------------------------------------
def empty_models_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="hearth-models-"))


def registry_for(models_dir: Path, defaults: LoadDefaults = LoadDefaults(), **options) -> tuple[Registry, list]:
    """A registry over `models_dir` with the real engines, and the list of the engines it made, in order."""
    from hearth.models.lifecycle import default_factory

    made: list = []

    def factory(kind, config):
        made.append(default_factory(kind, config))
        return made[-1]

    return Registry(Catalog(models_dir), factory=factory, defaults=defaults, **options), made


def registry_over(engine, key: str = "fake-model", kind: str = "llm") -> tuple[Registry, list]:
    """A registry whose one model is `engine` (a fake one), loaded at start as `hearth serve` loads its
    model: returns (registry, the `startup` argument of create_app)."""
    entry = CatalogEntry(key=key, type=kind, path=Path(os.devnull), publisher="local", display_name=key,
                         size_bytes=0, max_context_length=0, architecture=None, quantization=None,
                         params_string=None)
    return Registry(Catalog(empty_models_dir()), factory=lambda _kind, _config: engine), [(entry, None)]


@contextlib.asynccontextmanager
async def serving(engine=None, key: str = "fake-model", **options):
    """The app over one (fake) engine, its lifespan running (what uvicorn does around serving), once the
    engine's load has ended, or begun for an engine that stays LOADING. No engine: nothing is loaded."""
    from hearth.app import create_app

    registry, startup = registry_over(engine, key) if engine is not None else (Registry(Catalog(empty_models_dir())), ())
    app = create_app(registry, startup=startup, **options)
    received: asyncio.Queue = asyncio.Queue()
    sent: asyncio.Queue = asyncio.Queue()
    await received.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                       received.get, sent.put))
    assert (await asyncio.wait_for(sent.get(), 30))["type"] == "lifespan.startup.complete"
    while engine is not None and not (engine.started and (engine.state is api.LoadState.LOADING
                                                          or registry.stats()["loading"] == 0)):
        await asyncio.sleep(0.01)
    try:
        yield app
    finally:
        await received.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(sent.get(), 30)
        await lifespan


async def ask(engine, method: str, path: str, **kwargs) -> httpx.Response:
    """One request to the app over a fake engine (`serving`); `kwargs`: httpx's, and `app_options`."""
    async with serving(engine, **kwargs.pop("app_options", {})) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, **kwargs)


# a fake engine, for the paths a real model cannot reach on demand -----------------------------------
class FakeGeneration:
    def __init__(self, pieces, fail_after=None):
        self.pieces, self.prompt_tokens, self.completion_tokens, self.finish_reason = pieces, 3, 0, None
        self.cancelled, self.fail_after, self.started = False, fail_after, True

    async def __aiter__(self):
        for piece in self.pieces:
            if self.cancelled:
                break
            await asyncio.sleep(0)
            if self.completion_tokens == self.fail_after:
                raise api.GenerationFailed("boom")
            self.completion_tokens += 1
            yield api.Delta(piece, (api.TokenOut(self.completion_tokens, piece.encode()),))
        self.finish_reason = api.FinishReason.STOP

    def cancel(self):
        self.cancelled = True


class FakeEngine:
    """Loads at once unless `state` says otherwise (LOADING: never; FAILED: the load fails)."""

    def __init__(self, state=api.LoadState.READY, overloaded=False, fail_after=None):
        self.target, self.overloaded, self.fail_after = state, overloaded, fail_after
        self.state, self.model = api.LoadState.EMPTY, None
        self.started = self.closed = False

    def start(self):
        self.started, self.state = True, self.target
        if self.state == api.LoadState.READY:
            self.model = api.ModelInfo(id="fake-model", n_ctx=256, created=0)

    def close(self):
        self.closed = True

    def _check(self):
        if self.overloaded:
            raise api.Overloaded("Too many requests are waiting.", retry_after=1)

    async def submit(self, prompt, params):
        self._check()
        return FakeGeneration(["Hel", "lo", "!"], self.fail_after)

    async def embed(self, texts):
        self._check()
        return api.Embeddings(vectors=[[1.0, 0.0] for _ in texts], prompt_tokens=len(texts))

    def stats(self):
        return {}


# GGUF files written from scratch (no llama.cpp involved) --------------------------------------------
def _string(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("<Q", len(raw)) + raw


def write_gguf(path: Path, metadata: dict, tensors: list[tuple[str, list[int]]] = (), *, sparse: bool = False) -> Path:
    """A GGUF v3 file with string, uint32 and string-array metadata and F32 tensors (zeros). Without
    tensors it is enough for the catalog, not for llama.cpp. `sparse`: the tensor data is a hole in the
    file, so a file of any size costs no disk."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata)))
    for key, value in metadata.items():
        out += _string(key)
        if isinstance(value, str):
            out += struct.pack("<I", 8) + _string(value)
        elif isinstance(value, list):  # an array of strings, e.g. a vocabulary
            out += struct.pack("<IIQ", 9, 8, len(value)) + b"".join(_string(v) for v in value)
        else:
            out += struct.pack("<II", 4, value)
    offset = 0
    for name, dims in tensors:
        out += _string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", 0, offset)  # F32
        n = 4
        for d in dims:
            n *= d
        offset += -(-n // 32) * 32
    if tensors:
        out += b"\0" * (-len(out) % 32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(out)
        if sparse:
            f.truncate(len(out) + offset)
        else:
            f.write(b"\0" * offset)
    return path


# raw HTTP -------------------------------------------------------------------------------------------
def raw_request(port: int, path: str, body: dict, send_bytes: int | None = None, prefix: str = "/v1") -> socket.socket:
    """POST over a raw socket; `send_bytes` sends only that much of the body."""
    data = json.dumps(body).encode()
    head = (f"POST {prefix}{path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    sock.sendall(head + data[:send_bytes if send_bytes is not None else len(data)])
    return sock


# the real engine, without HTTP ----------------------------------------------------------------------
def make_engine(model_path: str | None = None, **kw):
    from hearth.engine import EngineConfig, LoadState, create_engine
    from hearth.models.defaults import default_model_path

    eng = create_engine(EngineConfig(model_path=model_path or str(default_model_path()), **kw))
    eng.start()
    deadline = time.monotonic() + 120
    while eng.state is LoadState.LOADING and time.monotonic() < deadline:
        time.sleep(0.02)
    assert eng.state is LoadState.READY
    return eng


def cancel_while_decoding(eng) -> dict:
    """Cancel a long greedy stream after its third delta (twice: cancel() is idempotent); the engine's
    stats once nothing runs any more."""

    async def go():
        gen = await eng.submit(chat("Write a very long story about dragons."), greedy(200))
        got = 0
        async for _ in gen:
            got += 1
            if got == 3:
                gen.cancel()
                gen.cancel()
                break
        while eng.stats()["running"] or eng.stats()["outstanding"]:
            await asyncio.sleep(0.01)
        return eng.stats()

    return run(asyncio.wait_for(go(), TIMEOUT))


def chat(text: str, system: str | None = None) -> api.Prompt:
    msgs = ((api.ChatMessage("system", system),) if system else ()) + (api.ChatMessage("user", text),)
    return api.Prompt(messages=msgs)


def greedy(max_tokens=16, **kw) -> api.SamplingParams:
    return api.SamplingParams(temperature=0.0, max_tokens=max_tokens, **kw)


async def collect(eng, prompt: api.Prompt, params: api.SamplingParams):
    """(text, text deltas, generation) with a timeout: no request waits forever. The Deltas themselves
    are in `generation.deltas`."""
    gen = None

    async def go():
        nonlocal gen
        gen = await eng.submit(prompt, params)
        gen.deltas = [d async for d in gen]
        texts = [d.text for d in gen.deltas]
        return "".join(texts), texts, gen

    try:
        return await asyncio.wait_for(go(), TIMEOUT)
    except asyncio.TimeoutError:
        if gen is not None:
            gen.cancel()  # do not leave it running for the next test
        raise AssertionError(f"request timed out after {TIMEOUT}s; engine stats {eng.stats()}")


def run(coro):
    return asyncio.run(coro)


# --- judging bodies and events by OpenAI's published schema (the oracle) and by Hearth's own documents ---


def schema_errors(document: Path, schema: str, instance) -> list[str]:
    return load(document).schemas.errors({"$ref": f"#/components/schemas/{schema}"}, instance)


def assert_openai(schema: str, instance) -> None:
    """`instance` validates against OpenAI's schema `schema` (e.g. Response, ResponseStreamEvent)."""
    found = schema_errors(ORACLE, schema, instance)
    assert not found, f"{schema} per OpenAI's schema: {found[:3]} in {json.dumps(instance)[:400]}"


def assert_ours(document: str, schema: str, instance) -> None:
    """`instance` validates against `schema` of openapi/<document>.yaml."""
    found = schema_errors(ROOT / "openapi" / f"{document}.yaml", schema, instance)
    assert not found, f"{schema} per openapi/{document}.yaml: {found[:3]} in {json.dumps(instance)[:400]}"


def sse_events(lines) -> list[tuple[str | None, dict]]:
    """(event name, data) per SSE event, from the lines of a stream."""
    out, name = [], None
    for line in lines:
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            out.append((name, json.loads(line[len("data: "):])))
            name = None
    return out


# --- the patch language of Codex's apply_patch tool, checked by hand (independent of any grammar engine) ---
def parse_patch(text: str, complete: bool = True) -> int:
    """The number of file operations in a patch, or AssertionError. `complete=False`: `text` may be cut
    anywhere (max_output_tokens): it must be a prefix of a patch (its last, partial line is not judged)."""
    lines = text.split("\n")
    if complete and lines[-1] == "":
        lines.pop()
    if not complete:
        lines = lines[:-1]  # the line being written when it was cut
        if not lines:
            assert "*** Begin Patch".startswith(text) or text.startswith("*** Begin Patch"), text
            return 0
    assert lines[0] == "*** Begin Patch", text
    assert not complete or lines[-1] == "*** End Patch", text
    body = lines[1:-1] if complete or lines[-1] == "*** End Patch" else lines[1:]
    i, ops = 0, 0
    while i < len(body):
        line = body[i]
        if line.startswith("*** Add File: ") and len(line) > len("*** Add File: "):
            i += 1
            start = i
            while i < len(body) and body[i].startswith("+"):
                i += 1
            assert i > start or (not complete and i == len(body)), f"an added file without lines: {text!r}"
        elif line.startswith("*** Delete File: ") and len(line) > len("*** Delete File: "):
            i += 1
        elif line.startswith("*** Update File: ") and len(line) > len("*** Update File: "):
            i += 1
            if i < len(body) and body[i].startswith("*** Move to: "):
                i += 1
            while i < len(body) and (body[i] == "@@" or body[i].startswith(("@@ ", "+", "-", " "))):
                i += 1
            if i < len(body) and body[i] == "*** End of File":
                i += 1
        else:
            raise AssertionError(f"line {line!r} is no file operation: {text!r}")
        ops += 1
    assert ops >= 1 or not complete
    return ops
