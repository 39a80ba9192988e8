"""The model registry: which model serves a request, and what is loaded (over hearth/models/lifecycle.py).

Routing a request's `model` (`use`):
- a loaded instance id, or a catalog key -> that model, loaded just in time if it is not loaded;
- any other string -> the model of the request's kind loaded most recently (`strict`: 404 instead);
  embeddings go to an embedding model whatever the string, unless it names one;
- chat or completions on an embedding model -> 400; nothing loaded and nothing to load -> 404;
- a model still loading -> 503 `model_loading` with the time the load is expected to take still
  (Retry-After, and retry-after-ms for the openai SDK).
`use` hands out a Request (hearth/models/request.py) that holds the instance until it is admitted.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hearth import gguf
from hearth.engine.api import ModelInfo, ModelLoadFailed, ModelLoading, ModelNotLoaded, WrongModelType
from hearth.models import fit
from hearth.models.catalog import Catalog, CatalogEntry
from hearth.models.lifecycle import EMBEDDING, LLM, EngineFactory, Instance, Lifecycle, LoadDefaults, State, \
    default_factory
from hearth.models.request import Request


@dataclass(frozen=True)
class Snapshot:
    """What the page, /health, /status and /metrics read: every loaded model seen as one server."""

    state: str  # "ready" when any model serves, else "loading" when one loads, else "empty"
    default_id: str | None  # the model requests go to by default (the newest chat model), loading or not
    default: ModelInfo | None  # that model, once ready
    offload: str | None  # where its layers went: "CPU" or "GPU n/N layers (device, size)"
    stats: dict  # every engine's counters, summed
    load_error: str | None  # why the latest failed load failed


class Registry(Lifecycle):
    def __init__(self, catalog: Catalog, *, factory: EngineFactory = default_factory,
                 defaults: LoadDefaults = LoadDefaults(), jit_ttl: float | None = 3600.0,
                 max_loaded: int | None = None, strict: bool = False, place=fit.place_file):
        super().__init__(factory=factory, defaults=defaults, max_loaded=max_loaded, place=place)
        self.catalog = catalog
        self.jit_ttl = jit_ttl
        self.strict = strict
        self.extra: dict[str, CatalogEntry] = {}  # files named on the command line, outside the catalog

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
        meta = gguf.read_metadata(path)
        arch = meta.get("general.architecture")
        entry = CatalogEntry(
            key=key or path.name.removesuffix(".gguf"), type=EMBEDDING if gguf.is_embedding(meta) else LLM, path=path,
            publisher="local", display_name=path.name.removesuffix(".gguf"), size_bytes=path.stat().st_size,
            max_context_length=int(meta.get(f"{arch}.context_length") or 0), architecture=arch,
            quantization=None, params_string=meta.get("general.size_label"),
        )
        self.extra[entry.key.lower()] = entry
        return entry

    # routing ----------------------------------------------------------------------------------
    def use(self, name: str, kind: str = LLM, ttl: float | None = None, *, timeout: float | None = None,
            max_prompt_tokens: int | None = None) -> Request:
        """The Request for `name`, its model held until admitted (see the module doc and request.py).
        Raises ModelNotLoaded, ModelLoading, WrongModelType, Overloaded or ModelLoadFailed."""
        inst = self._route(name.strip(), kind, ttl)
        if inst.state is State.LOADING:
            raise ModelLoading(f"The model '{inst.id}' is loading; retry shortly.", retry_after=inst.retry_after())
        return Request(inst, self.hooks, timeout=timeout, max_prompt_tokens=max_prompt_tokens)

    def _route(self, name: str, kind: str, ttl: float | None) -> Instance:
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
        if (why := self.recent_failure(entry.key)) is not None:
            raise ModelLoadFailed(f"Loading the model '{entry.key}' failed: {why}")
        return self.start_load(entry, ttl=self.jit_ttl if ttl is None else ttl)

    def load(self, key: str, *, context_length: int | None = None, ttl: float | None = None,
             gpu_layers: str | int | None = None) -> Instance:
        """Start loading a new instance of a catalog model (POST /api/v1/models/load); await `wait_loaded`."""
        entry = self.find(key)
        if entry is None:
            raise ModelNotLoaded(f"No model with key '{key}' is on disk (GET /api/v1/models lists them).")
        return self.start_load(entry, context_length=context_length, ttl=ttl, gpu_layers=gpu_layers)

    # views ------------------------------------------------------------------------------------
    def loaded(self) -> list[Instance]:
        """The instances that serve requests now, in load order (GET /v1/models)."""
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

    def snapshot(self) -> Snapshot:
        default = self._newest(kind=LLM) or self._newest()
        states = {i.state for i in self.instances.values()}
        total: dict = {}
        for inst in list(self.instances.values()):
            for key, value in (inst.engine.stats() or {}).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    total[key] = total.get(key, 0) + value
        return Snapshot(
            state="ready" if State.READY in states else "loading" if State.LOADING in states else "empty",
            default_id=default.id if default is not None else None,
            default=default.engine.model if default is not None and default.state is State.READY else None,
            offload=default.placement.describe() if default is not None else None,
            stats=total,
            load_error=max(self.failed.values())[1] if self.failed else None,
        )

    def stats(self) -> dict:
        return {**self.counters, "loaded": len(self.loaded()),
                "loading": sum(i.state is State.LOADING for i in self.instances.values())}
