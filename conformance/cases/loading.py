"""A request while the model loads gets 503 + Retry-After, then succeeds once it is loaded."""
from __future__ import annotations

import time

from conformance.checks import error, expect
from conformance.runner import NotObserved, case
from conformance.target import Target

ROUTE = "/chat/completions"


@case("loading.retry_after", "POST /chat/completions", "503 while loading", "reference", needs_model=False)
def retry_after_then_ready(t: Target) -> None:
    response = t.post(ROUTE, t.chat_body(max_tokens=1))
    if response.status_code == 200:  # only a success proves the model is loaded; a 404 or 500 is a failure
        raise NotObserved("the model was already loaded (HTTP 200); run the suite while the server loads to check this")
    error(t, response, "POST", ROUTE, 503, type="server_error", code="model_loading")
    retry = response.headers.get("retry-after")
    expect(retry is not None, "503 without a Retry-After header")
    expect(retry.strip().isdigit(), f"Retry-After {retry!r} is not a whole number of seconds")
    deadline = time.monotonic() + 180
    while response.status_code == 503 and time.monotonic() < deadline:
        time.sleep(min(int(response.headers.get("retry-after", "1") or 1), 5))
        response = t.post(ROUTE, t.chat_body(max_tokens=1))
    expect(response.status_code == 200, f"after loading, expected 200, got {response.status_code}")
