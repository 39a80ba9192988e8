"""The model registry: which models are loaded, and which one serves a request.

It stands in front of the per-model engines (black boxes with `start/close/state/model/submit/embed/stats`)
and owns their lifecycle. Everything here runs on the event loop; engines load and run on their threads.

Routing a request's `model` (`use`):
- a loaded instance id, or a catalog key -> that model, loaded just in time if it is not loaded;
- any other string -> the model of the request's kind loaded most recently (`strict`: 404 instead);
  embeddings go to an embedding model whatever the string, unless it names one;
- chat or completions on an embedding model -> 400; nothing loaded and nothing to load -> 404.

Guarantees:
- One load per model however many requests arrive at once: the instance is registered (LOADING) before
  anything awaits, and every later request finds it; while it loads they get 503 `model_loading` with
  the time the load is expected to take still (Retry-After, and retry-after-ms for the openai SDK).
- An instance is unloaded (TTL, eviction, explicit) only when idle: no request running, queued, or
  being admitted (a lease). It leaves routing and /v1/models at once, and is freed when its last user is
  done: running streams finish, new requests go elsewhere, nothing touches a freed model.
- `max_loaded`: a load first evicts the least recently used idle model; when every loaded model is busy
  the load is refused (503 server_overloaded) rather than cutting anyone's work.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import enum
import itertools
import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from hearth.engine.api import (
    Engine, EngineConfig, LoadState, ModelInfo, ModelLoadFailed, ModelLoading, ModelNotLoaded, Overloaded,
    WrongModelType,
)
from hearth.engine.catalog import Catalog, CatalogEntry, read_gguf_metadata

log = logging.getLogger("hearth.registry")

LLM, EMBEDDING = "llm", "embedding"
TICK = 0.25  # seconds between idle/TTL checks
FAILED_LOAD_MEMORY = 10.0  # seconds a failed load is remembered (and not retried by every request)


def _trim_heap() -> None:
    """Give freed heap memory back to the OS. A freed model's buffers otherwise stay in glibc's heap (its
    mmap threshold grows with every large free): measured here, RSS after a load/unload cycle crept up by
    10-25 MB without this, and comes back to within 2 MB with it."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass  # not glibc


def _close(engine: Engine) -> None:
    engine.close()
    _trim_heap()


class State(enum.Enum):
    LOADING = "loading"
    READY = "ready"
    UNLOADING = "unloading"  # out of routing; freed once idle


@dataclass(frozen=True)
class LoadDefaults:
    """What every load uses unless the load names its own (context_length, ttl)."""

    n_ctx: int = 4096
    n_threads: int | None = None
    n_parallel: int | None = None
    max_queue: int = 64
    verbose: bool = False


@dataclass(eq=False)
class Instance:
    id: str
    entry: CatalogEntry
    engine: Engine
    context_length: int
    ttl: float | None  # idle seconds before it is unloaded; None: never
    state: State = State.LOADING
    leases: int = 0  # requests between routing and admission into the engine
    load_started: float = field(default_factory=time.monotonic)
    load_seconds: float | None = None
    expected_load_seconds: float = 1.0
    last_active: float = field(default_factory=time.monotonic)  # when it last had work (TTL and LRU)
    loaded: asyncio.Event = field(default_factory=asyncio.Event)  # set when the load ended, either way
    error: str | None = None
    adopted: bool = False  # made outside the registry (`Registry.single`): its state is the engine's
    started: bool = False  # its load has begun (a startup load may wait for the one before it)

    @property
    def type(self) -> str:
        return self.entry.type

    @property
    def info(self) -> ModelInfo:
        return self.engine.model or ModelInfo(id=self.id, n_ctx=self.context_length, created=0)

    def busy(self) -> bool:
        return self.leases > 0 or bool(self.engine.stats().get("outstanding", 0))

    def retry_after(self) -> float:
        """Honest seconds until it should be loaded: what the last loads took, less the time spent; a load
        already slower than expected is expected to take half as long again."""
        elapsed = time.monotonic() - self.load_started
        return max(0.25, 1.2 * (self.expected_load_seconds - elapsed) + 0.1, 0.5 * elapsed)


