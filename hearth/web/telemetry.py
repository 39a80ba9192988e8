"""What the server counts, exposed at /metrics (prometheus_client) and /status (the page).

Per streamed token the only work is in `ObservedGeneration`: one `perf_counter()`, one bisect over
the inter-token buckets and two additions, on the event loop that delivers the token anyway.
Everything else happens once per request (`Telemetry.finish`) or once per scrape (`collect`), where
the engine's own counters are read from `engine.stats()`.
"""
from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import deque
from importlib import metadata
from pathlib import Path
from time import perf_counter

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from hearth.web.record import RequestRecord, current

log = logging.getLogger("hearth.web")

TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
ITL_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0)
DURATION_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
RECENT = 50  # requests kept for the page


def version() -> str:
    try:
        return metadata.version("hearth")
    except metadata.PackageNotFoundError:
        return "unknown"


class TokenHistogram:
    """A histogram cheap enough to feed once per token: a list increment, no lock. Fed and read on
    the event loop's thread only, so no update is lost."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def buckets(self) -> list[tuple[str, int]]:
        out, total = [], 0
        for bound, n in zip((*map(str, self.bounds), "+Inf"), self.counts):
            total += n
            out.append((bound, total))
        return out


class Telemetry:
    """One per app: its own Prometheus registry, so that two apps in one process never share counts."""

    def __init__(self, engine, routes: dict[str, str] | None = None):
        self.engine = engine
        self.routes = set((routes or {}).values())  # route templates served, for what the page offers
        self.started_at = time.time()
        self.version = version()
        self.in_flight = 0
        self.prompt_total = self.completion_total = 0  # of finished requests, over every model, for the page
        self.tokens_streamed = 0  # tokens delivered to the HTTP layer so far, counted as they arrive
        self.recent: deque[RequestRecord] = deque(maxlen=RECENT)
        self.itl: dict[str, TokenHistogram] = {}
        self.load_seconds: dict[str, float] = {}
        self.registry = r = CollectorRegistry()
        self.requests = Counter("hearth_requests", "HTTP requests answered, by route template and status.",
                                ["route", "status"], registry=r)
        self.duration = Histogram("hearth_request_duration_seconds", "API request duration, to the last byte.",
                                  ["route"], buckets=DURATION_BUCKETS, registry=r)
        self.in_flight_gauge = Gauge("hearth_requests_in_flight", "API requests being answered "
                                     "(not counting /health, /metrics, /status, /docs and the page).", registry=r)
        self.in_flight_gauge.set_function(lambda: self.in_flight)
        self.prompt_tokens = Counter("hearth_prompt_tokens", "Prompt (input) tokens of finished requests.",
                                     ["model"], registry=r)
        self.completion_tokens = Counter("hearth_completion_tokens", "Completion (output) tokens of finished "
                                         "requests, cancelled ones included.", ["model"], registry=r)
        self.ttft = Histogram("hearth_time_to_first_token_seconds", "From admission to the first token "
                              "reaching the HTTP layer, per sequence.", ["model"], buckets=TTFT_BUCKETS, registry=r)
        r.register(_Collector(self))

    # per sequence -------------------------------------------------------------------------------
    def itl_for(self, model: str) -> TokenHistogram:
        h = self.itl.get(model)
        if h is None:
            h = self.itl[model] = TokenHistogram(ITL_BUCKETS)
        return h

    # per request --------------------------------------------------------------------------------
    def finish(self, rec: RequestRecord, quiet: bool) -> bool:
        """Count a finished request; returns whether it belongs in the request log."""
        self.requests.labels(rec.route, str(rec.status)).inc()
        if quiet and rec.status != 500:  # probes and polls: counted; logged only when they break
            return False
        for g in rec.generations:
            rec.prompt_tokens += g.prompt_tokens
            rec.completion_tokens += max(g.completion_tokens or 0, g.seen)  # a cancelled one may not know yet
        rec.generations = []
        self.prompt_total += rec.prompt_tokens
        self.completion_total += rec.completion_tokens
        if rec.model:
            if rec.prompt_tokens:
                self.prompt_tokens.labels(rec.model).inc(rec.prompt_tokens)
            if rec.completion_tokens:
                self.completion_tokens.labels(rec.model).inc(rec.completion_tokens)
        if not quiet:
            self.duration.labels(rec.route).observe(rec.duration)
        self.recent.appendleft(rec)
        return True

    # models -------------------------------------------------------------------------------------
    def model_id(self) -> str | None:
        model = getattr(self.engine, "model", None)
        return getattr(model, "id", None)

    def _configured_id(self) -> str:
        """The id a model being loaded will have (the engine knows it only once loaded)."""
        config = getattr(self.engine, "config", None)
        if getattr(config, "model_id", None):
            return config.model_id
        path = getattr(config, "model_path", None)
        return Path(path).name.removesuffix(".gguf") if path else "(loading)"

    def state(self) -> str:
        state = getattr(self.engine, "state", "empty")
        return getattr(state, "value", state)

    def stats(self) -> dict:
        try:
            return self.engine.stats() or {}
        except Exception:  # a scrape must never fail because the engine is mid-change
            log.exception("engine.stats() failed")
            return {}

    def status(self) -> dict:
        stats = self.stats()
        running = stats.get("running", 0)
        model_id, state = self.model_id(), self.state()
        models = []
        if model_id or state == "loading":
            model = getattr(self.engine, "model", None)
            models.append({"id": model_id or self._configured_id(), "state": state,
                           "n_ctx": getattr(model, "n_ctx", None), "load_seconds": self.load_seconds.get(model_id)})
        return {
            "version": self.version,
            "state": state,
            "started_at": self.started_at,
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "models": models,
            "in_flight": self.in_flight,
            "queue_depth": queue_depth(stats),
            "running": running,
            "prompt_tokens_total": self.prompt_total,
            "completion_tokens_total": self.completion_total,
            "tokens_streamed_total": self.tokens_streamed,
            "recent": [_public(r) for r in self.recent],
            "model_management": {"/api/v1/models", "/api/v1/models/load", "/api/v1/models/unload"} <= self.routes,
        }


def queue_depth(stats: dict) -> int:
    """Admitted requests not yet decoding: submitted-and-unfinished minus running."""
    if "outstanding" in stats:
        return max(0, stats["outstanding"] - stats.get("running", 0))
    return stats.get("waiting", 0)


def _public(r: RequestRecord) -> dict:
    return {
        "id": r.id, "time": r.time, "method": r.method, "route": r.route or r.path, "model": r.model,
        "status": r.status, "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
        "ttft_ms": None if r.ttft is None else round(r.ttft * 1000, 1), "duration_ms": round(r.duration * 1000, 1),
    }


class _Collector:
    """Read at scrape time: the engine's gauges and counters, the inter-token histograms, load times."""

    def __init__(self, telemetry: Telemetry):
        self.t = telemetry

    def describe(self):
        return []

    def collect(self):
        t = self.t
        stats = t.stats()
        model = t.model_id() or ""

        def gauge(name, doc, value):
            g = GaugeMetricFamily(name, doc)
            g.add_metric([], value)
            return g

        def counter(name, doc, value):
            c = CounterMetricFamily(name, doc)
            c.add_metric([], value)
            return c

        yield gauge("hearth_queue_depth", "Requests admitted and waiting for a free sequence.", queue_depth(stats))
        yield gauge("hearth_running_sequences", "Sequences being prefilled or decoded.", stats.get("running", 0))
        yield gauge("hearth_kv_cells_used", "KV cache cells holding tokens (running sequences and cached "
                    "prefixes).", stats.get("kv_tokens", 0))
        yield gauge("hearth_kv_cells_running", "KV cache cells held by running sequences.",
                    stats.get("kv_tokens_running", 0))
        yield counter("hearth_prefix_cache_hits", "Requests that reused a cached prompt prefix.",
                      stats.get("cache_hits", 0))
        yield counter("hearth_prefix_cache_tokens", "Prompt tokens reused from the prefix cache instead of "
                      "evaluated.", stats.get("cached_prompt_tokens", 0))
        yield counter("hearth_prefill_tokens", "Prompt tokens evaluated.", stats.get("prefill_tokens", 0))
        yield counter("hearth_engine_cancelled", "Sequences cancelled before their end (client gone, Stop).",
                      stats.get("cancelled", 0))
        yield counter("hearth_engine_rejected", "Requests refused with 503 server_overloaded.",
                      stats.get("rejected", 0))
        loaded = GaugeMetricFamily("hearth_model_load_seconds", "How long loading each model took.",
                                   labels=["model"])
        for mid, seconds in t.load_seconds.items():
            loaded.add_metric([mid], seconds)
        yield loaded
        ready = GaugeMetricFamily("hearth_model_ready", "1 when the model answers requests.", labels=["model"])
        if model:
            ready.add_metric([model], 1.0 if t.state() == "ready" else 0.0)
        yield ready
        itl = HistogramMetricFamily("hearth_inter_token_latency_seconds", "Time between two tokens of one "
                                    "sequence reaching the HTTP layer.", labels=["model"])
        for mid, h in t.itl.items():
            itl.add_metric([mid], h.buckets(), h.sum)
        yield itl


