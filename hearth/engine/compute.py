"""The compute loop: every loaded model's llama_decode runs on its thread, or on a helper it lends a
model to while two or more are busy.

Two multi-threaded OpenMP teams in one process slow each other, and libgomp, once it has managed
more threads than cores, throttles its spin-waits for the rest of the process's life: one model
with 8 streams then decodes ~10% slower ever after (measured here). So only the compute thread ever
runs a multi-threaded decode; a helper thread decodes with one thread, which starts no team at all.

- One model busy: the compute thread steps it with all the cores (`n_threads`).
- Two or more busy: each extra one is lent to a helper thread, which steps it with one thread for as
  long as it has work, each model at its own pace, and the compute thread steps the first with the
  cores left. With nothing else to step, the compute thread takes a lent engine back (after its step
  under way). Measured here with two copies of SmolLM2 x 4 streams each, against one x 8: 0.87-0.95
  of the aggregate tokens/s, where taking turns on the compute thread gave 0.81-0.90 (each decode
  reads all the weights, and 4 rows fill 2 threads poorly).
- A `Steppable` engine is stepped while it `has_work()`; with no work anywhere the loop sleeps.
- Loading happens on a short-lived thread of the engine's own (`start()`): reading a model and
  allocating its context do not decode, so the other models' streams keep running meanwhile; the
  engine joins the loop once loaded. `close()` takes it out of the loop (waiting at most for the
  step under way, here or on its helper) before it frees anything, so no step touches a freed model.

Requests reach an engine through its own inbox (a thread-safe queue, drained by `has_work()` on the
thread stepping it); the engine calls `wake()` after putting something there.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time

from hearth.engine.api import LoadState

log = logging.getLogger("hearth.engine")


class Compute:
    """The loop and its thread (started with the first engine; idle, it sleeps)."""

    def __init__(self, name: str = "hearth-compute", n_threads: int | None = None):
        self.name = name
        self.n_threads = n_threads or os.cpu_count() or 1
        self._engines: list[Steppable] = []  # read and written by the compute thread only
        self._lent: dict[Steppable, _Helper] = {}  # engines a helper steps now (compute thread only)
        self._idle_helpers: list[_Helper] = []
        self._returned: queue.SimpleQueue = queue.SimpleQueue()  # helpers whose engine ran out of work
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
            helper = self._lent.get(engine)
            if helper is not None:  # wait for its step under way; it steps no more
                helper.recall()
                self._take_back(helper, helper.lease)
            self._engines.remove(engine)

    def _apply_changes(self) -> None:
        while True:
            try:
                engine, add, done = self._changes.get_nowait()
            except queue.Empty:
                return
            self._apply(engine, add)
            done.set()

    def _take_back(self, helper: "_Helper", lease: int) -> None:
        if helper.lease == lease and helper.engine is not None:  # else taken back already (a close)
            del self._lent[helper.engine]
            helper.engine = None
            self._idle_helpers.append(helper)

    def _collect_returned(self) -> None:
        while True:
            try:
                self._take_back(*self._returned.get_nowait())
            except queue.Empty:
                return

    def _lend(self, engine: "Steppable") -> None:
        helper = self._idle_helpers.pop() if self._idle_helpers else _Helper(self)
        self._lent[engine] = helper
        helper.lend(engine)

    def _main(self) -> None:
        while True:
            self._wakeup.clear()  # before looking for work: a wake() from now on is not lost
            self._apply_changes()
            self._collect_returned()
            busy = [e for e in self._engines if e not in self._lent and _has_work(e)]
            if not busy and self._lent:  # a lent engine still busy gets every core back here
                helper = next(iter(self._lent.values()))
                helper.recall()
                self._take_back(helper, helper.lease)
                continue
            if not busy:
                self._wakeup.wait()
                continue
            while len(busy) > 1 and len(self._lent) < self.n_threads - 1:
                self._lend(busy.pop())
            progressed = False
            for engine in busy:  # round robin: one step of each model with work (more than cores)
                if engine not in self._engines:  # detached during this round: its close may be freeing it
                    continue
                _set_threads(engine, max(1, self.n_threads - len(self._lent)))
                progressed |= _step(engine)
                self._apply_changes()  # a close waits for at most one step
            if not progressed:
                time.sleep(0.001)  # work that cannot move yet (e.g. waiting on a copy): never spin hot


class _Helper:
    """A thread the compute loop lends an engine to: steps it with one thread while it has work."""

    def __init__(self, compute: Compute):
        self.compute = compute
        self.engine: Steppable | None = None
        self.lease = 0  # counts the loans: a return names the loan it ends
        self._go = threading.Event()
        self._stop = False
        self._idle = threading.Event()
        self._idle.set()
        threading.Thread(target=self._main, name=compute.name + "-helper", daemon=True).start()

    def lend(self, engine: "Steppable") -> None:
        self.engine, self._stop = engine, False
        self.lease += 1
        self._idle.clear()
        self._go.set()

    def recall(self) -> None:
        """Stop after the step under way and wait for it (on the compute thread)."""
        self._stop = True
        self._idle.wait()

    def _main(self) -> None:
        while True:
            self._go.wait()
            self._go.clear()
            engine, lease = self.engine, self.lease
            _set_threads(engine, 1)
            while not self._stop and _has_work(engine):
                if not _step(engine):
                    time.sleep(0.001)
            self._idle.set()
            self.compute._returned.put((self, lease))
            self.compute.wake()


def _step(engine: "Steppable") -> bool:
    try:
        return bool(engine.step())
    except Exception:
        log.exception("hearth: a step of %s failed; ending its requests", _name(engine))
        _abort(engine)
        return False


def _set_threads(engine: "Steppable", n: int) -> None:
    try:
        engine.set_threads(n)
    except Exception:
        log.exception("hearth: setting the threads of %s failed", _name(engine))


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
    waits, free everything; idempotent), `has_work()`, `step()`, `set_threads(n)` (on the thread
    stepping it: the compute thread or a helper, one at a time) and `abort()` (end every request after
    a failed step). It keeps `self.state` as the registry reads it.
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

    def set_threads(self, n: int) -> None:
        """Decode with at most n threads from the next step on."""

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
