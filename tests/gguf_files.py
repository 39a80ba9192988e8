"""Small GGUF files written from scratch, for the startup-fault tests (no llama.cpp involved)."""
from __future__ import annotations

import struct
from pathlib import Path


def _string(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("<Q", len(raw)) + raw


def write_gguf(path: Path, metadata: dict, tensors: list[tuple[str, list[int]]], *, sparse: bool = False) -> Path:
    """A GGUF v3 file with string/uint32 metadata and F32 tensors (zeros). `sparse`: the tensor data
    is a hole in the file, so a file of any size costs no disk."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata)))
    for key, value in metadata.items():
        out += _string(key)
        out += struct.pack("<I", 8) + _string(value) if isinstance(value, str) else struct.pack("<II", 4, value)
    offset = 0
    for name, dims in tensors:
        out += _string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", 0, offset)  # F32
        n = 4
        for d in dims:
            n *= d
        offset += -(-n // 32) * 32
    out += b"\0" * (-len(out) % 32)
    with open(path, "wb") as f:
        f.write(out)
        if sparse:
            f.truncate(len(out) + offset)
        else:
            f.write(b"\0" * offset)
    return path
