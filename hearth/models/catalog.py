"""The models on disk: a directory in LM Studio's layout, scanned into catalog entries.

Layout (LM Studio's own, so its models folder works as is):

    <models dir>/<publisher>/<model>/<file>.gguf
    e.g. ~/.cache/hearth/models/HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf

Keys, as LM Studio shows a GGUF it did not download from its own hub:
- the `<model>` folder's name, lower-cased, without a trailing `-GGUF`: `smollm2-135m-instruct`;
- embedding models are prefixed `text-embedding-`: `text-embedding-all-minilm-l6-v2`;
- a folder holding several quantizations gives one entry per file: `<key>@<quantization>` (`gemma-3-270m-it@q4_k_m`),
  and the bare key names the first of them;
- a key already taken by another publisher's folder becomes `<publisher>/<key>`.
A file placed directly in `<model>/` or in the models dir itself gets the publisher `local`.
Skipped: vision projectors (`mmproj*`), the 2nd..nth parts of split files, anything that is not a GGUF.

The type (`llm` or `embedding`) and `max_context_length` come from the file's own GGUF metadata
(read from its header here: no model is loaded to list the catalog).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from hearth import gguf

_QUANT = re.compile(r"(?i)[._-]((?:I?Q\d(?:_[A-Z0-9]+)*)|BF16|F16|F32)$")
_SPLIT = re.compile(r"-(\d{5})-of-\d{5}$")
_FTYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
           12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 32: "BF16"}


@dataclass(frozen=True)
class CatalogEntry:
    key: str  # what requests, `hearth load` and POST /api/v1/models/load name it by
    type: str  # "llm" | "embedding"
    path: Path
    publisher: str
    display_name: str
    size_bytes: int
    max_context_length: int  # the context the model was trained for (GGUF `<arch>.context_length`)
    architecture: str | None
    quantization: str | None  # e.g. "Q4_1"
    params_string: str | None  # e.g. "135M" (GGUF `general.size_label`)


# scanning ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _FileInfo:
    type: str
    max_context_length: int
    architecture: str | None
    quantization: str | None
    params_string: str | None


_cache: dict[tuple[str, int, int], _FileInfo] = {}  # (path, size, mtime_ns) -> what its header says


def _file_info(path: Path, stat: os.stat_result) -> _FileInfo:
    ident = (str(path), stat.st_size, stat.st_mtime_ns)
    if ident not in _cache:
        meta = gguf.read_metadata(path)
        arch = meta.get("general.architecture")
        embedding = gguf.is_embedding(meta)
        quant = _QUANT.search(_SPLIT.sub("", path.stem))
        _cache[ident] = _FileInfo(
            type="embedding" if embedding else "llm",
            max_context_length=int(meta.get(f"{arch}.context_length") or 0),
            architecture=arch,
            quantization=quant.group(1).upper() if quant else _FTYPES.get(meta.get("general.file_type")),
            params_string=meta.get("general.size_label"),
        )
    return _cache[ident]


def _base_key(folder: str, type_: str) -> str:
    key = re.sub(r"(?i)[-_.]gguf$", "", folder).lower()
    if type_ == "embedding" and not key.startswith("text-embedding-"):
        key = "text-embedding-" + key
    return key


def scan(models_dir: str | os.PathLike) -> list[CatalogEntry]:
    """Every usable GGUF under `models_dir`, sorted by key. Unreadable files are skipped."""
    root = Path(models_dir).expanduser()
    if not root.is_dir():
        return []
    groups: dict[tuple[str, str], list[tuple[Path, os.stat_result, _FileInfo]]] = {}
    for path in sorted(root.rglob("*.gguf")):
        rel = path.relative_to(root).parts
        name = path.name.lower()
        if name.startswith("mmproj") or any(p.startswith(".") for p in rel):
            continue
        split = _SPLIT.search(path.stem)
        if split and split.group(1) != "00001":
            continue
        try:
            stat = path.stat()
            info = _file_info(path, stat)
        except (OSError, ValueError):
            continue
        publisher = rel[0] if len(rel) >= 3 else "local"
        folder = rel[-2] if len(rel) >= 2 else _QUANT.sub("", _SPLIT.sub("", path.stem))
        groups.setdefault((publisher, folder), []).append((path, stat, info))
    entries, taken = [], set()
    for (publisher, folder), files in sorted(groups.items(), key=lambda kv: (kv[0][1].lower(), kv[0][0])):
        base = _base_key(folder, files[0][2].type)
        if base in taken:
            base = f"{publisher.lower()}/{base}"
        taken.add(base)
        for path, stat, info in files:
            key = base if len(files) == 1 else f"{base}@{(info.quantization or path.stem).lower()}"
            size = stat.st_size
            if _SPLIT.search(path.stem):  # a split model's size is all of its parts
                size = sum(p.stat().st_size for p in path.parent.glob(_SPLIT.sub("", path.stem) + "-*-of-*.gguf"))
            entries.append(CatalogEntry(
                key=key, type=info.type, path=path, publisher=publisher,
                display_name=re.sub(r"(?i)[-_.]gguf$", "", folder), size_bytes=size,
                max_context_length=info.max_context_length, architecture=info.architecture,
                quantization=info.quantization, params_string=info.params_string,
            ))
    return sorted(entries, key=lambda e: e.key)


class Catalog:
    """The models dir, rescanned when asked (a scan is cheap: headers are read once per file version)."""

    def __init__(self, models_dir: str | os.PathLike):
        self.models_dir = Path(models_dir).expanduser()

    def entries(self) -> list[CatalogEntry]:
        return scan(self.models_dir)

    def find(self, key: str) -> CatalogEntry | None:
        """The entry named `key` (case-insensitive); a bare key names the first of a folder's variants."""
        want = key.strip().lower()
        entries = self.entries()
        for entry in entries:
            if entry.key == want:
                return entry
        for entry in entries:
            if entry.key.split("@", 1)[0] == want:
                return entry
        return None
