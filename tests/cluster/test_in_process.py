"""What a replica does with one request, without Ray: Hearth's own app run in process
(hearth/cluster/asgi.py over hearth/cluster/app.py's builder), on the real model."""
from __future__ import annotations

import asyncio
import json
import time

from hearth.cluster import app as hearth_app
from hearth.cluster.asgi import InProcessApp, portable_scope


def scope(method: str, path: str, body: bytes = b"") -> dict:
    headers = [(b"host", b"cluster"), (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    return portable_scope({"method": method, "path": path, "query_string": b"", "headers": headers,
                           "http_version": "1.1", "scheme": "http", "client": ("127.0.0.1", 5), "server": None})


async def answer(app: InProcessApp, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    status, out = None, b""
    async for batch in app.stream(scope(method, path, body), body):
        for item in batch:
            if item[0] == "start":
                status = item[1]
            else:
                out += item[1]
    return status, out


def test_a_replica_serves_hearths_app_and_a_closed_stream_frees_its_slot():
    async def main():
        app, registry, names = hearth_app.build_app(hearth_app.ReplicaSettings(ctx_size=2048, parallel=1))
        server = InProcessApp(app)
        await server.start()
        try:
            while hearth_app.state_of(registry, names[0]) != "ready":
                await asyncio.sleep(0.05)
            status, body = await answer(server, "GET", "/v1/models")
            assert status == 200 and json.loads(body)["data"][0]["id"] == names[0]
            status, body = await answer(server, "POST", "/v1/chat/completions", b'{"model": "x"}')
            assert status == 400 and json.loads(body)["error"]["param"] == "messages"

            request = json.dumps({"model": "x", "stream": True, "max_tokens": 400, "temperature": 0,
                                  "messages": [{"role": "user", "content": "Count from 1 to 1000."}]}).encode()
            stream = server.stream(scope("POST", "/v1/chat/completions", request), request)
            seen = []
            async for batch in stream:
                seen += batch
                if sum(1 for m in seen if m[0] == "body" and m[1].startswith(b"data: {")) >= 3:
                    break
            assert seen[0][0] == "start" and seen[0][1] == 200
            assert hearth_app.engine_stats(registry)["outstanding"] == 1
            await stream.aclose()  # what a cancelled handle call does to the replica's generator
            t0 = time.monotonic()
            while hearth_app.engine_stats(registry)["outstanding"] and time.monotonic() - t0 < 1.0:
                await asyncio.sleep(0.01)
            stats = hearth_app.engine_stats(registry)
            assert stats["outstanding"] == 0 and stats["running"] == 0 and stats["cancelled"] == 1
            assert stats["completion_tokens"] < 400
        finally:
            await server.stop()

    asyncio.run(main())
