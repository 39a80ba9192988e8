"""A deliberately broken "OpenAI-compatible" server: each route breaks the contract in a known way.

The conformance suite must report every one of these breakages as a failure (a case that cannot fail
is a defect). Standard library only, served from a thread on a free loopback port.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "broken-model"


def chat_completion(body: dict) -> dict:
    # Wrong shape: no `usage`, `message` lacks `role`, finish_reason outside the enum.
    return {"id": "x", "object": "chat.completion", "created": int(time.time()), "model": MODEL,
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"content": "hi", "refusal": None}, "logprobs": None, "finish_reason": "done"}]}


def chat_chunk(text: str) -> dict:
    return {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": MODEL, "system_fingerprint": None,
            "choices": [{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def send(self, status: int, body, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/v1/models":
            # Wrong shape: the model entry lacks object/created/owned_by.
            return self.send(200, {"object": "list", "data": [{"id": MODEL}]})
        if self.path.startswith("/v1/models/"):
            # Wrong status: every id "exists", unknown ones included.
            return self.send(200, {"id": self.path.rsplit("/", 1)[-1], "object": "model", "created": 0, "owned_by": "me"})
        # Wrong status and body for unknown routes and wrong methods: 200 with plain text.
        return self.send(200, b"ok", "text/plain")

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            return self.send(500, b"Internal Server Error", "text/plain")  # a 500 on malformed JSON
        if not isinstance(body, dict):
            return self.send(500, b"Internal Server Error", "text/plain")
        if self.path == "/v1/chat/completions":
            if body.get("stream"):
                return self.stream_without_done()
            return self.send(200, chat_completion(body))  # accepts anything: wrong statuses for every error case
        if self.path == "/v1/completions":
            return self.send(500, {"detail": "boom"})  # a 500 that is not even an OpenAI error body
        if self.path == "/v1/embeddings":
            # Batch order broken: indexes reversed; vectors all zeros.
            inputs = body.get("input") if isinstance(body.get("input"), list) else [body.get("input")]
            data = [{"object": "embedding", "index": len(inputs) - 1 - i, "embedding": [0.0, 0.0]} for i in range(len(inputs))]
            return self.send(200, {"object": "list", "data": data, "model": MODEL, "usage": {"prompt_tokens": 1, "total_tokens": 1}})
        return self.send(404, {"detail": "not found"})  # 404 without OpenAI's error body

    def stream_without_done(self):
        # A stream whose chunks never set finish_reason and that ends without `data: [DONE]`.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for piece in ("Hel", "lo"):
            self.wfile.write(f"data: {json.dumps(chat_chunk(piece))}\n\n".encode())
        self.close_connection = True


class BrokenServer:
    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