class Lease:
    """A routed request's hold on its model until admitted: the model is not unloaded meanwhile.
    Use as a context manager around `submit`/`embed`; once admitted, the engine keeps the model busy."""

    def __init__(self, instance: Instance):
        self._instance, self._held = instance, True
        instance.leases += 1
        instance.last_active = time.monotonic()

    id = property(lambda self: self._instance.id)
    type = property(lambda self: self._instance.type)
    info = property(lambda self: self._instance.info)

    async def submit(self, prompt, params):
        return await self._instance.engine.submit(prompt, params)

    async def embed(self, texts):
        return await self._instance.engine.embed(texts)

    def release(self) -> None:
        if self._held:
            self._held = False
            self._instance.leases -= 1
            self._instance.last_active = time.monotonic()

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


EngineFactory = Callable[[str, EngineConfig], Engine]  # (type, config) -> an engine, not yet started


def default_factory(kind: str, config: EngineConfig) -> Engine:
    from hearth.engine import create_engine

    return create_engine(config, kind)


class Registry:
    def __init__(self, catalog: Catalog, *, factory: EngineFactory = default_factory,
                 defaults: LoadDefaults = LoadDefaults(), jit_ttl: float | None = 3600.0,
                 max_loaded: int | None = None, strict: bool = False):
        self.catalog = catalog
        self.factory = factory
        self.defaults = defaults
        self.jit_ttl = jit_ttl
        self.max_loaded = max_loaded
        self.strict = strict
        self.instances: dict[str, Instance] = {}  # in load order
        self.extra: dict[str, CatalogEntry] = {}  # files named on the command line, outside the catalog
        self.counters = dict.fromkeys(("loads", "load_failures", "unloads", "evictions", "ttl_unloads"), 0)
        self._failed: dict[str, tuple[float, str]] = {}  # key -> (when, why)
        self._durations: dict[str, float] = {}  # key -> seconds its last load took
        self._tasks: set[asyncio.Task] = set()
        self._ticker: asyncio.Task | None = None
        self._wrap: Callable[[Engine], Engine] | None = None

    def observe(self, wrap: Callable[[Engine], Engine]) -> None:
        """Every engine, present and future, as `wrap` returns it (the telemetry's timing proxy)."""
        self._wrap = wrap
        for inst in self.instances.values():
            inst.engine = wrap(inst.engine)

    @classmethod
    def single(cls, engine: Engine, kind: str = LLM) -> "Registry":
        """A registry serving one engine made elsewhere (tests, an app over a given engine): no catalog,
        no JIT. It may be used without `start()`: routing follows the engine's own state."""
        registry = cls(Catalog(os.devnull))
        iid = engine.model.id if engine.model else "model"
        entry = CatalogEntry(key=iid, type=kind, path=Path(os.devnull), publisher="local", display_name=iid,
                             size_bytes=0, max_context_length=0, architecture=None, quantization=None,
                             params_string=None)
        registry.instances[iid] = Instance(id=iid, entry=entry, engine=engine, context_length=0, ttl=None,
                                           adopted=True)
        return registry

    def _refresh(self) -> None:
        for inst in list(self.instances.values()):
            if inst.adopted and inst.state is State.LOADING:
                if inst.engine.state is LoadState.READY:
                    inst.state = State.READY
                elif inst.engine.state is not LoadState.LOADING:
                    self.instances.pop(inst.id)

    # lifecycle --------------------------------------------------------------------------------
    async def start(self, startup: list[tuple[CatalogEntry, str | None]] = ()) -> None:
        """Begin loading the startup models (in the background) and watching TTLs."""
        for inst in list(self.instances.values()):
            if inst.adopted:
                self._spawn(self._load(inst, []))
        previous = None
        for entry, instance_id in startup:  # one after the other: the first (the chat model) is listed first
            previous = self._start_load(entry, instance_id=instance_id, after=previous)
        self._ticker = asyncio.create_task(self._tick())

    async def close(self) -> None:
        if self._ticker:
            self._ticker.cancel()
        for task in list(self._tasks):
            task.cancel()
        loop = asyncio.get_running_loop()
        for inst in list(self.instances.values()):
            await loop.run_in_executor(None, inst.engine.close)
        self.instances.clear()

    def startup(self, model_path: str | os.PathLike, instance_id: str | None = None) -> list[tuple[CatalogEntry, str | None]]:
        """What `hearth serve` loads at start: the model it names, and an embedding model on disk (if any)."""
        first = self.entry_for_path(model_path, instance_id)
        embedding = next((e for e in self._entries() if e.type == EMBEDDING), None)
        if first.type == EMBEDDING or embedding is None:
            return [(first, instance_id)]
        return [(first, instance_id), (embedding, None)]

    def entry_for_path(self, path: str | os.PathLike, key: str | None = None) -> CatalogEntry:
        """The catalog entry of a file (`--model PATH`); a file outside the catalog gets an entry of its own."""
        path = Path(os.path.abspath(path))
        entries = self.catalog.entries()
        for same in (lambda e: Path(os.path.abspath(e.path)) == path, lambda e: e.path.resolve() == path.resolve()):
            for entry in entries:
                if same(entry):
                    return entry
        meta = read_gguf_metadata(path)
        arch = meta.get("general.architecture")
        embedding = f"{arch}.pooling_type" in meta
        entry = CatalogEntry(
            key=key or path.name.removesuffix(".gguf"), type=EMBEDDING if embedding else LLM, path=path,
            publisher="local", display_name=path.name.removesuffix(".gguf"), size_bytes=path.stat().st_size,
            max_context_length=int(meta.get(f"{arch}.context_length") or 0), architecture=arch,
            quantization=None, params_string=meta.get("general.size_label"),
        )
        self.extra[entry.key.lower()] = entry
        return entry

    # routing ----------------------------------------------------------------------------------
    def use(self, name: str, kind: str = LLM, ttl: float | None = None) -> Lease:
        """The model serving a request for `name`, held until the request is admitted (see module doc).
        Raises ModelNotLoaded, ModelLoading, WrongModelType, Overloaded or ModelLoadFailed."""
        inst = self._route(name.strip(), kind, ttl)
        if inst.state is State.LOADING and not inst.adopted:  # an adopted engine answers for itself
            raise ModelLoading(f"The model '{inst.id}' is loading; retry shortly.", retry_after=inst.retry_after())
        return Lease(inst)

    def _route(self, name: str, kind: str, ttl: float | None) -> Instance:
        self._refresh()
        named = self._named(name)
        if named is not None:
            if named.type == kind:
                if isinstance(named, Instance):
                    return named
                return self._newest(key=named.key) or self._jit(named, ttl)
            if kind == LLM:
                raise WrongModelType(f"'{name}' is an embedding model: it serves /v1/embeddings only, "
                                     "not chat or text completions.")
            if self.strict:
                raise WrongModelType(f"'{name}' is a chat model, not an embedding model.")
            # non-strict: an embeddings request naming a chat model goes to the embedding model
        elif self.strict:
            raise ModelNotLoaded(f"The model '{name}' does not exist: name a loaded instance (GET /v1/models) "
                                 "or a model on disk (GET /api/v1/models).")
        inst = self._newest(kind=kind)
        if inst is None and kind == EMBEDDING:  # embeddings need an embedding model: load the one on disk
            entry = next((e for e in self._entries() if e.type == EMBEDDING), None)
            if entry is not None:
                return self._jit(entry, ttl)
            inst = self._newest(kind=LLM)  # no embedding model on disk: the chat model pools its own vectors
        if inst is None:
            what = "embedding model" if kind == EMBEDDING else "model"
            raise ModelNotLoaded(f"No {what} is loaded. Load one (POST /api/v1/models/load, `hearth load KEY`) "
                                 "or name a model on disk (GET /api/v1/models) in `model`.")
        return inst

    def _named(self, name: str) -> Instance | CatalogEntry | None:
        inst = self.instances.get(name)
        if inst is not None and inst.state is not State.UNLOADING:
            return inst
        return self.find(name)

    def find(self, key: str) -> CatalogEntry | None:
        return self.catalog.find(key) or self.extra.get(key.strip().lower())

    def _entries(self) -> list[CatalogEntry]:
        return self.catalog.entries() + list(self.extra.values())

    def _newest(self, *, key: str | None = None, kind: str | None = None) -> Instance | None:
        """The most recently loaded routable instance (READY before LOADING) of a key or a kind."""
        found = [i for i in self.instances.values() if i.state is not State.UNLOADING
                 and (key is None or i.entry.key == key) and (kind is None or i.type == kind)]
        ready = [i for i in found if i.state is State.READY]
        return (ready or found or [None])[-1]

    def _jit(self, entry: CatalogEntry, ttl: float | None) -> Instance:
        failed = self._failed.get(entry.key)
        if failed and time.monotonic() - failed[0] < FAILED_LOAD_MEMORY:
            raise ModelLoadFailed(f"Loading the model '{entry.key}' failed: {failed[1]}")
        return self._start_load(entry, ttl=self.jit_ttl if ttl is None else ttl)

    # loading and unloading --------------------------------------------------------------------
    def load(self, key: str, *, context_length: int | None = None, ttl: float | None = None) -> Instance:
        """Start loading a new instance of a catalog model (POST /api/v1/models/load); await `wait_loaded`."""
        entry = self.find(key)
        if entry is None:
            raise ModelNotLoaded(f"No model with key '{key}' is on disk (GET /api/v1/models lists them).")
        return self._start_load(entry, context_length=context_length, ttl=ttl)

    async def wait_loaded(self, inst: Instance) -> Instance:
        await inst.loaded.wait()
        if inst.error is not None:
            raise ModelLoadFailed(f"Loading the model '{inst.entry.key}' failed: {inst.error}")
        return inst

    def _start_load(self, entry: CatalogEntry, *, context_length: int | None = None, ttl: float | None = None,
                    instance_id: str | None = None, after: Instance | None = None) -> Instance:
        """Registers the instance (LOADING) before anything awaits: every later request finds it."""
        evict = self._make_room()
        n_ctx = context_length or self.defaults.n_ctx
        if entry.max_context_length:
            n_ctx = min(n_ctx, entry.max_context_length) if context_length is None else n_ctx
        iid = instance_id or self._new_id(entry.key)
        d = self.defaults
        config = EngineConfig(model_path=str(entry.path), model_id=iid, n_ctx=n_ctx, n_threads=d.n_threads,
                              n_parallel=d.n_parallel, max_queue=d.max_queue, verbose=d.verbose)
        engine = self.factory(entry.type, config)
        if self._wrap is not None:
            engine = self._wrap(engine)
        inst = Instance(id=iid, entry=entry, engine=engine, context_length=n_ctx, ttl=ttl,
                        expected_load_seconds=self._expected_load_seconds(entry))
        self.instances[iid] = inst
        self._spawn(self._load(inst, evict, after))
        return inst

    def _new_id(self, key: str) -> str:
        if key not in self.instances:
            return key
        return next(f"{key}:{n}" for n in itertools.count(2) if f"{key}:{n}" not in self.instances)

    def _expected_load_seconds(self, entry: CatalogEntry) -> float:
        if entry.key in self._durations:
            return self._durations[entry.key]
        if self._durations:  # most of a load is allocating the context, alike for every model
            return max(self._durations.values())
        return 2.0 + entry.size_bytes / 200e6

    def _make_room(self) -> list[Instance]:
        """The idle instances to evict (least recently active first) so that one more fits `max_loaded`."""
        if self.max_loaded is None:
            return []
        live = [i for i in self.instances.values() if i.state is not State.UNLOADING]
        excess = len(live) + 1 - self.max_loaded
        if excess <= 0:
            return []
        idle = sorted((i for i in live if i.state is State.READY and not i.busy()), key=lambda i: i.last_active)
        if len(idle) < excess:
            raise Overloaded(f"{len(live)} models are loaded (--max-loaded {self.max_loaded}) and busy; "
                             "retry when one is idle, or unload one.", retry_after=2)
        for inst in idle[:excess]:
            inst.state = State.UNLOADING  # out of routing now; closed by the load before it starts
            self.counters["evictions"] += 1
        return idle[:excess]

    async def _load(self, inst: Instance, evict: list[Instance], after: Instance | None = None) -> None:
        if after is not None:  # start-up order; `hearth serve` exits when the model before this one failed
            await after.loaded.wait()
            if after.error:
                self.instances.pop(inst.id, None)
                inst.error = f"not loaded: {after.entry.key} failed before it"
                inst.loaded.set()
                return
        for old in evict:
            await self._unload(old)
        inst.load_started = time.monotonic()
        inst.started = True
        try:
            inst.engine.start()
            while inst.engine.state is LoadState.LOADING:
                await asyncio.sleep(0.02)
            if inst.engine.state is not LoadState.READY:
                raise RuntimeError("llama.cpp could not load the file (see the server log)")
        except Exception as exc:  # noqa: BLE001 - reported to whoever waits on the load
            inst.error = getattr(inst.engine, "load_error", None) or str(exc) or type(exc).__name__
            self._failed[inst.entry.key] = (time.monotonic(), inst.error)
            self.counters["load_failures"] += 1
            self.instances.pop(inst.id, None)
            log.error("loading %s failed: %s", inst.entry.path, inst.error)
            await asyncio.get_running_loop().run_in_executor(None, inst.engine.close)
        else:
            inst.load_seconds = time.monotonic() - inst.load_started
            self._durations[inst.entry.key] = inst.load_seconds
            self._failed.pop(inst.entry.key, None)
            self.counters["loads"] += 1
            inst.last_active = time.monotonic()
            if inst.state is State.LOADING:
                inst.state = State.READY
            # the server log's line for it ("model ID ready in S s") is the telemetry's, which times every start()
            log.debug("loaded %s as '%s' in %.2f s", inst.entry.key, inst.id, inst.load_seconds)
        finally:
            inst.loaded.set()

    async def unload(self, instance_id: str) -> Instance:
        """Take an instance out of routing at once, and free it when its running requests have finished."""
        inst = self.instances.get(instance_id)
        if inst is None or inst.state is State.UNLOADING:
            raise ModelNotLoaded(f"No loaded instance has the id '{instance_id}' (GET /api/v1/models lists them).")
        inst.state = State.UNLOADING
        await self._unload(inst)
        return inst

    async def _unload(self, inst: Instance) -> None:
        await inst.loaded.wait()
        while inst.busy():  # running or queued requests finish first; nothing touches a freed model
            await asyncio.sleep(0.02)
        await asyncio.get_running_loop().run_in_executor(None, _close, inst.engine)
        if self.instances.get(inst.id) is inst:
            del self.instances[inst.id]
            self.counters["unloads"] += 1
            log.info("model %s unloaded", inst.id, extra={"event": "model_unloaded", "fields": {"model": inst.id}})

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _tick(self) -> None:
        """Idle TTLs: an instance idle (nothing running or queued) for its TTL is unloaded."""
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            for inst in list(self.instances.values()):
                if inst.state is not State.READY:
                    continue
                if inst.busy():
                    inst.last_active = now
                elif inst.ttl is not None and now - inst.last_active >= inst.ttl:
                    inst.state = State.UNLOADING
                    self.counters["ttl_unloads"] += 1
                    self._spawn(self._unload(inst))

    # views ------------------------------------------------------------------------------------
    def loaded(self) -> list[Instance]:
        """The instances that serve requests now, in load order (GET /v1/models)."""
        self._refresh()
        return [i for i in self.instances.values() if i.state is State.READY]

    def catalog_view(self) -> list[tuple[CatalogEntry, list[Instance]]]:
        """Every model on disk with its loaded instances (GET /api/v1/models)."""
        loaded = self.loaded()
        return [(e, [i for i in loaded if i.entry.key == e.key]) for e in self._entries()]

    def is_loading(self, key: str) -> bool:
        return any(i.entry.key == key and i.state is State.LOADING and i.started for i in self.instances.values())

    def state_of(self, instance_id: str) -> str:
        inst = self.instances.get(instance_id)
        return "failed" if inst is None else inst.state.value

    def as_engine(self) -> "RegistryView":
        return RegistryView(self)

    def stats(self) -> dict:
        return {**self.counters, "loaded": len(self.loaded()),
                "loading": sum(i.state is State.LOADING for i in self.instances.values())}


