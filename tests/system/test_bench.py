"""The benchmark's own logic, without servers: run order, paired ratios, finding llama-server."""
import asyncio

import pytest

from benchmarks import llama_server, report
from benchmarks.client import Target
from benchmarks.scenarios import NoGate, alternate


def test_runs_alternate_between_servers_and_share_what_is_prepared():
    calls = []

    async def one(t, shared):
        calls.append((t.label, shared))
        return {}

    targets = [Target("http://a/v1", "m", label="a"), Target("http://b/v1", "m", label="b")]
    runs = asyncio.run(alternate(targets, 3, one, NoGate(), prepare=lambda i: f"prompt{i}"))
    assert calls == [("a", "prompt0"), ("b", "prompt0"), ("b", "prompt1"), ("a", "prompt1"),
                     ("a", "prompt2"), ("b", "prompt2")]
    assert [r["repeat"] for r in runs["a"]] == [0, 1, 2] == [r["repeat"] for r in runs["b"]]


def _single(label, tps, other):
    runs = [{"e2e_tps": t, "decode_tps": t, "failure": None, "other_cpu": o, "repeat": i, "tokens": 128,
             "server_cpu_s": None} for i, (t, o) in enumerate(zip(tps, other))]
    return {"meta": {"label": label}, "single": {"runs": runs, "e2e_tps": sorted(tps)[len(tps) // 2]}}


def test_ratios_are_medians_over_back_to_back_pairs_quiet_ones_first():
    ours = _single("hearth", [100, 120, 90, 50], [0.0, 0.0, 0.02, 0.5])
    theirs = _single("llama-server", [100, 100, 100, 10], [0.0, 0.0, 0.0, 0.0])
    v = report.versus(ours, theirs)
    single = v["figures"]["single"]
    assert single["pairs"] == 3 and single["quiet_pairs"] == 3  # the busy pair (50 / 10) is left out
    assert single["ratio"] == pytest.approx(1.0)  # median of 1.0, 1.2, 0.9
    assert v["targets"]["single"]["met"] is True
    assert v["targets"]["aggregate8"]["met"] is None  # not measured


def test_when_no_pair_was_quiet_all_pairs_count():
    ours = _single("hearth", [80, 90], [0.5, 0.5])
    theirs = _single("llama-server", [100, 100], [0.5, 0.5])
    single = report.versus(ours, theirs)["figures"]["single"]
    assert (single["pairs"], single["quiet_pairs"]) == (2, 0)
    assert single["ratio"] == pytest.approx(0.85)


def test_llama_server_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LLAMA_SERVER", "/bin/true")
    assert llama_server.find() == "/bin/true"
    not_executable = tmp_path / "llama-server"
    not_executable.write_text("")
    monkeypatch.setenv("LLAMA_SERVER", str(not_executable))
    with pytest.raises(RuntimeError, match="not an executable"):
        llama_server.find()
    assert llama_server.find("/bin/true") == "/bin/true"  # --llama-server wins


def test_every_scenario_runs_against_two_servers_side_by_side(tmp_path):
    """The whole HTTP part of the bench over two stand-in servers (our real HTTP stack over a paced
    engine, no model): alternating runs, per-server sections, paired ratios and the issue's targets."""
    import argparse
    import subprocess
    import sys

    from benchmarks import bench
    from benchmarks.scenarios import PromptFactory
    from benchmarks.server import free_port, wait_ready

    procs, targets = [], []
    try:
        for label in ("hearth", "llama-server"):
            port = free_port()
            procs.append(subprocess.Popen([sys.executable, "-m", "benchmarks.http_cost", "--serve", str(port),
                                           "--rate", "2000"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
            wait_ready(f"http://127.0.0.1:{port}/v1", 60, procs[-1])
            targets.append(Target(f"http://127.0.0.1:{port}/v1", "paced", label=label, pid=procs[-1].pid))
        a = argparse.Namespace(scenarios=["single", "concurrency", "prefix", "burst"], levels=[1, 8], users=[1, 8],
                               repeats=2, quick=False, wait_quiet=0)
        res = asyncio.run(bench.run_http(a, targets, PromptFactory(), None))
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=15)
    assert set(res) == {"hearth", "llama-server"}
    for r in res.values():
        assert r["single"]["failures"] == 0 and len(r["single"]["runs"]) == 2
        assert r["concurrency"]["8"]["failures"] == 0 and r["concurrency"]["8"]["streams"] == 16
        assert r["prefix"]["failures"] == 0 and r["burst"]["8"]["failures"] == 0
    meta = {"model_id": "paced", "base_url": "-", "cpus": 2, "load_before": "0", "load_after": "0", "seconds": 1,
            "started": "now", "repeats": {"single": 2}}
    written = bench.write_results(res, {name: meta | {"label": name} for name in res}, tmp_path)
    assert {p.name for p in written} == {"hearth.json", "llama-server.json", "versus.json",
                                         "hearth-vs-llama-server.png"}
    v = report.load(tmp_path / "versus.json")
    # every repeat made a pair (how many of them were quiet depends on the machine the test runs on)
    assert v["figures"]["single"]["all_pairs"] == 2 and v["figures"]["aggregate8"]["all_pairs"] == 2
    assert set(v["targets"]) == {"single", "aggregate8", "prefix_fresh", "cached_over_fresh", "burst8_worst_over_single"}
    assert all(t["value"] is not None for t in v["targets"].values())
