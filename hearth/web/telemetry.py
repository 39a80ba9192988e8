"""What the server counts, exposed at /metrics (prometheus_client) and /status (the page).

Telemetry is the registry's Hooks (hearth/models/hooks.py). Per streamed Delta the only work is
`tokens`: one bisect over the inter-token buckets and two additions, on the event loop that delivers
the token anyway (the Request takes the time). Everything else happens once per request (`finish`) or
once per scrape (`collect`), where the engines' own counters are read from the registry's snapshot.
"""
from __future__ import annotations

import bisect
import logging
import time
from collections import deque
from importlib import metadata
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from hearth.models.hooks import Hooks
from hearth.models.registry import Snapshot
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


class Telemetry(Hooks):
    """One per app: its own Prometheus registry (`metrics`), so that two apps in one process never share counts."""

    def __init__(self, snapshot: Callable[[], Snapshot], routes: dict[str, str] | None = None):
        self.snapshot = snapshot
        self.routes = set((routes or {}).values())  # route templates served, for what the page offers
        self.started_at = time.time()
        self.version = version()
        self.in_flight = 0
        self.prompt_total = self.completion_total = 0  # of finished requests, over every model, for the page
        self.tokens_streamed = 0  # tokens delivered to the HTTP layer so far, counted as they arrive
        self.recent: deque[RequestRecord] = deque(maxlen=RECENT)
        self.itl: dict[str, TokenHistogram] = {}
        self.load_seconds: dict[str, float] = {}
        self.metrics = r = CollectorRegistry()
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
        for request in rec.requests:
            rec.prompt_tokens += request.prompt_tokens
            rec.completion_tokens += max(request.completion_tokens, request.seen)  # a cancelled one may not know yet
        rec.requests = []
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

    # hooks (hearth/models/hooks.py) ----------------------------------------------------------------
    def model_loaded(self, instance) -> None:
        self.load_seconds[instance.id] = round(instance.load_seconds, 3)
        log.info("model %s ready in %.2f s", instance.id, instance.load_seconds, extra={
            "event": "model_ready", "fields": {"model": instance.id, "load_seconds": round(instance.load_seconds, 3)}})

    def model_failed(self, instance, seconds: float) -> None:
        log.error("loading %s failed (after %.2f s): %s", instance.entry.path, seconds, instance.error,
                  extra={"event": "model_failed", "fields": {"model": instance.id, "load_seconds": round(seconds, 3)}})

    def admitted(self, request) -> None:
        request.record = rec = current.get()
        if rec is not None:
            rec.model = request.id
            rec.requests.append(request)

    def first_token(self, request, k: int, seconds: float) -> None:
        self.ttft.labels(request.id).observe(seconds)
        if request.record is not None and request.record.ttft is None:
            request.record.ttft = seconds
        self.tokens_streamed += k

    def tokens(self, request, k: int, gap: float) -> None:
        """k tokens after a gap: k inter-token gaps of gap/k (the sum stays the elapsed time)."""
        itl = self.itl_for(request.id)
        itl.counts[bisect.bisect_left(itl.bounds, gap / k)] += k
        itl.sum += gap
        self.tokens_streamed += k

    # views --------------------------------------------------------------------------------------
    def state(self) -> str:
        return self._snapshot().state

    def _snapshot(self) -> Snapshot:
        try:
            return self.snapshot()
        except Exception:  # a scrape must never fail because a model is mid-change
            log.exception("the registry's snapshot failed")
            return Snapshot(state="empty", default_id=None, default=None, offload=None, stats={}, load_error=None)

    def status(self) -> dict:
        snap = self._snapshot()
        stats, state, model = snap.stats, snap.state, snap.default
        running = stats.get("running", 0)
        models = []
        if model is not None or state == "loading":
            mid = model.id if model is not None else snap.default_id or "(loading)"
            models.append({"id": mid, "state": state, "n_ctx": model.n_ctx if model is not None else None,
                           "load_seconds": self.load_seconds.get(mid), "offload": snap.offload})
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
        snap = t._snapshot()
        stats, model = snap.stats, snap.default.id if snap.default is not None else ""

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
            ready.add_metric([model], 1.0 if snap.state == "ready" else 0.0)
        yield ready
        itl = HistogramMetricFamily("hearth_inter_token_latency_seconds", "Time between two tokens of one "
                                    "sequence reaching the HTTP layer.", labels=["model"])
        for mid, h in t.itl.items():
            itl.add_metric([mid], h.buckets(), h.sum)
        yield itl
