"""The registry's rules, over engines whose load and work the test controls (a real model cannot be held
mid-load or busy on demand; tests/models/test_switching.py runs the same rules over the real model)."""
from __future__ import annotations

import asyncio

import pytest

from hearth.engine import api
from hearth.models import lifecycle
from hearth.models.catalog import Catalog
from hearth.models.registry import Registry
from support import write_gguf

pytestmark = pytest.mark.anyio


class HeldEngine:
    """Loads when `finish_load()` is called; `outstanding` stands for requests running or queued."""

    def __init__(self, config: api.EngineConfig, made: list):
        self.config, self.state, self.model, self.outstanding, self.closed = config, api.LoadState.EMPTY, None, 0, False
        made.append(self)

    def start(self):
        self.state = api.LoadState.LOADING

    def finish_load(self):
        self.model = api.ModelInfo(id=self.config.model_id, n_ctx=self.config.n_ctx, created=0)
        self.state = api.LoadState.READY

    def close(self):
        assert self.outstanding == 0, "closed while requests were running"
        self.closed, self.state = True, api.LoadState.EMPTY

    def stats(self):
        self.asked = getattr(self, "asked", 0) + 1  # the registry asks whether it is busy
        return {"outstanding": self.outstanding}

    async def submit(self, prompt, params):
        self.outstanding += 1
        return self


@pytest.fixture
def models_dir(tmp_path):
    for name in ("alpha", "beta", "gamma"):
        write_gguf(tmp_path / f"test/{name}-GGUF/{name}-Q4_0.gguf",
                          {"general.architecture": "llama", "llama.context_length": 2048})
    write_gguf(tmp_path / "test/minilm-GGUF/minilm-F16.gguf",
                      {"general.architecture": "bert", "bert.context_length": 512, "bert.pooling_type": 1})
    return tmp_path


@pytest.fixture
def made():
    return []


@pytest.fixture
def make_registry(models_dir, made, monkeypatch):
    monkeypatch.setattr(lifecycle, "TICK", 0.02)

    async def make(**kw) -> Registry:
        reg = Registry(Catalog(models_dir), factory=lambda kind, config: HeldEngine(config, made), **kw)
        await reg.start()
        return reg

    return make


async def started(made: list) -> HeldEngine:
    """The engine made last, once its load has begun (after any eviction it waits for)."""
    for _ in range(200):
        if made and made[-1].state is api.LoadState.LOADING:
            return made[-1]
        await asyncio.sleep(0.01)
    raise AssertionError("the load never started")


