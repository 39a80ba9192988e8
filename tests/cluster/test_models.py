"""Models and figures across the replicas of a real cluster (the session's cluster, tests/cluster/conftest.py):
a load or unload through the cluster's port reaches every replica, a just-in-time load spreads to every
replica, and /status, /metrics and the model lists are the cluster's. Skipped when Ray is not installed."""
from __future__ import annotations

import time

import httpx
import pytest

pytest.importorskip("ray.serve", reason="Ray is not installed")

from support import wait_for  # noqa: E402

SECOND = "gemma-3-270m"  # a default model on disk, not loaded at start


def replicas(cluster) -> set[str]:
    return set(cluster.stats()["replicas"])


def holders(cluster, key: str) -> set[str]:
    """The replicas holding an instance of `key`, as the cluster's GET /api/v1/models says."""
    models = httpx.get(cluster.root + "/api/v1/models", timeout=30).json()["models"]
    entry = next(m for m in models if m["key"] == key)
    return {rid for instance in entry["loaded_instances"] for rid in instance["replicas"]}


def each_replica_lists(cluster, model_id: str) -> bool:
    status = httpx.get(cluster.root + "/status", timeout=30).json()
    return len(status["replicas"]) == 2 and all(model_id in r["models"] for r in status["replicas"])


def chat(cluster, model: str, text: str, timeout: float = 120) -> httpx.Response:
    """A chat request, retried while the model loads (503 model_loading), as the SDKs retry."""
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.post(cluster.url + "/chat/completions", timeout=120, json={
            "model": model, "max_tokens": 3, "temperature": 0, "messages": [{"role": "user", "content": text}]})
        if r.status_code != 503 or time.monotonic() > deadline:
            return r
        time.sleep(min(float(r.headers.get("retry-after", 1)), 2))


def test_a_load_and_an_unload_reach_every_replica(cluster):
    r = httpx.post(cluster.root + "/api/v1/models/load", json={"model": SECOND}, timeout=300)
    assert r.status_code == 200 and r.json()["instance_id"] == SECOND, r.text
    try:
        # the moment the load answers, every replica lists it, and so do the cluster's lists
        assert holders(cluster, SECOND) == replicas(cluster)
        assert SECOND in [m["id"] for m in httpx.get(cluster.url + "/models", timeout=30).json()["data"]]
        assert httpx.get(cluster.url + f"/models/{SECOND}", timeout=30).json()["id"] == SECOND
        assert each_replica_lists(cluster, SECOND)
        answer = chat(cluster, SECOND, "Say hi.")
        assert answer.status_code == 200 and answer.json()["model"] == SECOND
    finally:
        r = httpx.post(cluster.root + "/api/v1/models/unload", json={"instance_id": SECOND}, timeout=120)
    assert r.status_code == 200 and r.json()["instance_id"] == SECOND, r.text
    assert holders(cluster, SECOND) == set()
    assert SECOND not in [m["id"] for m in httpx.get(cluster.url + "/models", timeout=30).json()["data"]]
    assert httpx.get(cluster.url + f"/models/{SECOND}", timeout=30).status_code == 404
    gone = httpx.post(cluster.root + "/api/v1/models/unload", json={"instance_id": SECOND}, timeout=120)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "model_not_found"


def test_a_model_named_in_a_request_loads_on_every_replica(cluster):
    try:
        answer = chat(cluster, SECOND, "Say hello.")  # loaded just in time by the replica it reaches
        assert answer.status_code == 200 and answer.json()["model"] == SECOND, answer.text
        # ... and by every other replica, without a request reaching them
        assert wait_for(lambda: holders(cluster, SECOND) == replicas(cluster), 60, step=0.5), holders(cluster, SECOND)
        assert wait_for(lambda: each_replica_lists(cluster, SECOND), 5)
    finally:
        r = httpx.post(cluster.root + "/api/v1/models/unload", json={"instance_id": SECOND}, timeout=120)
    assert r.status_code == 200 and holders(cluster, SECOND) == set()


def _chat_answers(metrics_text: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(s.value for f in text_string_to_metric_families(metrics_text) for s in f.samples
               if s.name == "hearth_requests_total" and s.labels == {"route": "/v1/chat/completions", "status": "200"})


def test_status_and_metrics_are_the_clusters(cluster):
    def status():
        return httpx.get(cluster.root + "/status", timeout=30).json()

    def metrics():
        return httpx.get(cluster.root + "/metrics", timeout=30).text

    time.sleep(1.5)  # every replica reported what it finished before
    before, answers_before = status(), _chat_answers(metrics())
    served, prompt, completion = set(), 0, 0
    for i in range(16):  # until both replicas answered some: the figures must add up over both
        r = chat(cluster, "x", f"Question {i}: " + f"what is {i} times {i + 3}? " * (40 + i))
        assert r.status_code == 200
        served.add(r.headers["x-hearth-replica"])
        prompt += r.json()["usage"]["prompt_tokens"]
        completion += r.json()["usage"]["completion_tokens"]
        if len(served) == 2 and i >= 3:
            break
    assert len(served) == 2
    n = i + 1
    assert wait_for(lambda: _chat_answers(metrics()) == answers_before + n, 5), (_chat_answers(metrics()), answers_before, n)
    after = wait_for(lambda: (s := status())["prompt_tokens_total"] == before["prompt_tokens_total"] + prompt and s, 5)
    assert after, (status()["prompt_tokens_total"], before["prompt_tokens_total"], prompt)
    assert after["completion_tokens_total"] == before["completion_tokens_total"] + completion
    assert {r["id"] for r in after["replicas"]} == replicas(cluster) and after["state"] == "ready"
    assert after["in_flight"] == sum(r["in_flight"] for r in after["replicas"])
    text = metrics()
    assert "hearth_cluster_replicas 2.0" in text and "# TYPE hearth_requests_total counter" in text
