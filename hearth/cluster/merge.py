"""The cluster's own answers, merged from every replica's (no Ray here: tests feed it plain dicts).

Each replica reports, with its routing stats (`HearthReplica.record_routing_stats`), what its own Hearth
answers to GET /status, /metrics, /v1/models and /api/v1/models; the ingress answers those routes for
the whole cluster from these, in the single server's shapes:
- /status: the counters summed, the state the best of any replica's, the models and the recent requests
  of all, and `replicas` (each replica's state, load and models);
- /metrics: every sample summed over the replicas (the `_created` stamps: the earliest; a model's load
  time and readiness: the largest), plus `hearth_cluster_replicas`;
- /v1/models: every instance loaded on any replica, once; /api/v1/models: every model on disk, each
  loaded instance with the `replicas` that hold it.
Model loads and unloads go to every replica (`answer_of` picks the one answer the client gets).
"""
from __future__ import annotations

import json

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

SUMMED = ("in_flight", "queue_depth", "running", "prompt_tokens_total", "completion_tokens_total",
          "tokens_streamed_total")
STATES = ("ready", "loading", "failed", "empty")  # best first
MODEL_STATES = ("loaded", "loading", "not-loaded")
LARGEST = {"hearth_model_load_seconds", "hearth_model_ready"}  # per-model gauges: summing them means nothing


def _best(states, order) -> str:
    return min(states, key=lambda s: order.index(s) if s in order else len(order), default=order[-1])


def status(views: dict[str, dict]) -> dict:
    """GET /status of the cluster, from each replica's (by replica id)."""
    items = list(views.values())
    out = dict(items[0])
    for key in SUMMED:
        out[key] = sum(v.get(key, 0) for v in items)
    out["state"] = _best([v["state"] for v in items], STATES)
    out["started_at"] = min(v["started_at"] for v in items)
    out["uptime_seconds"] = max(v["uptime_seconds"] for v in items)
    models: dict[str, dict] = {}
    for v in items:
        for m in v["models"]:
            have = models.setdefault(m["id"], dict(m))
            have["state"] = _best([have["state"], m["state"]], STATES)
    out["models"] = list(models.values())
    recent = sorted((r for v in items for r in v["recent"]), key=lambda r: r["time"], reverse=True)
    out["recent"] = recent[:max(len(v["recent"]) for v in items)]
    out["model_management"] = all(v["model_management"] for v in items)
    out["replicas"] = [{"id": rid, "state": v["state"], "in_flight": v["in_flight"], "queue_depth": v["queue_depth"],
                        "running": v["running"], "models": [m["id"] for m in v["models"]]}
                       for rid, v in views.items()]
    return out


def metrics(texts: dict[str, str]) -> bytes:
    """GET /metrics of the cluster (Prometheus text), from each replica's."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple, float]] = {}
    for text in texts.values():
        for family in text_string_to_metric_families(text):
            families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
            merged = values.setdefault(family.name, {})
            for s in family.samples:
                key = (s.name, tuple(s.labels.items()))
                if key not in merged:
                    merged[key] = s.value
                elif s.name.endswith("_created"):
                    merged[key] = min(merged[key], s.value)
                elif family.name in LARGEST:
                    merged[key] = max(merged[key], s.value)
                else:
                    merged[key] += s.value
    for name, family in families.items():
        for (sample, labels), value in values[name].items():
            family.add_sample(sample, dict(labels), value)
    replicas = GaugeMetricFamily("hearth_cluster_replicas", "Replicas whose figures these are (Hearth on Ray Serve).")
    replicas.add_metric([], len(texts))
    out = [*families.values(), replicas]

    class Merged:
        def collect(self):
            return out

    registry = CollectorRegistry()
    registry.register(Merged())
    return generate_latest(registry)


def openai_models(lists: dict[str, dict]) -> dict:
    """GET /v1/models of the cluster: every instance any replica has loaded, once, in first-seen order."""
    seen: dict[str, dict] = {}
    for body in lists.values():
        for model in body.get("data", []):
            seen.setdefault(model["id"], model)
    return {"object": "list", "data": list(seen.values())}


def lmstudio_models(lists: dict[str, dict]) -> dict:
    """GET /api/v1/models of the cluster: each model on disk, with its loaded instances and, for each, the
    replicas holding it (a field Hearth adds to LM Studio's LoadedInstance)."""
    entries: dict[str, dict] = {}
    for rid, body in lists.items():
        for entry in body.get("models", []):
            have = entries.get(entry["key"])
            if have is None:
                have = entries[entry["key"]] = {**entry, "loaded_instances": []}
            have["state"] = _best([have.get("state", "not-loaded"), entry.get("state", "not-loaded")], MODEL_STATES)
            for instance in entry.get("loaded_instances", []):
                mine = next((i for i in have["loaded_instances"] if i["id"] == instance["id"]), None)
                if mine is None:
                    mine = {**instance, "replicas": []}
                    have["loaded_instances"].append(mine)
                mine["replicas"].append(rid)
    return {"models": list(entries.values())}


Answer = tuple  # (status, headers, body) of one replica


def answer_of(path: str, answers: list[Answer]) -> Answer | None:
    """The one answer to a request every replica answered: a load succeeds when it loaded on every replica
    (else the first failure); an unload, or GET /v1/models/{id}, when it succeeded on any (else the first failure)."""
    ok = [a for a in answers if a[0] == 200]
    failed = [a for a in answers if a[0] != 200]
    if path.endswith("/load"):
        return (failed or ok or [None])[0]
    return (ok or failed or [None])[0]


def json_body(data) -> bytes:
    return json.dumps(data).encode()
