"""GGUF headers: the one reader of model files' metadata, and the check that a file is whole.

`read_metadata(path)` gives the header's scalar and string key/values (what the catalog lists);
`is_embedding(meta)` says whether a model is an embedding model; `check(path)` also reads the tensor
table and is run before llama.cpp ever sees a file.

llama.cpp answers a bad file with a NULL model and a log line (silenced by default), and some
malformed headers can abort the process. This reads the header (key/values and tensor table) with
bounds checks on every read and checks that every tensor's data lies inside the file, so a missing,
foreign, truncated or corrupt file becomes one sentence the user can act on.

`check(path)` raises `BadModelFile`; `ModelFile` carries what the memory check needs.
"""
from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_MAX_DEPTH = 4  # arrays of arrays: real files use none
_MAX_DIMS = 8
# ggml tensor type -> (elements per block, bytes per block), as in ggml's type traits
_TYPE_SIZES = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 36),
    10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
    16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18), 21: (256, 110), 22: (256, 82),
    23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2),
    34: (256, 54), 35: (256, 66), 39: (32, 17),
}


ENCODER_ARCHS = {"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3", "modern-bert", "neo-bert",
                 "t5encoder", "gemma-embedding"}


def is_embedding(meta: dict) -> bool:
    """An encoder architecture, or any model whose header names a pooling type."""
    arch = meta.get("general.architecture")
    return arch in ENCODER_ARCHS or f"{arch}.pooling_type" in meta


class BadModelFile(ValueError):
    """The message is one sentence for the user (it names the file)."""


@dataclass
class ModelFile:
    path: str
    size: int  # bytes on disk
    version: int
    n_tensors: int
    metadata: dict = field(default_factory=dict)  # scalars and strings (arrays are skipped)
    data_bytes: int = 0  # bytes of tensor data the header describes
    tensor_bytes: dict = field(default_factory=dict)  # tensor name -> bytes of its data (with `check`)

    def meta_int(self, suffix: str) -> int | None:
        """`<architecture>.<suffix>`, e.g. meta_int("block_count")."""
        value = self.metadata.get(f"{self.metadata.get('general.architecture')}.{suffix}")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


class _Reader:
    def __init__(self, buf, path: str):
        self.buf, self.pos, self.path = buf, 0, path

    def fail(self, what: str) -> BadModelFile:
        return BadModelFile(f"{self.path} is a truncated or corrupt GGUF file ({what} at byte {self.pos}).")

    def unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise self.fail("the header ends early")
        values = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def string(self) -> str:
        n = self.unpack("<Q")
        if self.pos + n > len(self.buf):
            raise self.fail("a string runs past the end of the file")
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def value(self, kind: int, depth: int = 0):
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY and depth < _MAX_DEPTH:
            item, n = self.unpack("<IQ")
            if item in _SCALARS:  # skipped, not decoded: vocabularies hold 100k+ entries
                end = self.pos + n * struct.calcsize(_SCALARS[item])
                if end > len(self.buf):
                    raise self.fail("an array runs past the end of the file")
                self.pos = end
            elif item == _STRING:  # a tight loop: tokenizer arrays hold 100k+ strings
                buf, pos, size, unpack = self.buf, self.pos, len(self.buf), struct.unpack_from
                for _ in range(n):
                    if pos + 8 > size:
                        raise self.fail("an array runs past the end of the file")
                    pos += 8 + unpack("<Q", buf, pos)[0]
                if pos > size:
                    raise self.fail("an array runs past the end of the file")
                self.pos = pos
            else:
                if n > len(self.buf) - self.pos:  # every element takes at least one byte
                    raise self.fail("an array runs past the end of the file")
                for _ in range(n):
                    self.value(item, depth + 1)
            return None
        raise self.fail(f"unknown value type {kind}")


def read_metadata(path: str | os.PathLike) -> dict:
    """The scalar and string key/values of a GGUF file's header (arrays, e.g. the vocabulary, are skipped).
    Raises BadModelFile (a ValueError) for a file that is not a readable GGUF header."""
    return check(path, tensors=False).metadata


def check(path: str | os.PathLike, tensors: bool = True) -> ModelFile:
    """Raises BadModelFile unless `path` is a readable GGUF whose header and (with `tensors`) tensor data
    are whole."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise BadModelFile(f"no such model file: {path}")
    if not os.path.isfile(path):
        raise BadModelFile(f"{path} is not a file (expected a .gguf model file).")
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 24 or f.read(4) != MAGIC:
                raise BadModelFile(f"{path} is not a GGUF model file (it does not start with 'GGUF').")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _parse(buf, path, size, tensors)
    except PermissionError:
        raise BadModelFile(f"cannot read the model file {path}: permission denied.") from None
    except OSError as exc:
        raise BadModelFile(f"cannot read the model file {path}: {exc.strerror or exc}.") from None


def _parse(buf, path: str, size: int, tensors_too: bool) -> ModelFile:
    r = _Reader(buf, path)
    r.pos = 4
    version = r.unpack("<I")
    if version not in (2, 3):
        raise BadModelFile(f"{path} is GGUF version {version}; this server reads versions 2 and 3.")
    n_tensors, n_kv = r.unpack("<QQ")
    if n_kv > size or n_tensors > size:
        raise r.fail("impossible counts in the header")
    info = ModelFile(path=path, size=size, version=version, n_tensors=n_tensors)
    for _ in range(n_kv):
        key = r.string()
        kind = r.unpack("<I")
        value = r.value(kind)
        if value is not None:
            info.metadata[key] = value
    if not tensors_too:
        return info
    tensors = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.unpack("<I")
        if not 1 <= n_dims <= _MAX_DIMS:
            raise r.fail(f"tensor {name!r} has {n_dims} dimensions")
        dims = [r.unpack("<Q") for _ in range(n_dims)]
        ggml_type, offset = r.unpack("<IQ")
        tensors.append((name, dims, ggml_type, offset))
    alignment = info.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise r.fail(f"general.alignment is {alignment!r}")
    data_start = -(-r.pos // alignment) * alignment
    end = data_start
    for name, dims, ggml_type, offset in tensors:
        if offset % alignment:
            raise r.fail(f"tensor {name!r} is not aligned")
        elements = 1
        for d in dims:
            elements *= d
        block, block_bytes = _TYPE_SIZES.get(ggml_type, (0, 0))
        nbytes = elements // block * block_bytes if block else 0  # an unknown type: llama.cpp decides
        info.tensor_bytes[name] = nbytes
        end = max(end, data_start + offset + nbytes)
    if end > size:
        raise BadModelFile(
            f"{path} is truncated: its header describes {end:,} bytes but the file has {size:,} "
            f"({end - size:,} missing; was the download interrupted?)."
        )
    info.data_bytes = end - data_start
    return info
