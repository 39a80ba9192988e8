"""HTTP-level contract: routing errors, content types, CORS, and the API key the server must not demand."""
from __future__ import annotations

import httpx

from conformance.checks import error, expect, ok_json
from conformance.runner import case
from conformance.target import Target

ORIGIN = "http://localhost:5173"  # a browser app on another local port


@case("http.unknown_route", "any", "routing errors", "hearth", needs_model=False)
def unknown_route(t: Target) -> None:
    error(t, t.http.get("/no-such-route"), "GET", "/no-such-route", 404)
    error(t, t.post("/chat/no-such-route", {}), "POST", "/chat/no-such-route", 404)


@case("http.wrong_method", "POST /chat/completions", "routing errors", "hearth", needs_model=False)
def wrong_method(t: Target) -> None:
    error(t, t.http.get("/chat/completions"), "GET", "/chat/completions", 405)
    error(t, t.http.delete("/models"), "DELETE", "/models", 405)


@case("http.wrong_content_type", "POST /chat/completions", "routing errors", "hearth")
def wrong_content_type(t: Target) -> None:
    body = '{"model": "%s", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}' % t.model
    error(t, t.post("/chat/completions", content=body, headers={"Content-Type": "text/plain"}), "POST", "/chat/completions", 415)


@case("http.no_api_key", "POST /chat/completions", "authentication", "reference")
def no_api_key(t: Target) -> None:
    """The key is read but not validated: no header, or any value, is served."""
    with httpx.Client(base_url=t.base_url, timeout=60) as bare:
        ok_json(t, bare.post("/chat/completions", json=t.chat_body(max_tokens=1)), "POST", "/chat/completions")
        ok_json(t, bare.get("/models", headers={"Authorization": "Bearer definitely-not-a-key"}), "GET", "/models")


@case("http.cors_simple", "GET /models", "CORS", "reference")
def cors_simple(t: Target) -> None:
    response = t.http.get("/models", headers={"Origin": ORIGIN})
    allowed = response.headers.get("access-control-allow-origin")
    expect(allowed in ("*", ORIGIN), f"Access-Control-Allow-Origin {allowed!r} on a cross-origin GET, expected '*' or the origin")


@case("http.cors_preflight", "POST /chat/completions", "CORS", "reference", needs_model=False)
def cors_preflight(t: Target) -> None:
    response = t.http.request("OPTIONS", "/chat/completions", headers={
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    })
    expect(response.status_code in (200, 204), f"preflight answered {response.status_code}, expected 200 or 204")
    h = response.headers
    expect(h.get("access-control-allow-origin") in ("*", ORIGIN), f"Access-Control-Allow-Origin {h.get('access-control-allow-origin')!r}")
    methods = h.get("access-control-allow-methods", "")
    expect(methods.strip() == "*" or "POST" in methods.upper(), f"Access-Control-Allow-Methods {methods!r} lacks POST")
    headers = h.get("access-control-allow-headers", "").lower()
    expect(headers.strip() == "*" or all(x in headers for x in ("authorization", "content-type")),
           f"Access-Control-Allow-Headers {headers!r} lacks authorization/content-type")


@case("http.cors_on_errors", "POST /chat/completions", "CORS", "reference")
def cors_on_errors(t: Target) -> None:
    """A browser can read error bodies too: CORS headers on a 4xx."""
    response = t.http.post("/chat/completions", json={"model": t.model}, headers={"Origin": ORIGIN})
    error(t, response, "POST", "/chat/completions", 400, param="messages")  # the route exists and refused the body
    allowed = response.headers.get("access-control-allow-origin")
    expect(allowed in ("*", ORIGIN), f"Access-Control-Allow-Origin {allowed!r} on a {response.status_code}")


@case("http.body_too_large", "POST /chat/completions", "routing errors", "hearth")
def body_too_large(t: Target) -> None:
    """A 16 MiB body is refused up front with 413, not parsed, tokenized and then refused."""
    body = b'{"model": "m", "messages": [{"role": "user", "content": "' + b"a" * (16 << 20) + b'"}], "max_tokens": 1}'
    error(t, t.post("/chat/completions", content=body, headers={"Content-Type": "application/json"}), "POST", "/chat/completions", 413)
