"""llama_decode on a thread of its own, so that the engine thread's Python runs while the model decodes.

ctypes releases the GIL for the length of a foreign call, so one thread can be inside llama_decode while
another runs Python. The engine thread starts a call, feeds the previous step's tokens through their
output processors meanwhile, then waits for the logits (llm_engine.py, `overlap`). Worth it only where
the decode leaves a core free: a model wholly on a GPU. On the CPU llama.cpp's threads take every core.
"""
from __future__ import annotations

import threading
from typing import Callable


class DecodeThread:
    def __init__(self, decode: Callable[[], int]):
        self._decode = decode
        # three binary signals (a Lock is the cheapest one Python has), each released by one side only
        self._go, self._started, self._done = threading.Lock(), threading.Lock(), threading.Lock()
        for signal in (self._go, self._started, self._done):
            signal.acquire()
        self._result: int | BaseException = 0
        self._closed = False
        threading.Thread(target=self._serve, name="hearth-decode", daemon=True).start()

    def start(self) -> None:
        """Begin one call; returns once the decode thread has taken it up. Without that handoff this
        thread would keep the GIL while it works, and the call could not begin before it next blocks
        (CPython hands the GIL over on blocking, or after sys.getswitchinterval(), 5 ms)."""
        self._go.release()
        self._started.acquire()

    def wait(self) -> int:
        """The call's return value (or its exception, raised here)."""
        self._done.acquire()
        result = self._result
        if isinstance(result, BaseException):
            raise result
        return result

    def close(self) -> None:
        """Ends the thread (between calls)."""
        self._closed = True
        self._go.release()

    def _serve(self) -> None:
        while True:
            self._go.acquire()
            if self._closed:
                return
            self._started.release()
            try:
                self._result = self._decode()
            except BaseException as exc:  # noqa: BLE001 -- handed to the waiting engine thread
                self._result = exc
            self._done.release()
