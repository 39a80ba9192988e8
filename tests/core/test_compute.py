"""The compute loop (hearth/engine/compute.py): its thread steps every loaded model, and lends the
extra ones to single-threaded helpers while two or more are busy.

The loop's rules over stand-in engines (what a real model cannot show on demand: a step held open, a
step that raises, a close during a load), then the real chat and embedding models decoding side by
side, a multi-threaded decode only ever on the compute thread.
"""
from __future__ import annotations

import asyncio
import threading
import time


from hearth.models import defaults
from hearth.engine import api
from hearth.engine.compute import Compute, Steppable
from hearth.engine.embedding_engine import EmbeddingEngine
from hearth.engine.llm_engine import LlamaEngine

from support import TIMEOUT, chat, collect, greedy, make_engine, wait_until as until


class Stub(Steppable):
    """`work` steps to do; each step is logged; `hold` (an Event) blocks a step until set."""

    def __init__(self, name: str, log: list, work: int = 0, compute: Compute | None = None):
        self.name, self.log, self.work = name, log, work
        self.state = api.LoadState.EMPTY
        self.compute = compute
        self.hold: threading.Event | None = None
        self.fail_next = False
        self.loaded = threading.Event()  # load() waits for it
        self.loaded.set()
        self.aborted = self.unloads = self.has_work_calls = 0
        self.stepping = threading.Event()
        self.threads = 0  # as set_threads last said

    def load(self):
        assert self.loaded.wait(TIMEOUT)

    def unload(self):
        self.unloads += 1

    def has_work(self):
        self.has_work_calls += 1
        return self.work > 0

    def step(self):
        self.stepping.set()
        if self.hold is not None:
            assert self.hold.wait(TIMEOUT)
        self.work -= 1
        self.log.append((self.name, threading.current_thread().name, self.threads))
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("a broken step")
        return True

    def abort(self):
        self.aborted += 1
        self.work = 0

    def set_threads(self, n):
        self.threads = n

    def add_work(self, n: int):
        self.work += n
        self.wake()


def started(*engines: Stub) -> None:
    for e in engines:
        e.start()
    until(lambda: all(e.state is api.LoadState.READY for e in engines), "the loads")


def test_on_one_core_engines_with_work_take_turns_one_step_each_on_one_thread():
    compute, log = Compute("test-compute", n_threads=1), []
    a, b = Stub("a", log, compute=compute), Stub("b", log, compute=compute)
    started(a, b)
    a.hold = threading.Event()  # both get their work before the first step runs
    a.add_work(3)
    b.add_work(3)
    a.hold.set()
    until(lambda: len(log) == 6, "six steps")
    assert [name for name, _, _ in log] == ["a", "b", "a", "b", "a", "b"]
    assert {thread for _, thread, _ in log} == {"test-compute"}
    a.close()
    b.close()


def b_lent_beside_a(b_work: int, hold_b: bool):
    """Two engines on a 2-core loop: a's first step ran alone, then b got work and was lent to the
    helper while a's second step stays open until the returned event is set. With `hold_b`, b's first
    step (on the helper) has begun and stays open until b.hold is set."""
    compute, log = Compute("test-compute", n_threads=2), []
    a, b = Stub("a", log, compute=compute), Stub("b", log, compute=compute)
    started(a, b)
    first, second = threading.Event(), threading.Event()
    a.hold = first
    a.add_work(2)
    assert a.stepping.wait(TIMEOUT)  # a's first step is open
    if hold_b:
        b.hold = threading.Event()
    b.add_work(b_work)
    a.hold = second
    first.set()  # the next round lends b to the helper; a's second step runs beside it
    if hold_b:
        assert b.stepping.wait(TIMEOUT)
    return log, a, b, second


def test_two_busy_engines_step_side_by_side_with_a_thread_each_and_one_alone_gets_all():
    log, a, b, second = b_lent_beside_a(3, hold_b=False)
    until(lambda: [n for n, _, _ in log].count("b") == 3, "b's steps while a's is open")  # b runs beside a
    second.set()
    until(lambda: a.work == 0, "a's steps")
    steps = {name: [(thread, threads) for n, thread, threads in log if n == name] for name in "ab"}
    assert steps["b"] == [("test-compute-helper", 1)] * 3
    assert steps["a"] == [("test-compute", 2), ("test-compute", 1)]  # alone: every core; beside b: one
    a.hold = None
    a.add_work(1)
    until(lambda: a.work == 0 and len(log) == 6, "a alone again")
    assert log[-1] == ("a", "test-compute", 2)
    a.close()
    b.close()


def test_a_lent_engine_comes_back_to_every_core_once_the_other_is_done():
    log, a, b, second = b_lent_beside_a(4, hold_b=True)
    second.set()
    until(lambda: a.work == 0, "a's steps")
    b.hold.set()
    until(lambda: b.work == 0, "b's steps")
    b_steps = [(thread, threads) for n, thread, threads in log if n == "b"]
    assert b_steps[0] == ("test-compute-helper", 1) and b_steps[-1] == ("test-compute", 2), b_steps
    a.close()
    b.close()


