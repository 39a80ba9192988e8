"""The server under test: its base URL, an httpx client for the wire, the openai SDK for replay."""
from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import openai

from conformance import sse
from conformance.spec import Spec

TIMEOUT = 120.0  # every generation the suite asks for is short; a loaded 2-core machine can still take a minute
ORACLE_LABEL, CONTRACT_LABEL = "openai", "contract"  # prefixes of shape problems: whose document was broken


class Target:
    def __init__(self, base_url: str, spec: Spec, api_key: str = "conformance", model: str | None = None,
                 oracle: Spec | None = None):
        self.base_url = base_url.rstrip("/")
        self.spec = spec  # the contract: the fuzz cases generate requests from it
        # every body is judged by both: OpenAI's published document (the oracle), then the contract
        self.documents: list[tuple[str, Spec]] = [(ORACLE_LABEL, oracle)] if oracle is not None else []
        self.documents.append((CONTRACT_LABEL, spec))
        self.api_key = api_key
        self._model = model
        # No keep-alive on the raw client: a case must not inherit a connection a previous case broke.
        self.http = httpx.Client(base_url=self.base_url, timeout=TIMEOUT, headers={"Authorization": f"Bearer {api_key}"},
                                 limits=httpx.Limits(max_keepalive_connections=0))
        self.sdk = openai.OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, timeout=TIMEOUT)
        self.notes: dict[str, Any] = {}
        self.schema_problems: list[str] = []  # contract violations seen by the running case

    def close(self) -> None:
        self.http.close()
        self.sdk.close()

    @property
    def model(self) -> str:
        """The model id to send: --model, else the first id GET /models lists, else a placeholder."""
        if self._model is None:
            try:
                self._model = self.http.get("/models").json()["data"][0]["id"]
            except Exception:
                self._model = "local-model"
        return self._model

    @property
    def origin(self) -> str:
        url = httpx.URL(self.base_url)
        return f"{url.scheme}://{url.netloc.decode()}"

    @property
    def root(self) -> str:
        """The base URL without its trailing /vN: where a server's other APIs (LM Studio's /api/v1) live.
        The origin for http://host:1234/v1; http://proxy/mutant for a mutating proxy's http://proxy/mutant/v1."""
        return re.sub(r"/v\d+$", "", self.base_url)

    # -- raw HTTP ---------------------------------------------------------------------------------
    def post(self, route: str, body: Any = None, *, content: bytes | str | None = None, headers: dict | None = None) -> httpx.Response:
        if content is not None:
            return self.http.post(route, content=content, headers=headers)
        return self.http.post(route, json=body, headers=headers)

    def stream(self, route: str, body: dict) -> tuple[httpx.Response, sse.Stream]:
        """POST and read an SSE stream whole (the response is closed when this returns)."""
        with self.http.stream("POST", route, json=body) as response:
            if response.status_code != 200:
                response.read()
                return response, sse.Stream()
            return response, sse.parse(response.iter_lines())

    def wait_ready(self, budget: float = 180.0) -> None:
        """Wait while the server answers 503 (a model still loading), honouring Retry-After."""
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            try:
                response = self.post("/chat/completions", self.chat_body(max_tokens=1))
            except httpx.TransportError:
                time.sleep(0.5)
                continue
            if response.status_code != 503:
                return
            time.sleep(min(float(response.headers.get("retry-after", "1") or 1), 5.0))

    # -- bodies -------------------------------------------------------------------------------------
    def chat_body(self, content: str = "Say hello.", max_tokens: int = 8, **extra: Any) -> dict:
        return {"model": self.model, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens, **extra}

    def completion_body(self, prompt: str = "The capital of France is", max_tokens: int = 8, **extra: Any) -> dict:
        return {"model": self.model, "prompt": prompt, "max_tokens": max_tokens, **extra}


def body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
