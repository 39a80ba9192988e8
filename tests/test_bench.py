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