def test_closing_a_lent_engine_waits_for_its_step_and_it_steps_no_more():
    log, a, b, second = b_lent_beside_a(5, hold_b=True)
    closer = threading.Thread(target=b.close)
    closer.start()
    second.set()  # the loop takes the close in and recalls b from its helper
    closer.join(0.2)
    assert closer.is_alive() and b.unloads == 0  # not freed under its running step
    b.hold.set()
    closer.join(TIMEOUT)
    assert not closer.is_alive() and b.unloads == 1
    b.work = 5  # work left: a b still in the loop would step again
    a.hold = None
    a.add_work(2)  # the loop goes on: two more rounds, each of which would have stepped b
    until(lambda: [n for n, _, _ in log].count("a") == 4, "a's next steps")
    assert [n for n, _, _ in log].count("b") == 1
    assert all(thread == "test-compute-helper" for n, thread, _ in log if n == "b")
    a.close()


def test_an_idle_loop_sleeps():
    compute, log = Compute(), []
    a = Stub("a", log, compute=compute)
    started(a)
    a.add_work(1)
    until(lambda: len(log) == 1, "the step")
    calls = a.has_work_calls
    time.sleep(0.2)  # a spinning loop would ask thousands of times meanwhile
    assert a.has_work_calls <= calls + 1
    a.close()


def test_close_waits_for_the_step_under_way_and_then_frees():
    compute, log = Compute(), []
    a = Stub("a", log, compute=compute)
    started(a)
    a.hold = threading.Event()
    a.add_work(5)
    assert a.stepping.wait(TIMEOUT)
    closer = threading.Thread(target=a.close)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive() and a.unloads == 0  # not freed under a running step
    a.hold.set()
    closer.join(TIMEOUT)
    assert not closer.is_alive() and a.unloads == 1 and a.state is api.LoadState.EMPTY
    stepped = len(log)
    assert stepped <= 2  # at most the held step and one the loop had already begun: none after close
    a.work = 5
    witness = Stub("b", log, compute=compute)  # the loop's rounds that would have stepped a, were it still in
    started(witness)
    witness.add_work(2)
    until(lambda: witness.work == 0, "the witness's steps")
    assert [n for n, _, _ in log].count("a") == stepped
    witness.close()


def test_a_step_that_raises_ends_that_engines_requests_and_the_loop_goes_on():
    compute, log = Compute(), []
    a, b = Stub("a", log, compute=compute), Stub("b", log, compute=compute)
    started(a, b)
    a.fail_next = True
    a.add_work(3)
    until(lambda: a.aborted == 1, "the abort")
    b.add_work(2)
    until(lambda: [n for n, _, _ in log].count("b") == 2, "b's steps")
    assert a.state is api.LoadState.READY  # still serving
    a.close()
    b.close()


def test_a_close_during_the_load_frees_once_and_never_joins_the_loop():
    compute, log = Compute(), []
    a = Stub("a", log, compute=compute)
    a.loaded.clear()
    a.start()
    assert a.state is api.LoadState.LOADING
    closer = threading.Thread(target=a.close)
    closer.start()
    until(lambda: a.state is api.LoadState.EMPTY, "the close")
    a.loaded.set()
    closer.join(TIMEOUT)
    assert a.unloads == 1 and a.state is api.LoadState.EMPTY and a not in compute._engines
    a.add_work(1)
    witness = Stub("b", log, compute=compute)  # the loop's rounds that would have stepped a, had it joined
    started(witness)
    witness.add_work(2)
    until(lambda: witness.work == 0, "the witness's steps")
    assert [n for n, _, _ in log] == ["b", "b"]
    witness.close()


def test_the_chat_and_the_embedding_model_decode_side_by_side(monkeypatch):
    """Real models: a multi-threaded llama_decode of either runs on the shared compute thread only, and
    streams and embeddings served together come out right."""
    threads: set[tuple[str, int]] = set()
    for cls in (LlamaEngine, EmbeddingEngine):
        step = cls.step

        def recording(self, _step=step):
            n = self._llama[1].n_threads if isinstance(self, LlamaEngine) else self.threads_now
            threads.add((threading.current_thread().name, n))
            return _step(self)

        monkeypatch.setattr(cls, "step", recording)
    chat_engine = make_engine(n_ctx=512, n_parallel=2)
    embedder = EmbeddingEngine(api.EngineConfig(model_path=str(defaults.default_embedding_model_path())))
    embedder.start()
    until(lambda: embedder.state is not api.LoadState.LOADING, "the embedding model")
    assert embedder.state is api.LoadState.READY

    async def both():
        return await asyncio.gather(
            collect(chat_engine, chat("Count from one to five."), greedy(12)),
            collect(chat_engine, chat("Name a colour."), greedy(12)),
            embedder.embed(["A man is playing a guitar.", "Someone is strumming a guitar.", "It is raining."]),
        )

    try:
        (text1, _, gen1), (text2, _, gen2), emb = asyncio.run(both())
    finally:
        chat_engine.close()
        embedder.close()
    assert gen1.completion_tokens >= 1 and gen2.completion_tokens >= 1 and text1 and text2
    assert gen1.finish_reason in ("stop", "length") and gen2.finish_reason in ("stop", "length")
    v = emb.vectors
    assert sum(x * y for x, y in zip(v[0], v[1])) > sum(x * y for x, y in zip(v[0], v[2]))
    assert {name for name, n in threads if n > 1} <= {"hearth-compute"}, threads
    assert {name for name, _ in threads} <= {"hearth-compute", "hearth-compute-helper"}, threads
