"""The cluster's /status, /metrics and model lists merged from each replica's (hearth/cluster/merge.py), without Ray."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hearth.cluster import merge


def replica_metrics(answers: int, ttft: float, loaded: float) -> str:
    r = CollectorRegistry()
    Counter("hearth_requests", "HTTP requests.", ["route", "status"], registry=r) \
        .labels("/v1/chat/completions", "200").inc(answers)
    Histogram("hearth_time_to_first_token_seconds", "TTFT.", ["model"], buckets=(0.1, 1.0), registry=r) \
        .labels("m").observe(ttft)
    Gauge("hearth_model_load_seconds", "Load time.", ["model"], registry=r).labels("m").set(loaded)
    return generate_latest(r).decode()


def samples(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_metrics_sum_over_the_replicas():
    out = samples(merge.metrics({"a": replica_metrics(3, 0.05, 1.5), "b": replica_metrics(4, 0.5, 2.5)}).decode())
    assert out[("hearth_requests_total", (("route", "/v1/chat/completions"), ("status", "200")))] == 7
    assert out[("hearth_time_to_first_token_seconds_bucket", (("le", "0.1"), ("model", "m")))] == 1
    assert out[("hearth_time_to_first_token_seconds_bucket", (("le", "1.0"), ("model", "m")))] == 2
    assert out[("hearth_time_to_first_token_seconds_count", (("model", "m"),))] == 2
    assert out[("hearth_model_load_seconds", (("model", "m"),))] == 2.5  # the largest, not a sum
    assert out[("hearth_cluster_replicas", ())] == 2


def status(state, in_flight, prompt, models, recent_times):
    return {"version": "1", "state": state, "started_at": 100.0 + in_flight, "uptime_seconds": 5.0 + in_flight,
            "models": [{"id": m, "state": state, "n_ctx": 2048, "load_seconds": 1.0, "offload": "CPU"} for m in models],
            "in_flight": in_flight, "queue_depth": 0, "running": in_flight, "prompt_tokens_total": prompt,
            "completion_tokens_total": 1, "tokens_streamed_total": 1, "model_management": True,
            "recent": [{"id": str(t), "time": t} for t in recent_times]}


def test_status_sums_and_lists_the_replicas():
    out = merge.status({"a": status("ready", 1, 10, ["m"], [3, 1]), "b": status("loading", 2, 5, ["m", "n"], [2])})
    assert (out["in_flight"], out["running"], out["prompt_tokens_total"]) == (3, 3, 15)
    assert out["state"] == "ready" and out["started_at"] == 101.0 and out["uptime_seconds"] == 7.0
    assert [m["id"] for m in out["models"]] == ["m", "n"] and out["models"][0]["state"] == "ready"
    assert [r["time"] for r in out["recent"]] == [3, 2]
    assert [(r["id"], r["models"]) for r in out["replicas"]] == [("a", ["m"]), ("b", ["m", "n"])]


def test_model_lists_show_every_replicas_instances():
    entry = {"key": "m", "type": "llm", "state": "not-loaded", "loaded_instances": []}
    loaded = {**entry, "state": "loaded", "loaded_instances": [{"id": "m", "config": {"context_length": 2048}}]}
    out = merge.lmstudio_models({"a": {"models": [loaded]}, "b": {"models": [entry]}, "c": {"models": [loaded]}})
    assert out["models"][0]["state"] == "loaded"
    assert out["models"][0]["loaded_instances"] == [{"id": "m", "config": {"context_length": 2048}, "replicas": ["a", "c"]}]
    lists = {"a": {"data": [{"id": "m"}]}, "b": {"data": [{"id": "n"}, {"id": "m"}]}}
    assert [m["id"] for m in merge.openai_models(lists)["data"]] == ["m", "n"]


def test_a_load_succeeds_only_everywhere_and_an_unload_anywhere():
    ok, missing = (200, [], b"ok"), (404, [], b"missing")
    assert merge.answer_of("/api/v1/models/load", [ok, missing]) == missing
    assert merge.answer_of("/api/v1/models/load", [ok, ok]) == ok
    assert merge.answer_of("/api/v1/models/unload", [missing, ok]) == ok
    assert merge.answer_of("/api/v1/models/unload", []) is None