class ObservedGeneration:
    """A Generation whose tokens are timed: TTFT once, then one inter-token gap per token.

    Measured where the Deltas reach the HTTP layer, i.e. what a client sees, bursts included."""

    __slots__ = ("_g", "_t", "_model", "_submitted", "_record", "seen")

    def __init__(self, generation, telemetry: Telemetry, model: str, submitted: float, record):
        self._g, self._t, self._model, self._submitted, self._record = generation, telemetry, model, submitted, record
        self.seen = 0  # tokens delivered to the handler

    def __getattr__(self, name):  # prompt_tokens, completion_tokens, finish_reason, ...
        return getattr(self._g, name)

    def cancel(self) -> None:
        self._g.cancel()

    def __aiter__(self):
        return self._iterate()

    async def _iterate(self):
        itl = self._t.itl_for(self._model)
        counts, bounds, bisect_left, t = itl.counts, itl.bounds, bisect.bisect_left, self._t
        last = 0.0
        async for item in self._g:
            tokens = getattr(item, "tokens", None)  # a Delta carries the tokens that made its text
            k = 1 if tokens is None else len(tokens)
            if k:
                now = perf_counter()
                if last:  # k tokens after a gap: k inter-token gaps of gap/k (the sum stays the elapsed time)
                    gap = now - last
                    counts[bisect_left(bounds, gap / k)] += k
                    itl.sum += gap
                else:
                    self._first(now)
                last = now
                self.seen += k
                t.tokens_streamed += k
            yield item

    def _first(self, now: float) -> None:
        ttft = now - self._submitted
        self._t.ttft.labels(self._model).observe(ttft)
        if self._record is not None and self._record.ttft is None:
            self._record.ttft = ttft


