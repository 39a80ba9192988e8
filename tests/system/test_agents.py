"""Real agents against Hearth over Gemma 3 270M (32k context), installed from npm at the versions in
tests/agents/package.json: OpenAI's Codex CLI (`codex exec` with a custom Responses provider) and
Claude Code (`claude -p`). Each completes a turn; what it sent and got is recorded by the conformance
proxy (unmutated) and judged: the events by OpenAI's schema / the anthropic SDK's types.

The answers of a 270M base model are not the point (they are gibberish); that the clients' real
requests (Codex: ~8k tokens, function, namespace, custom apply_patch and hosted tools, store false;
Claude Code: x-api-key, ?beta=true, max_tokens over the context, system blocks with cache_control,
tools with $schema, thinking) are served and their turns complete is. Codex's own apply_patch grammar,
as it sent it, then holds every call the model makes with it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import httpx
import pytest
from support import ROOT, RunningServer, assert_openai, parse_patch

from conformance.proxy import Proxy
from hearth.models.defaults import SECOND_CHAT, fetch

AGENTS = ROOT / "tests" / "agents"
pytestmark = pytest.mark.skipif(not (shutil.which("node") and shutil.which("npm")), reason="Node.js is not installed")


@pytest.fixture(scope="module")
def bins():
    if not (AGENTS / "node_modules" / ".bin" / "codex").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=AGENTS, check=True, timeout=900)
    return AGENTS / "node_modules" / ".bin"


@pytest.fixture(scope="module")
def gemma():
    running = RunningServer("--model", str(fetch(SECOND_CHAT)), "--ctx-size", "32768", "--parallel", "1",
                            "--request-timeout", "240")  # a cold 8k-token prefill takes 20-55 s here, more when busy
    yield running
    running.stop()


@pytest.fixture(scope="module")
def proxy(gemma):
    p = Proxy(gemma.url)
    yield p
    p.close()


ATTEMPTS = 3


@pytest.fixture(scope="module")
def codex_turn(bins, proxy, tmp_path_factory):
    """A `codex exec` turn through the proxy: (the last process, what every attempt sent and got). Codex
    sends no temperature; sampled so, the 270M base model now and then repeats Codex's environment block
    until the request's time (--request-timeout) runs out, and Codex fails a turn on that incomplete
    response (seen in 1 of 7 turns here): up to ATTEMPTS turns, each on its own work directory."""
    proxy.tape = []
    for _ in range(ATTEMPTS):
        work = tmp_path_factory.mktemp("codex")
        done = codex(bins, proxy.url("none"), work / "home", work)
        if done.returncode == 0:
            break
    tape, proxy.tape = proxy.tape, None
    return done, tape


def run(cmd: list, env: dict, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env={**os.environ, **env}, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=900)


def codex(bins, base_url: str, home, work) -> subprocess.CompletedProcess:
    home.mkdir(exist_ok=True)
    provider = f'model_providers.hearth={{name="Hearth", base_url="{base_url}", wire_api="responses", env_key="HEARTH_KEY"}}'
    # gpt-5.5: a model Codex knows, so that it sends that family's tools (its freeform apply_patch among them)
    return run([str(bins / "codex"), "exec", "--skip-git-repo-check", "-c", "model_provider=hearth", "-c", provider,
                "-m", "gpt-5.5", "Say hello."], {"CODEX_HOME": str(home), "HEARTH_KEY": "x"}, work)


def test_codex_exec_completes_a_turn(codex_turn):
    done, tape = codex_turn
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    turns = [r for r in tape if r.method == "POST" and r.path.endswith("/responses")]
    assert turns and all(r.status == 200 for r in turns)
    body = turns[0].body
    assert body["stream"] is True and body["store"] is False
    kinds = {(t.get("type"), t.get("name")) for t in body["tools"]}
    assert ("custom", "apply_patch") in kinds and ("web_search", None) in kinds
    assert turns[-1].events[-1]["type"] == "response.completed"
    for r in turns:  # an incomplete one only from a failed attempt: cut by --request-timeout
        ends = r.events[-1]
        assert ends["type"] == "response.completed" or (
            ends["type"] == "response.incomplete" and ends["response"]["incomplete_details"]["reason"] == "max_output_tokens")
        for event in r.events:
            assert_openai("ResponseStreamEvent", event)


def test_codexs_own_apply_patch_grammar_holds(codex_turn, gemma):
    sent = next(r.body for r in codex_turn[1] if r.path.endswith("/responses"))
    tool = next(t for t in sent["tools"] if t.get("name") == "apply_patch")
    assert tool["format"]["type"] == "grammar" and tool["format"]["syntax"] == "lark"
    completed = 0
    for ask, temperature in [("Create a file hello.txt that says hello world.", 0), ("Delete the file old.txt.", 0.8),
                             ("Create a file hello.txt that says hello world.", 0.8)]:
        r = httpx.post(f"{gemma.url}/responses", timeout=600, json={
            "model": "gpt-5.5", "input": ask, "tools": [tool], "temperature": temperature, "max_output_tokens": 300,
            "tool_choice": {"type": "custom", "name": "apply_patch"}}).json()
        call = r["output"][0]
        assert call["type"] == "custom_tool_call"
        if r["status"] == "completed":
            parse_patch(call["input"])
            completed += 1
        else:
            parse_patch(call["input"], complete=False)
    assert completed >= 1


def test_claude_code_completes_a_turn(bins, proxy, tmp_path):
    from anthropic.types import RawMessageStreamEvent
    from pydantic import TypeAdapter

    home = tmp_path / "home"
    home.mkdir()
    proxy.tape = []
    done = run([str(bins / "claude"), "-p", "Say hello.", "--bare"], {
        "HOME": str(home), "ANTHROPIC_BASE_URL": proxy.url("none").removesuffix("/v1"), "ANTHROPIC_API_KEY": "x",
        "CLAUDE_CODE_MAX_OUTPUT_TOKENS": "256", "DISABLE_TELEMETRY": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}, tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    tape, proxy.tape = proxy.tape, None
    turns = [r for r in tape if r.method == "POST" and r.path.split("?")[0].endswith("/messages")]
    assert turns and all(r.status == 200 for r in turns), [(r.path, r.status) for r in turns]
    body, headers = turns[0].body, {k.lower(): v for k, v in turns[0].headers.items()}
    assert headers.get("x-api-key") == "x" and "anthropic-version" in headers
    assert body["tools"] and any(isinstance(b, dict) and b.get("cache_control") for b in body["system"])
    adapter = TypeAdapter(RawMessageStreamEvent)
    for r in turns:
        if r.events is None:  # Claude Code's retry without streaming
            continue
        assert r.events[-1]["type"] == "message_stop", json.dumps(r.events[-2:])[:300]
        for event in r.events:
            if event["type"] != "ping":
                adapter.validate_python(event)
