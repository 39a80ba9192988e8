"""The page at / in Debian's chromium, over the shared real server and the real model."""
from __future__ import annotations

import time

import httpx

from .conftest import metric

CHAT = "/v1/chat/completions"


def ask(page, text: str, max_tokens: int) -> None:
    page.fill("#max-tokens", str(max_tokens))
    page.fill("#temperature", "0")
    page.fill("#prompt", text)
    page.keyboard.press("Enter")


def wait_until(check, timeout: float = 30, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)
    return value


def test_page_loads_with_status_and_no_console_errors(page, origin):
    page.wait_for_selector("#status-text:has-text('Ready')")
    assert page.text_content("#api-url") == f"{origin}/v1"
    model = httpx.get(f"{origin}/v1/models").json()["data"][0]["id"]
    assert page.text_content("#status-text") == f"Ready · {model} · CPU"  # where its layers run
    assert page.input_value("#model") == model
    assert page.text_content("#version") == httpx.get(f"{origin}/status").json()["version"]
    row = page.locator(f"#models tr[data-key='{model}']")
    assert row.locator("td").nth(2).text_content() == "loaded"
    if not httpx.get(f"{origin}/status").json()["model_management"]:
        # no model registry yet: the catalog shows the one model, and its button cannot act
        assert row.locator("button").is_disabled()
        assert page.is_visible("#models-note")
    page.wait_for_timeout(1500)  # a few status polls
    assert page.console.errors == []


def test_answer_streams_token_by_token_with_ttft_and_rate(page, origin):
    page.wait_for_selector("#status-text:has-text('Ready')")
    # count the DOM updates of the answer while it streams
    page.evaluate("""() => {
        window.updates = 0;
        new MutationObserver((records) => {
            for (const r of records) if (r.type === 'characterData' && r.target.parentElement?.closest('.msg.assistant')) window.updates++;
        }).observe(document.getElementById('messages'), {subtree: true, characterData: true, childList: true});
    }""")
    ask(page, "Count from one to twenty in words.", 24)
    page.wait_for_selector(".msg.assistant.streaming")
    page.wait_for_selector(".msg.assistant:not(.streaming)", timeout=240_000)
    answer = page.text_content(".msg.assistant .text")
    assert len(answer) > 20
    assert page.evaluate("window.updates") >= 10, "the answer did not arrive token by token"
    meta = page.text_content(".msg.assistant .meta")
    assert meta.startswith("TTFT ") and " tok/s · " in meta and "24 tokens" in meta, meta
    assert page.console.errors == []


def test_stop_cancels_the_request_on_the_server(page, origin):
    page.wait_for_selector("#status-text:has-text('Ready')")
    cancelled = metric(origin, "hearth_engine_cancelled_total")
    ask(page, "Write a very long story about a dragon who learns to cook.", 2000)
    page.wait_for_function("document.querySelector('.msg.assistant .text')?.textContent.length > 10",
                           timeout=240_000)
    assert metric(origin, "hearth_running_sequences") == 1
    page.keyboard.press("Escape")  # the page's Stop (the button does the same)
    page.wait_for_selector(".msg.assistant:not(.streaming)")
    assert page.text_content(".msg.assistant .meta").endswith("stopped")
    wait_until(lambda: metric(origin, "hearth_running_sequences") == 0, timeout=60)
    assert metric(origin, "hearth_engine_cancelled_total") == cancelled + 1
    produced = len(page.text_content(".msg.assistant .text"))
    page.wait_for_timeout(500)
    assert len(page.text_content(".msg.assistant .text")) == produced
    assert page.is_enabled("#send") and page.is_disabled("#stop")
    assert page.console.errors == []


def test_metrics_count_what_the_page_did(page, origin):
    page.wait_for_selector("#status-text:has-text('Ready')")
    ok = metric(origin, "hearth_requests_total", route=CHAT, status="200")
    tokens_out = metric(origin, "hearth_completion_tokens_total")
    ttft = metric(origin, "hearth_time_to_first_token_seconds_count")
    itl = metric(origin, "hearth_inter_token_latency_seconds_count")
    polls = metric(origin, "hearth_requests_total", route="/status", status="200")
    ask(page, "Say hello.", 12)
    page.wait_for_selector(".msg.assistant:not(.streaming)", timeout=240_000)
    n = int(page.text_content(".msg.assistant .meta").split(" tokens")[0].rsplit(" ", 1)[1])
    assert metric(origin, "hearth_requests_total", route=CHAT, status="200") == ok + 1
    assert metric(origin, "hearth_completion_tokens_total") == tokens_out + n
    assert metric(origin, "hearth_time_to_first_token_seconds_count") == ttft + 1
    assert metric(origin, "hearth_inter_token_latency_seconds_count") >= itl + 1
    deadline = time.monotonic() + 30  # the page polls /status every second (the answer may come sooner)
    while metric(origin, "hearth_requests_total", route="/status", status="200") <= polls:
        assert time.monotonic() < deadline, "the page stopped polling /status"
        time.sleep(0.2)
    # and the page's own table lists the request
    page.wait_for_selector(f"#recent tr:has-text('{CHAT}')")
    assert page.console.errors == []


def test_page_shows_the_load_then_ready_by_itself(browser):
    """The first seconds after `scripts/serve`: the page is up before the model, and says so."""
    from support import RunningServer

    running = RunningServer(load_delay=4, wait_ready=False)
    page = browser.new_page()
    try:
        origin = running.url.removesuffix("/v1")
        assert httpx.get(f"{origin}/health").status_code == 503
        page.goto(origin + "/")
        page.wait_for_selector("#status-text:has-text('Loading SmolLM2')")
        assert page.get_attribute("#status-dot", "class") == "dot loading"
        assert page.locator("#models progress").count() == 1  # the catalog row shows the load
        page.wait_for_selector("#status-text:has-text('Ready')", timeout=240_000)
        assert page.get_attribute("#status-dot", "class") == "dot ready"
        assert httpx.get(f"{origin}/health").status_code == 200
        # an embedding model on disk loads after the chat model: its row shows that load, then none
        page.wait_for_selector("#models progress", state="detached", timeout=240_000)
    finally:
        page.close()
        running.stop()


def test_load_and_unload_buttons_change_v1_models(page, origin):
    """The catalog's buttons drive LM Studio's /api/v1/models/load and /unload: a model on disk appears
    in GET /v1/models once Load finished, and leaves it once Unload finished."""
    page.wait_for_selector("#status-text:has-text('Ready')")
    catalog = httpx.get(f"{origin}/api/v1/models").json()["models"]
    key = next(m["key"] for m in catalog if m["type"] == "llm" and not m["loaded_instances"])
    loaded = lambda: {m["id"] for m in httpx.get(f"{origin}/v1/models").json()["data"]}  # noqa: E731
    assert key not in loaded()
    button = page.locator(f"#models tr[data-key='{key}'] button")
    button.wait_for()
    assert button.text_content() == "Load"
    button.click()
    wait_until(lambda: key in loaded(), timeout=120)
    page.wait_for_selector(f"#models tr[data-key='{key}'] button:has-text('Unload')", timeout=30_000)
    page.click(f"#models tr[data-key='{key}'] button:has-text('Unload')")
    wait_until(lambda: key not in loaded(), timeout=60)
    assert page.console.errors == []
