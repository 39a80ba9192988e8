"""One compute thread for every loaded model: it runs each model's step in turn (and embedding batches).

Why one: llama.cpp's CPU backend runs each decode on an OpenMP team of the calling thread. Two engine
threads decoding at once are two multi-threaded teams on the same cores; libgomp then throttles its
spin-waits and both run ~40% slower (measured here). Steps taken in turn by one thread reuse one team.

Workers are added when their model has loaded (loading happens on a thread of its own: a load never
stalls the others' steps) and removed before their model is freed: `remove` returns only once the
compute thread is not inside that worker, so nothing steps a freed model.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

log = logging.getLogger("hearth.engine")


class Worker(Protocol):
    def run_once(self) -> bool:
        """Take in what arrived, then do one unit of work (one step). Returns whether work remains."""


class ComputeLoop:
    def __init__(self, name: str = "hearth-compute"):
        self._name = name
        self._workers: list[Worker] = []
        self._cv = threading.Condition()
        self._woken = False
        self._current: Worker | None = None
        self._thread: threading.Thread | None = None

    def add(self, worker: Worker) -> None:
        with self._cv:
            self._workers.append(worker)
            if self._thread is None:
                self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
                self._thread.start()
            self._woken = True
            self._cv.notify_all()

    def remove(self, worker: Worker) -> None:
        """Out of the round; returns once the compute thread is not running it (unless called from it)."""
        with self._cv:
            if worker in self._workers:
                self._workers.remove(worker)
            while self._current is worker and threading.current_thread() is not self._thread:
                self._cv.wait()

    def wake(self) -> None:
        """Something arrived for a worker (thread-safe; cheap when already awake)."""
        with self._cv:
            self._woken = True
            self._cv.notify_all()

    def _main(self) -> None:
        while True:
            with self._cv:
                while not self._woken:
                    self._cv.wait()
                self._woken = False
                workers = list(self._workers)
            more = False
            for worker in workers:
                with self._cv:
                    if worker not in self._workers:
                        continue
                    self._current = worker
                try:
                    more |= worker.run_once()
                except Exception:  # a worker handles its own failures; this only keeps the others alive
                    log.exception("hearth: a model's step failed")
                finally:
                    with self._cv:
                        self._current = None
                        self._cv.notify_all()
            if more:
                with self._cv:
                    self._woken = True


_shared: ComputeLoop | None = None
_shared_lock = threading.Lock()


def shared() -> ComputeLoop:
    """The process's compute loop, which every engine uses unless given another."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ComputeLoop()
        return _shared
