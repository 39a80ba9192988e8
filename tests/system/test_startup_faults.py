"""Startup faults through the real CLI: each is one line on stderr and exit 1, never a traceback,
never a banner before the port is bound."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from support import ROOT, free_port
from support import write_gguf

from hearth.models.defaults import default_model_path


def serve(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hearth", "serve", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, timeout=timeout)


def one_line_failure(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "listening" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hearth: "), done.stderr
    return lines[0]


def test_missing_file(tmp_path):
    line = one_line_failure(serve("--model", str(tmp_path / "nope.gguf"), "--port", str(free_port())))
    assert "no such model file" in line and "nope.gguf" in line


def test_not_a_gguf(tmp_path):
    (tmp_path / "notes.gguf").write_text("these are not weights\n" * 10)
    line = one_line_failure(serve("--model", str(tmp_path / "notes.gguf"), "--port", str(free_port())))
    assert "is not a GGUF model file" in line


def test_a_directory(tmp_path):
    line = one_line_failure(serve("--model", str(tmp_path), "--port", str(free_port())))
    assert "is not a file" in line


def test_truncated_download(tmp_path):
    """The real model, cut short as an interrupted download leaves it."""
    truncated = tmp_path / "SmolLM2.gguf"
    with open(default_model_path(), "rb") as src, open(truncated, "wb") as dst:
        dst.write(src.read(default_model_path().stat().st_size * 2 // 3))
    line = one_line_failure(serve("--model", str(truncated), "--port", str(free_port())))
    assert "is truncated" in line and "missing" in line


@pytest.mark.parametrize("where,garbage", [(8, b"\xff" * 16), (24, b"\xee" * 8), (5, b"\x07")])
def test_corrupt_header(tmp_path, where, garbage):
    """Counts, string lengths and the version overwritten with nonsense (the first 2 MB of the real
    model: the header is whole, the tensors missing, so only the header checks can speak first)."""
    corrupt = tmp_path / "corrupt.gguf"
    with open(default_model_path(), "rb") as src:
        head = bytearray(src.read(2 << 20))
    head[where:where + len(garbage)] = garbage
    corrupt.write_bytes(bytes(head))
    line = one_line_failure(serve("--model", str(corrupt), "--port", str(free_port())))
    assert "corrupt" in line or "version" in line or "truncated" in line


def test_port_in_use():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_failure(serve("--port", str(port)))
    assert f"port {port}" in line and "already in use" in line


def test_unwritable_cache_dir(tmp_path):
    """The default model is not cached and the cache cannot be created (a file stands in the way;
    permissions would not stop root)."""
    (tmp_path / "file").write_text("")
    line = one_line_failure(serve("--port", str(free_port()), env={"HEARTH_CACHE": str(tmp_path / "file" / "x")}))
    assert "cannot write the model cache" in line and "HEARTH_CACHE" in line


def test_model_too_large_for_memory(tmp_path):
    """A well-formed GGUF whose one tensor is 256 GB (a sparse file: no disk used)."""
    huge = write_gguf(tmp_path / "huge.gguf", {"general.architecture": "llama", "llama.block_count": 32,
                                               "llama.embedding_length": 4096, "llama.attention.head_count": 32},
                      [("token_embd.weight", [4096, 16 << 20])], sparse=True)
    line = one_line_failure(serve("--model", str(huge), "--port", str(free_port())))
    assert "needs 260.0 GB of host RAM" in line and "available)" in line and "--ctx-size" in line


def test_a_gguf_llama_cpp_cannot_load_exits_1_after_the_bind(tmp_path):
    """Well-formed but of an unknown architecture: only llama.cpp can tell. The port was bound (the
    serving line is true), then the load fails: one more line, exit 1, no traceback."""
    odd = write_gguf(tmp_path / "odd.gguf", {"general.architecture": "hearth-nonsense"}, [("w", [4, 4])])
    done = serve("--model", str(odd), "--port", str(free_port()), "--host", "0.0.0.0")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("hearth: WARNING: listening on 0.0.0.0 without an API key")
    assert "is listening on" in lines[1]  # the banner, once the port is bound
    assert lines[-1].startswith("hearth: could not load the model: llama.cpp could not load")
