"""The seed document's examples, unchanged but for the base URL: Node's openai package and curl."""
import json
import os
import shutil
import subprocess

import pytest

from support import ROOT

NODE_DIR = ROOT / "tests" / "node"


@pytest.mark.skipif(not (shutil.which("node") and shutil.which("npm")), reason="Node.js is not installed")
def test_node_openai_package_plain_and_streamed(server):
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=NODE_DIR, check=True, timeout=300)
    out = subprocess.run(["node", "seed_example.mjs"], cwd=NODE_DIR, env={**os.environ, "HEARTH_BASE_URL": server},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    plain, streamed = (json.loads(line) for line in out.stdout.splitlines())
    assert plain["plain"].strip() and streamed["streamed"].strip()


@pytest.mark.skipif(not shutil.which("curl"), reason="curl is not installed")
@pytest.mark.parametrize("stream", [False, True])
def test_curl_example(server, stream):
    body = {"model": "lmstudio-community/Meta-Llama-3.1-8B-Instruct-GGUF",
            "messages": [{"role": "system", "content": "You are a helpful assistant."},
                         {"role": "user", "content": "Explain quantization in two sentences."}],
            "temperature": 0.7, "max_tokens": 24, "stream": stream}
    out = subprocess.run(["curl", "-sS", "--fail-with-body", f"{server}/chat/completions",
                          "-H", "Content-Type: application/json", "-d", json.dumps(body)],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    if stream:
        events = [line for line in out.splitlines() if line]
        assert events[-1] == "data: [DONE]"
        text = "".join(json.loads(e[6:])["choices"][0]["delta"].get("content") or "" for e in events[1:-1])
    else:
        text = json.loads(out)["choices"][0]["message"]["content"]
    assert text.strip()