class RegistryView:
    """Every loaded model seen as one engine (what the telemetry reads): the model requests go to by
    default, a state over all of them, and their counters summed."""

    def __init__(self, registry: Registry):
        self._registry = registry

    def _default(self) -> Instance | None:
        return self._registry._newest(kind=LLM) or self._registry._newest()

    @property
    def model(self) -> ModelInfo | None:
        inst = self._default()
        return inst.engine.model if inst is not None and inst.state is State.READY else None

    @property
    def config(self) -> EngineConfig | None:
        inst = self._default()
        return getattr(inst.engine, "config", None) if inst is not None else None

    @property
    def state(self) -> LoadState:
        self._registry._refresh()
        states = {i.state for i in self._registry.instances.values()}
        if State.READY in states:
            return LoadState.READY
        return LoadState.LOADING if State.LOADING in states else LoadState.EMPTY

    @property
    def load_error(self) -> str | None:
        """Why the latest failed load failed (hearth serve exits 1 when its start-up model fails)."""
        failed = self._registry._failed
        return max(failed.values())[1] if failed else None

    def stats(self) -> dict:
        total: dict = {}
        for inst in list(self._registry.instances.values()):
            for key, value in (inst.engine.stats() or {}).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    total[key] = total.get(key, 0) + value
        return total
