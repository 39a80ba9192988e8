"""schemathesis in-process through ASGI against our app (see asgi_contract.py), in a child process:
llama.cpp is native code, and a crash there must fail this test, not end the pytest session."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def test_schemathesis_in_process_through_asgi():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(HERE / "asgi_contract.py"), "-q", "-p", "no:cacheprovider",
         "--rootdir", str(ROOT), "-o", "addopts="],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    output = proc.stdout + proc.stderr
    if "Fatal Python error" in output:  # show the crashing thread's stack, not pytest's frames
        start = output.index("Fatal Python error")
        crashed = output.find("Current thread", start)
        output = output[start:start + 200] + "\n" + output[crashed:crashed + 2500]
    assert proc.returncode == 0, f"child pytest exited {proc.returncode}:\n{output[-6000:]}"