class ObservedEngine:
    """The engine as handlers see it, with every generation timed and every request's model and
    tokens recorded. Anything else is the engine's own."""

    def __init__(self, engine, telemetry: Telemetry):
        self._engine, self._t = engine, telemetry

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def start(self) -> None:
        self._engine.start()
        threading.Thread(target=self._watch_load, args=(time.monotonic(),), name="hearth-load-watch",
                         daemon=True).start()

    def _watch_load(self, began: float) -> None:
        """Times the load from start() to READY (10 ms resolution); logs the outcome once."""
        while self._t.state() == "loading":
            time.sleep(0.01)
        seconds = time.monotonic() - began
        if self._t.state() == "ready" and (mid := self._t.model_id()):
            self._t.load_seconds[mid] = round(seconds, 3)
            log.info("model %s ready in %.2f s", mid, seconds, extra={"event": "model_ready", "fields": {
                "model": mid, "load_seconds": round(seconds, 3)}})
        elif self._t.state() == "failed":
            log.error("the model failed to load (after %.2f s); see the log above", seconds,
                      extra={"event": "model_failed", "fields": {"load_seconds": round(seconds, 3)}})

    async def submit(self, *args, **kwargs):
        submitted = perf_counter()
        generation = await self._engine.submit(*args, **kwargs)
        model = self._t.model_id() or ""
        rec = current.get()
        observed = ObservedGeneration(generation, self._t, model, submitted, rec)
        if rec is not None:
            rec.model = model
            rec.generations.append(observed)
        return observed

    async def embed(self, *args, **kwargs):
        out = await self._engine.embed(*args, **kwargs)
        rec = current.get()
        if rec is not None:
            rec.model = self._t.model_id()
            rec.prompt_tokens += out.prompt_tokens
        return out
