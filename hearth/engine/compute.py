"""One compute thread steps every loaded model, in turn.

Two multi-threaded OpenMP teams in one process slow each other by ~40% (each llama.cpp context
decoding on a thread of its own is such a team; libgomp then also throttles its spin-waits): so
every llama_decode of every model runs on this one thread, one model's step after another's, and
the process keeps one team.

- A `Steppable` engine is stepped while it `has_work()`: the loop goes round the engines with work,
  one `step()` each (one llama_decode), and sleeps when none has any (no CPU while idle).
- Loading happens on a short-lived thread of the engine's own (`start()`): reading a model and
  allocating its context do not decode, so the other models' streams keep running meanwhile; the
  engine joins the loop once loaded. `close()` takes it out of the loop (waiting at most for the
  step under way) before it frees anything, so no step ever touches a freed model.

Requests reach an engine through its own inbox (a thread-safe queue, drained by `has_work()` on
this thread); the engine calls `wake()` after putting something there.
"""
from __future__ import annotations

import logging
import queue
import threading
import time

from hearth.engine.api import LoadState

log = logging.getLogger("hearth.engine")


class Compute:
    """The loop and its thread (started with the first engine; idle, it sleeps)."""

    def __init__(self, name: str = "hearth-compute"):
        self.name = name
        self._engines: list[Steppable] = []  # read and written by the compute thread only
        self._changes: queue.SimpleQueue = queue.SimpleQueue()  # (engine, add?, done) from other threads
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def wake(self) -> None:
        self._wakeup.set()

    def attach(self, engine: "Steppable") -> None:
        self._change(engine, True)

    def detach(self, engine: "Steppable") -> None:
        """Returns once the engine is out of the loop: no step of it runs now or later."""
        self._change(engine, False)

    def _change(self, engine: "Steppable", add: bool) -> None:
        if threading.current_thread() is self._thread:  # from a step: apply now
            self._apply(engine, add)
            return
        done = threading.Event()
        self._changes.put((engine, add, done))
        self._ensure_thread()
        self.wake()
        done.wait()

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
                self._thread.start()

    def _apply(self, engine: "Steppable", add: bool) -> None:
        if add and engine not in self._engines:
            self._engines.append(engine)
        elif not add and engine in self._engines:
            self._engines.remove(engine)

    def _apply_changes(self) -> None:
        while True:
            try:
                engine, add, done = self._changes.get_nowait()
            except queue.Empty:
                return
            self._apply(engine, add)
            done.set()

    def _main(self) -> None:
        while True:
            self._wakeup.clear()  # before looking for work: a wake() from now on is not lost
            self._apply_changes()
            busy = [e for e in self._engines if _has_work(e)]
            if not busy:
                self._wakeup.wait()
                continue
            progressed = False
            for engine in busy:  # round robin: one step of each model with work
                if engine not in self._engines:  # detached during this round: its close may be freeing it
                    continue
                try:
                    progressed |= bool(engine.step())
                except Exception:
                    log.exception("hearth: a step of %s failed; ending its requests", _name(engine))
                    _abort(engine)
                self._apply_changes()  # a close waits for at most one step
            if not progressed:
                time.sleep(0.001)  # work that cannot move yet (e.g. waiting on a copy): never spin hot


def _has_work(engine: "Steppable") -> bool:
    try:
        return engine.has_work()
    except Exception:
        log.exception("hearth: %s could not take its requests in; ending them", _name(engine))
        _abort(engine)
        return False


def _abort(engine: "Steppable") -> None:
    try:
        engine.abort()
    except Exception:  # the loop serves every other model: it must not die with this one
        log.exception("hearth: ending the requests of %s failed", _name(engine))


def _name(engine) -> str:
    model = getattr(engine, "model", None)
    return getattr(model, "id", None) or type(engine).__name__


_shared: Compute | None = None
_shared_lock = threading.Lock()


def shared() -> Compute:
    """The process's compute loop, which every engine joins unless given another."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Compute()
        return _shared


class Steppable:
    """The lifecycle every engine shares: load on a thread of its own, then be stepped by the compute loop.

    A subclass provides `load()` (make the model and context; raises on failure), `unload()` (fail what
    waits, free everything; idempotent), `has_work()`, `step()` (both on the compute thread) and
    `abort()` (end every request after a failed step). It keeps `self.state` as the registry reads it.
    """

    compute: Compute | None = None  # None: the shared loop
    load_error: str | None = None

    def start(self) -> None:
        """Begin loading in the background and return at once (LOADING, then READY or FAILED)."""
        if getattr(self, "_loader", None) is not None:
            return
        self._lifecycle = threading.Lock()
        self._attached = self._closing = False
        self.state = LoadState.LOADING
        self._loader = threading.Thread(target=self._load_and_attach, name="hearth-load", daemon=True)
        self._loader.start()

    def _load_and_attach(self) -> None:
        try:
            self.load()
        except Exception as exc:
            self.load_error = str(exc)  # `hearth serve` prints it as one line; the traceback is for --verbose
            log.debug("hearth: loading %s failed", getattr(self, "config", None), exc_info=True)
            with self._lifecycle:
                if not self._closing:
                    self.state = LoadState.FAILED
            return
        with self._lifecycle:
            if self._closing:  # closed while it loaded: close() frees it
                return
            self.compute = self.compute or shared()
            self.compute.attach(self)
            self._attached = True
            self.state = LoadState.READY

    def wake(self) -> None:
        """Called after a request was put in the inbox (or cancelled): the loop looks for work."""
        compute = self.compute
        if compute is not None:
            compute.wake()

    def close(self) -> None:
        """Final: later requests get ModelNotLoaded; what waits fails; the model is freed (after the
        load under way, if any, and the step under way, if any)."""
        loader = getattr(self, "_loader", None)
        if loader is None:
            self._closing, self.state = True, LoadState.EMPTY
            self.unload()
            return
        with self._lifecycle:  # from here the loader leaves the state alone
            self._closing, self.state = True, LoadState.EMPTY
        if loader is not threading.current_thread():
            loader.join()
        if self._attached:
            self.compute.detach(self)
            self._attached = False
        self.unload()
