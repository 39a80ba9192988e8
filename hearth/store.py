"""Stored responses (the Responses API's `store` and `previous_response_id`), in SQLite.

One file (default `<cache dir>/responses.sqlite3`, `hearth serve --store-path`), so a conversation
survives a restart. Each row is one response: the response as answered, the request's own input items
and the id of the response it continued; a conversation is the chain of rows back to its first.

Bounded: past `max_responses` rows or `max_bytes` of JSON, the oldest rows are dropped first (a chain
that reaches a dropped row can no longer be continued: 400 previous_response_not_found).

Concurrency: every call runs on a worker thread (the event loop never waits on the disk) through one
connection under a lock, in WAL mode with a busy timeout, so concurrent requests, and other processes
on the same file, serialise their writes instead of losing them.
"""
from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from pathlib import Path

from hearth.models.defaults import models_dir

DEFAULT_MAX_RESPONSES = 10_000
DEFAULT_MAX_BYTES = 256 << 20
MAX_CHAIN = 10_000  # responses followed back through previous_response_id

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    previous_id TEXT,
    response TEXT NOT NULL,
    input TEXT NOT NULL,
    size INTEGER NOT NULL
)
"""


def default_path() -> Path:
    return models_dir().parent / "responses.sqlite3"


class ChainBroken(Exception):
    """A response in the chain is no longer stored (dropped, or deleted)."""

    def __init__(self, missing: str):
        super().__init__(missing)
        self.missing = missing


class ResponseStore:
    def __init__(self, path: str | Path, max_responses: int = DEFAULT_MAX_RESPONSES,
                 max_bytes: int = DEFAULT_MAX_BYTES):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_responses, self.max_bytes = max_responses, max_bytes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    async def _run(self, fn, *args):
        return await asyncio.to_thread(self._locked, fn, *args)

    def _locked(self, fn, *args):
        with self._lock:
            return fn(*args)

    # writes -----------------------------------------------------------------------------------
    async def save(self, response: dict, input_items: list[dict], previous_id: str | None) -> None:
        await self._run(self._save, response, input_items, previous_id)

    def _save(self, response: dict, input_items: list[dict], previous_id: str | None) -> None:
        body, items = json.dumps(response, ensure_ascii=False), json.dumps(input_items, ensure_ascii=False)
        size = len(body) + len(items)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT OR REPLACE INTO responses (id, previous_id, response, input, size) VALUES (?, ?, ?, ?, ?)",
                       (response["id"], previous_id, body, items, size))
            count, total = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM responses").fetchone()
            if count > self.max_responses or total > self.max_bytes:
                drop, freed = [], 0
                for seq, row_size in db.execute("SELECT seq, size FROM responses ORDER BY seq"):
                    if count - len(drop) <= self.max_responses and total - freed <= self.max_bytes:
                        break
                    drop.append((seq,))
                    freed += row_size
                db.executemany("DELETE FROM responses WHERE seq = ?", drop)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def delete(self, response_id: str) -> bool:
        return await self._run(lambda: self._db.execute("DELETE FROM responses WHERE id = ?", (response_id,)).rowcount > 0)

    # reads ------------------------------------------------------------------------------------
    def _row(self, response_id: str):
        return self._db.execute("SELECT response, input, previous_id FROM responses WHERE id = ?",
                                (response_id,)).fetchone()

    async def get(self, response_id: str) -> dict | None:
        row = await self._run(self._row, response_id)
        return json.loads(row[0]) if row else None

    async def input_items(self, response_id: str) -> list[dict] | None:
        row = await self._run(self._row, response_id)
        return json.loads(row[1]) if row else None

    async def conversation(self, response_id: str) -> list[tuple[list[dict], dict]] | None:
        """(input items, response) of every response in the chain that ends with `response_id`, oldest
        first; None when `response_id` is not stored. Raises ChainBroken when an earlier one is gone."""
        return await self._run(self._chain, response_id)

    def _chain(self, response_id: str):
        chain, current = [], response_id
        while current is not None and len(chain) < MAX_CHAIN:
            row = self._row(current)
            if row is None:
                if not chain:
                    return None
                raise ChainBroken(current)
            chain.append((json.loads(row[1]), json.loads(row[0])))
            current = row[2]
        chain.reverse()
        return chain

    async def stats(self) -> dict:
        count, total = await self._run(
            lambda: self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM responses").fetchone())
        return {"responses": count, "bytes": total}


class StoreMiddleware:
    """Hands the store (or None: --no-store) to handlers through the request scope."""

    def __init__(self, app, store: ResponseStore | None):
        self.app, self.store = app, store

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            scope.setdefault("state", {})["response_store"] = self.store
        await self.app(scope, receive, send)


def current():
    from connexion import context

    try:
        return context.scope["state"].get("response_store")
    except (KeyError, RuntimeError):
        return None
