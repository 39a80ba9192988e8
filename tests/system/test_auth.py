"""Optional API keys: 401 invalid_api_key on every route without a valid key; off by default."""
from __future__ import annotations

import httpx
import openai
import pytest

from hearth import auth
from support import FakeEngine, RunningServer, serving

KEYS = ("sk-one", "sk-two")
CHAT = {"model": "any", "messages": [{"role": "user", "content": "hi"}]}
ROUTES = [
    ("POST", "/v1/chat/completions", CHAT), ("POST", "/v1/completions", {"model": "m", "prompt": "a"}),
    ("POST", "/v1/embeddings", {"model": "m", "input": "a"}), ("GET", "/v1/models", None),
    ("GET", "/v1/models/fake-model", None), ("GET", "/v1/openapi.json", None),
    ("GET", "/api/v1/models", None), ("POST", "/api/v1/models/load", {"model": "x"}), ("GET", "/metrics", None),
    ("GET", "/no/such/route", None), ("DELETE", "/v1/models", None),
]


async def request(app, method, path, body=None, headers=None):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path, json=body, headers=headers)


@pytest.mark.anyio
@pytest.mark.parametrize("method,path,body", ROUTES)
@pytest.mark.parametrize("header", [None, "Bearer wrong", "Bearer ", "Basic c2stb25lOg==", "sk-one", "Bearer sk-onex"])
async def test_every_route_needs_a_valid_key(method, path, body, header):
    async with serving(FakeEngine(), api_keys=KEYS) as app:
        r = await request(app, method, path, body, {"Authorization": header} if header is not None else None)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_api_key" and error["param"] is None
    assert ("didn't provide" in error["message"]) == (header is None)


@pytest.mark.anyio
@pytest.mark.parametrize("key", KEYS)
async def test_each_configured_key_works(key):
    async with serving(FakeEngine(), api_keys=KEYS) as app:
        r = await request(app, "POST", "/v1/chat/completions", CHAT, {"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Hello!"
        r = await request(app, "GET", "/v1/models", None, {"authorization": f"bearer {key}"})  # scheme is case-blind
        assert r.status_code == 200


@pytest.mark.anyio
async def test_open_without_keys():
    async with serving(FakeEngine()) as app:
        r = await request(app, "POST", "/v1/chat/completions", CHAT)
    assert r.status_code == 200


@pytest.mark.anyio
async def test_cors_preflight_and_health_stay_open():
    async with serving(FakeEngine(), api_keys=KEYS, cors_origins=("http://page.example",)) as app:
        r = await request(app, "OPTIONS", "/v1/chat/completions", None, {
            "Origin": "http://page.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://page.example"
        r = await request(app, "GET", "/health")
        assert r.status_code == 200 and r.json() == {"status": "ok"}  # probes need no key
        for page in ("/", "/static/app.js"):  # the page loads, then asks for the key (Settings) on its first 401
            r = await request(app, "GET", page)
            assert r.status_code == 200, (page, r.status_code)
        # the 401 itself is readable by the page: it carries the CORS headers
        r = await request(app, "POST", "/v1/chat/completions", CHAT, {"Origin": "http://page.example"})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == "http://page.example"


def test_keys_from_flags_or_environment(monkeypatch):
    monkeypatch.setenv(auth.ENV, " a, ,b ")
    assert auth.configured_keys(None) == ("a", "b")
    assert auth.configured_keys(["c"]) == ("c",)
    monkeypatch.delenv(auth.ENV)
    assert auth.configured_keys(None) == ()


@pytest.mark.parametrize("host,warned", [("127.0.0.1", False), ("::1", False), ("localhost", False),
                                         ("0.0.0.0", True), ("::", True), ("192.168.1.5", True), ("myhost", True)])
def test_exposed_host_without_a_key_warns(host, warned):
    assert (auth.exposure_warning(host, ()) is not None) == warned
    assert auth.exposure_warning(host, ("k",)) is None


def test_real_server_with_a_key_through_the_openai_sdk():
    running = RunningServer(env={"HEARTH_API_KEY": "sk-real"})
    try:
        good = openai.OpenAI(base_url=running.url, api_key="sk-real", max_retries=0)
        reply = good.completions.create(model="m", prompt="Hi", max_tokens=2)
        assert reply.usage.completion_tokens <= 2
        bad = openai.OpenAI(base_url=running.url, api_key="lm-studio", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            bad.models.list()
        assert caught.value.code == "invalid_api_key"
    finally:
        running.stop()