async def until(condition, what: str, timeout: float = 10) -> None:
    """Wait for a state (a hang guard, not a timing assertion)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.005)


async def ticks(reg: Registry, n: int) -> None:
    """Until the registry has run n more idle/TTL checks."""
    start = reg.ticks
    await until(lambda: reg.ticks >= start + n, f"{n} ticks")


async def loaded(reg: Registry, key: str, made: list, **kw) -> lifecycle.Instance:
    inst = reg.load(key, **kw)
    (await started(made)).finish_load()
    return await asyncio.wait_for(reg.wait_loaded(inst), 2)


async def test_concurrent_first_requests_load_once_and_wait_honestly(make_registry, made):
    reg = await make_registry()
    errors = []
    for _ in range(8):
        with pytest.raises(api.ModelLoading) as exc:
            reg.use("alpha")
        errors.append(exc.value)
    await started(made)
    assert len(made) == 1 and made[0].state is api.LoadState.LOADING  # one load for eight requests
    assert all(0 < e.retry_after < 10 for e in errors)
    made[0].finish_load()
    await until(lambda: reg.state_of("alpha") == "ready", "the load completes")
    with reg.use("alpha") as model:
        assert model.id == "alpha" and model.type == "llm"
    assert reg.counters["loads"] == 1 and len(made) == 1


async def test_routing_rules(make_registry, made):
    reg = await make_registry()
    with pytest.raises(api.ModelNotLoaded):
        reg.use("anything")  # nothing loaded, and an unknown name loads nothing
    await loaded(reg, "alpha", made)
    await loaded(reg, "beta", made)
    with reg.use("anything") as model:
        assert model.id == "beta"  # the chat model loaded most recently
    with reg.use("alpha") as model:
        assert model.id == "alpha"
    with pytest.raises(api.WrongModelType):
        reg.use("text-embedding-minilm")  # chat on an embedding model
    with pytest.raises(api.ModelLoading):
        reg.use("anything", "embedding")  # none loaded: the embedding model on disk loads just in time
    (await started(made)).finish_load()
    await until(lambda: reg.state_of("text-embedding-minilm") == "ready", "the embedding model loads")
    for name in ("anything", "alpha", "text-embedding-minilm"):
        with reg.use(name, "embedding") as model:
            assert model.id == "text-embedding-minilm"
    second = await loaded(reg, "alpha", made)
    assert second.id == "alpha:2"  # a second instance of a key, as LM Studio names it


async def test_strict_models_404s_unknown_names(make_registry, made):
    reg = await make_registry(strict=True)
    await loaded(reg, "alpha", made)
    with pytest.raises(api.ModelNotLoaded):
        reg.use("gpt-4o")
    with reg.use("alpha") as model:
        assert model.id == "alpha"


async def test_idle_ttl_unloads_and_work_keeps_a_model(make_registry, made):
    reg = await make_registry()
    busy = await loaded(reg, "alpha", made, ttl=0.1)
    busy.engine.outstanding = 1  # a request running (or queued) keeps it loaded past its TTL
    idle = await loaded(reg, "beta", made, ttl=0.1)
    await until(lambda: idle.engine.closed, "the idle model's TTL unloads it")
    await ticks(reg, 10)  # 0.2 s of checks: twice its TTL
    assert [i.id for i in reg.loaded()] == ["alpha"] and not busy.engine.closed
    busy.engine.outstanding = 0
    await until(lambda: busy.engine.closed, "once idle, its TTL unloads it")
    assert reg.loaded() == []
    assert reg.counters["ttl_unloads"] == 2


async def test_jit_ttl_from_the_request_then_the_default(make_registry, made):
    reg = await make_registry(jit_ttl=0.1)
    for name, ttl in (("alpha", None), ("beta", 60)):
        with pytest.raises(api.ModelLoading):
            reg.use(name, ttl=ttl)
        (await started(made)).finish_load()
    await until(lambda: made[0].closed, "alpha's TTL, the server's jit_ttl, unloads it")
    await ticks(reg, 10)  # twice that TTL
    assert [i.id for i in reg.loaded()] == ["beta"]  # the request's own TTL, 60 s, keeps beta


async def test_eviction_takes_the_least_recently_used_idle_model_only(make_registry, made):
    reg = await make_registry(max_loaded=2)
    alpha = await loaded(reg, "alpha", made)
    beta = await loaded(reg, "beta", made)
    with reg.use("alpha"):
        pass  # alpha is now the more recently used
    await loaded(reg, "gamma", made)
    assert beta.engine.closed and not alpha.engine.closed
    assert [i.id for i in reg.loaded()] == ["alpha", "gamma"] and reg.counters["evictions"] == 1
    for inst in reg.loaded():
        inst.engine.outstanding = 1  # both have requests queued: neither may be evicted
    with pytest.raises(api.Overloaded):
        reg.load("beta")
    assert len(made) == 3


def test_a_file_outside_the_catalog_is_an_embedding_model_by_its_architecture_too(tmp_path):
    """A BERT GGUF without a pooling type, passed with --model from outside the catalog, is served by the
    embedding engine (it went to the chat engine when only `pooling_type` was read)."""
    path = write_gguf(tmp_path / "elsewhere/bert-F16.gguf", {"general.architecture": "bert", "bert.context_length": 512})
    reg = Registry(Catalog(tmp_path / "empty"))
    assert reg.entry_for_path(path).type == "embedding"
    assert reg.startup(path)[0][0].type == "embedding"


async def test_unload_waits_for_running_requests(make_registry, made):
    reg = await make_registry()
    await loaded(reg, "alpha", made)
    await loaded(reg, "beta", made)
    with reg.use("alpha") as request:
        await request.submit([None], [None])  # admitted: the engine holds it from now on
    unload = asyncio.ensure_future(reg.unload("alpha"))
    asked = getattr(made[0], "asked", 0)
    await until(lambda: made[0].asked >= asked + 5, "the unload asks, again and again, whether it is busy")
    assert not unload.done() and not made[0].closed  # its request still runs
    assert [i.id for i in reg.loaded()] == ["beta"]  # but it is out of routing and /v1/models at once
    with reg.use("anything") as model:
        assert model.id == "beta"  # so a new request goes elsewhere
    made[0].outstanding = 0
    await asyncio.wait_for(unload, 2)
    assert made[0].closed
    with pytest.raises(api.ModelNotLoaded):
        await reg.unload("alpha")


async def test_a_failed_load_is_reported_not_retried_by_every_request(make_registry, made):
    reg = await make_registry()
    with pytest.raises(api.ModelLoading):
        reg.use("alpha")
    (await started(made)).state = api.LoadState.FAILED
    await until(lambda: reg.counters["load_failures"] == 1, "the load fails")
    with pytest.raises(api.ModelLoadFailed):
        reg.use("alpha")
    assert len(made) == 1 and reg.loaded() == []
