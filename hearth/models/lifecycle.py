"""Loading, evicting and unloading models: every Instance's life, from a load to its last user.

One state enum, one diagram (llama.cpp's server-models.h keeps the same shape):

    load(entry) -> LOADING --engine READY--> READY --unload / TTL / eviction--> UNLOADING --idle--> (freed)
                      |                                                             ^
                      +--engine FAILED: removed, remembered FAILED_LOAD_MEMORY s    |
                      +--evicted or unloaded while loading -------------------------+

- An instance is registered (LOADING) before anything awaits, so every later request finds it: one load
  per model however many requests arrive at once.
- UNLOADING takes it out of routing at once; it is freed only when idle (no request running, queued or
  held by a Request being admitted): nothing touches a freed model.
- `max_loaded`: a load first evicts the least recently active idle instance; when every loaded model is
  busy the load is refused (503 server_overloaded) rather than cutting anyone's work.
Everything here runs on the event loop; engines load and decode on their own threads.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import enum
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from hearth.engine.api import Engine, EngineConfig, LoadState, ModelInfo, ModelLoadFailed, ModelNotLoaded, Overloaded
from hearth.models import fit
from hearth.models.catalog import CatalogEntry
from hearth.models.hooks import Hooks

log = logging.getLogger("hearth.registry")

LLM, EMBEDDING = "llm", "embedding"
TICK = 0.25  # seconds between idle/TTL checks
FAILED_LOAD_MEMORY = 10.0  # seconds a failed load is remembered (and not retried by every request)

EngineFactory = Callable[[str, EngineConfig], Engine]  # (type "llm" | "embedding", config) -> an engine, not started


def default_factory(kind: str, config: EngineConfig) -> Engine:
    from hearth.engine import create_engine

    return create_engine(config, kind)


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
    n_slots: int | None = None  # KV streams (EngineConfig.n_slots); None: the engine's default
    max_queue: int = 64
    verbose: bool = False
    gpu_layers: str | int = "auto"  # hearth/models/fit.py: auto | max | off | a count of layers


@dataclass(eq=False)
class Instance:
    id: str
    entry: CatalogEntry
    engine: Engine
    context_length: int
    ttl: float | None  # idle seconds before it is unloaded; None: never
    state: State = State.LOADING
    holds: int = 0  # Requests routed here and not yet admitted into the engine
    load_started: float = field(default_factory=time.monotonic)
    load_seconds: float | None = None
    expected_load_seconds: float = 1.0
    last_active: float = field(default_factory=time.monotonic)  # when it last had work (TTL and LRU)
    loaded: asyncio.Event = field(default_factory=asyncio.Event)  # set when the load ended, either way
    error: str | None = None
    started: bool = False  # its load has begun (a startup load may wait for the one before it)
    placement: fit.Placement = fit.CPU_ONLY  # where its layers went (GPU memory or host RAM)

    @property
    def type(self) -> str:
        return self.entry.type

    @property
    def info(self) -> ModelInfo:
        return self.engine.model or ModelInfo(id=self.id, n_ctx=self.context_length, created=0)

    def busy(self) -> bool:
        return self.holds > 0 or bool(self.engine.stats().get("outstanding", 0))

    def retry_after(self) -> float:
        """Honest seconds until it should be loaded: what the last loads took, less the time spent; a load
        already slower than expected is expected to take half as long again."""
        elapsed = time.monotonic() - self.load_started
        return max(0.25, 1.2 * (self.expected_load_seconds - elapsed) + 0.1, 0.5 * elapsed)


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


class Lifecycle:
    """The loaded instances and their loads, unloads, evictions and TTLs (the Registry routes over them)."""

    def __init__(self, *, factory: EngineFactory = default_factory, defaults: LoadDefaults = LoadDefaults(),
                 max_loaded: int | None = None, hooks: Hooks | None = None, place=fit.place_file):
        self.factory = factory
        self.place = place  # (path, type, n_ctx, n_parallel, gpu_layers) -> fit.Placement, or ModelDoesNotFit
        self.defaults = defaults
        self.max_loaded = max_loaded
        self.hooks = hooks or Hooks()  # create_app sets the app's telemetry here
        self.instances: dict[str, Instance] = {}  # in load order
        self.counters = dict.fromkeys(("loads", "load_failures", "unloads", "evictions", "ttl_unloads"), 0)
        self.failed: dict[str, tuple[float, str]] = {}  # key -> (when, why)
        self._durations: dict[str, float] = {}  # key -> seconds its last load took
        self._tasks: set[asyncio.Task] = set()
        self._ticker: asyncio.Task | None = None
        self.ticks = 0  # idle/TTL checks done (tests wait on it instead of sleeping)

    async def start(self, startup: list[tuple[CatalogEntry, str | None]] = ()) -> None:
        """Begin loading the startup models (in the background, one after the other) and watching TTLs."""
        previous = None
        for entry, instance_id in startup:  # the first (the chat model) is listed first
            previous = self.start_load(entry, instance_id=instance_id, after=previous)
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

    # loading -----------------------------------------------------------------------------------
    def start_load(self, entry: CatalogEntry, *, context_length: int | None = None, ttl: float | None = None,
                   instance_id: str | None = None, after: Instance | None = None,
                   gpu_layers: str | int | None = None) -> Instance:
        """Registers the instance (LOADING) before anything awaits: every later request finds it. Raises
        ModelDoesNotFit when it would not fit in host RAM or GPU memory, Overloaded when nothing can be evicted."""
        d = self.defaults
        n_ctx = context_length or d.n_ctx
        if entry.max_context_length and context_length is None:
            n_ctx = min(n_ctx, entry.max_context_length)
        placement = self.place(entry.path, entry.type, n_ctx, d.n_parallel,
                               d.gpu_layers if gpu_layers is None else gpu_layers)
        evict = self._make_room()
        iid = instance_id or self._new_id(entry.key)
        config = EngineConfig(model_path=str(entry.path), model_id=iid, n_ctx=n_ctx, n_threads=d.n_threads,
                              n_parallel=d.n_parallel, n_slots=d.n_slots, max_queue=d.max_queue, verbose=d.verbose,
                              n_gpu_layers=placement.gpu_layers)
        inst = Instance(id=iid, entry=entry, engine=self.factory(entry.type, config), context_length=n_ctx, ttl=ttl,
                        expected_load_seconds=self._expected_load_seconds(entry), placement=placement)
        self.instances[iid] = inst
        self._spawn(self._load(inst, evict, after))
        return inst

    async def wait_loaded(self, inst: Instance) -> Instance:
        await inst.loaded.wait()
        if inst.error is not None:
            raise ModelLoadFailed(f"Loading the model '{inst.entry.key}' failed: {inst.error}")
        return inst

    def recent_failure(self, key: str) -> str | None:
        failed = self.failed.get(key)
        return failed[1] if failed and time.monotonic() - failed[0] < FAILED_LOAD_MEMORY else None

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
            self.failed[inst.entry.key] = (time.monotonic(), inst.error)
            self.counters["load_failures"] += 1
            self.instances.pop(inst.id, None)
            self.hooks.model_failed(inst, time.monotonic() - inst.load_started)
            await asyncio.get_running_loop().run_in_executor(None, inst.engine.close)
        else:
            inst.load_seconds = time.monotonic() - inst.load_started
            self._durations[inst.entry.key] = inst.load_seconds
            self.failed.pop(inst.entry.key, None)
            self.counters["loads"] += 1
            inst.last_active = time.monotonic()
            if inst.state is State.LOADING:
                inst.state = State.READY
            self.hooks.model_loaded(inst)
        finally:
            inst.loaded.set()

    # unloading ---------------------------------------------------------------------------------
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
            self.ticks += 1
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
