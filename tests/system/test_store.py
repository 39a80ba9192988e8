"""hearth/store.py: stored responses survive a restart, stay bounded (oldest dropped first), and concurrent
writers, threads or processes, lose nothing. And through the server: a conversation continues after a
restart; --no-store keeps nothing."""
from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3

import httpx
import pytest
from support import RunningServer

from hearth.store import ChainBroken, ResponseStore


def response(i: int, text: str = "") -> dict:
    return {"id": f"resp_{i}", "object": "response", "output": [
        {"type": "message", "id": f"msg_{i}", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": text or f"answer {i}", "annotations": []}]}]}


def items(i: int) -> list[dict]:
    return [{"type": "message", "id": f"in_{i}", "role": "user", "content": [{"type": "input_text", "text": f"q{i}"}]}]


def test_save_get_chain_delete_and_reopen(tmp_path):
    path = tmp_path / "r.sqlite3"

    async def first():
        store = ResponseStore(path)
        await store.save(response(1), items(1), None)
        await store.save(response(2), items(2), "resp_1")
        assert (await store.get("resp_2"))["output"][0]["id"] == "msg_2"
        assert await store.input_items("resp_2") == items(2)
        assert await store.get("resp_9") is None and await store.conversation("resp_9") is None
        store.close()

    async def after_restart():
        store = ResponseStore(path)
        chain = await store.conversation("resp_2")
        assert [r["id"] for _, r in chain] == ["resp_1", "resp_2"] and chain[0][0] == items(1)
        assert await store.delete("resp_1") and not await store.delete("resp_1")
        with pytest.raises(ChainBroken) as broken:
            await store.conversation("resp_2")
        assert broken.value.missing == "resp_1"
        store.close()

    asyncio.run(first())
    asyncio.run(after_restart())


def test_bounded_by_count_and_bytes_oldest_first(tmp_path):
    async def go():
        store = ResponseStore(tmp_path / "r.sqlite3", max_responses=5)
        for i in range(12):
            await store.save(response(i), items(i), None)
        assert (await store.stats())["responses"] == 5
        assert [await store.get(f"resp_{i}") is not None for i in range(12)] == [False] * 7 + [True] * 5
        big = ResponseStore(tmp_path / "b.sqlite3", max_bytes=20_000)
        for i in range(40):
            await big.save(response(i, "x" * 1000), items(i), None)
            assert (await big.stats())["bytes"] <= 20_000
        kept = [i for i in range(40) if await big.get(f"resp_{i}") is not None]
        assert kept == list(range(40 - len(kept), 40)) and 10 <= len(kept) < 40
        store.close()
        big.close()

    asyncio.run(go())


def test_concurrent_writers_in_one_process_lose_nothing(tmp_path):
    async def go():
        store = ResponseStore(tmp_path / "r.sqlite3")
        await asyncio.gather(*(store.save(response(i), items(i), None) for i in range(200)))
        assert (await store.stats())["responses"] == 200
        got = await asyncio.gather(*(store.get(f"resp_{i}") for i in range(200)))
        assert all(g is not None for g in got)
        store.close()

    asyncio.run(go())


def _writer(path: str, start: int) -> None:
    async def go():
        store = ResponseStore(path)
        for i in range(start, start + 50):
            await store.save(response(i), items(i), None)
        store.close()

    asyncio.run(go())


def test_concurrent_processes_on_one_file_lose_nothing(tmp_path):
    path = str(tmp_path / "r.sqlite3")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, k * 1000)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    count = sqlite3.connect(path).execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    assert count == 200


def test_conversation_survives_a_server_restart(tmp_path):
    store = str(tmp_path / "r.sqlite3")
    running = RunningServer("--store-path", store)
    try:
        first = httpx.post(f"{running.url}/responses", json={"model": "m", "input": "My name is Ada.",
                                                                  "max_output_tokens": 10}, timeout=120).json()
    finally:
        running.stop()
    running = RunningServer("--store-path", store)
    try:
        again = httpx.get(f"{running.url}/responses/{first['id']}", timeout=30)
        assert again.status_code == 200 and again.json()["output"] == first["output"]
        second = httpx.post(f"{running.url}/responses", timeout=120, json={
            "model": "m", "input": "What is my name?", "previous_response_id": first["id"], "max_output_tokens": 10})
        assert second.status_code == 200
        assert second.json()["usage"]["input_tokens"] > first["usage"]["input_tokens"]
    finally:
        running.stop()


def test_no_store_keeps_nothing_and_says_so():
    running = RunningServer("--no-store")
    try:
        r = httpx.post(f"{running.url}/responses", json={"model": "m", "input": "Hi", "max_output_tokens": 4},
                       timeout=120).json()
        assert r["store"] is False
        assert httpx.get(f"{running.url}/responses/{r['id']}").status_code == 404
        chained = httpx.post(f"{running.url}/responses", json={"model": "m", "input": "Hi", "previous_response_id":
                                                                   r["id"]}, timeout=60)
        assert chained.status_code == 400 and "--no-store" in chained.json()["error"]["message"]
    finally:
        running.stop()


def test_an_unusable_store_path_is_a_one_line_startup_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RuntimeError, match="exited with 1"):
        RunningServer("--store-path", str(blocker / "r.sqlite3"))
