"""scripts/_setup.sh picks llama.cpp's backend (scripts/_backend.sh) and rebuilds once when it changes.

Over a copy of the scripts whose .venv/bin/python is a stand-in that logs how pip was called (with
CMAKE_ARGS): what a CUDA, Metal or Vulkan setup would run, checked on a machine without a GPU."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from support import ROOT


@pytest.fixture
def tree(tmp_path):
    for name in ("scripts/_setup.sh", "scripts/_backend.sh", "pyproject.toml", "constraints.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    python = tmp_path / ".venv/bin/python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "CMAKE_ARGS=$CMAKE_ARGS $*" >> "$(dirname "$0")/../pip.log"\n')
    python.chmod(0o755)
    (tmp_path / "bin").mkdir()
    return tmp_path


def fake_tool(tree, name: str, output: str) -> None:
    tool = tree / "bin" / name
    tool.write_text(f"#!/bin/sh\necho '{output}'\n")
    tool.chmod(0o755)


def setup(tree, backend: str | None = None) -> tuple[subprocess.CompletedProcess, list[str]]:
    log = tree / ".venv/pip.log"
    log.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "HEARTH_BACKEND"}
    env["PATH"] = f"{tree / 'bin'}:/usr/bin:/bin"  # no nvcc or nvidia-smi unless the test puts one there
    if backend:
        env["HEARTH_BACKEND"] = backend
    done = subprocess.run(["bash", "-c", f"source {tree}/scripts/_setup.sh && echo chosen=$backend"],
                          capture_output=True, text=True, env=env)
    return done, log.read_text().splitlines() if log.exists() else []


def test_a_cpu_machine_builds_once_from_pip_s_cache(tree):
    done, calls = setup(tree)
    assert "chosen=cpu" in done.stdout and done.returncode == 0
    assert not any("--force-reinstall" in c for c in calls)  # the one install, cached wheel welcome
    assert (tree / ".venv/.hearth-installed").read_text().strip().endswith(" cpu")
    assert setup(tree)[1] == []  # nothing changed: nothing installed


def test_nvcc_without_a_card_is_still_cpu_and_with_one_is_cuda(tree):
    fake_tool(tree, "nvcc", "Cuda compilation tools, release 13.0")
    assert "chosen=cpu" in setup(tree)[0].stdout
    fake_tool(tree, "nvidia-smi", "GPU 0: NVIDIA H200 (UUID: GPU-0)")
    done, calls = setup(tree)
    assert "chosen=cuda" in done.stdout
    rebuild = [c for c in calls if "--force-reinstall" in c]
    assert len(rebuild) == 1 and rebuild[0].startswith("CMAKE_ARGS=-DGGML_CUDA=on ")
    assert "--no-cache-dir" in rebuild[0] and "llama_cpp_python==" in rebuild[0]
    assert (tree / ".venv/.hearth-installed").read_text().strip().endswith(" cuda")


@pytest.mark.parametrize("backend,flag", [("vulkan", "-DGGML_VULKAN=on"), ("metal", "-DGGML_METAL=on"),
                                          ("cuda", "-DGGML_CUDA=on")])
def test_asked_backends_get_their_cmake_flag_and_going_back_to_cpu_rebuilds_once(tree, backend, flag):
    setup(tree)
    _, calls = setup(tree, backend)
    assert [c.split()[0] for c in calls if "--force-reinstall" in c] == [f"CMAKE_ARGS={flag}"]
    _, calls = setup(tree, "cpu")
    rebuild = [c for c in calls if "--force-reinstall" in c]
    assert len(rebuild) == 1 and rebuild[0].startswith("CMAKE_ARGS= ") and "--no-cache-dir" not in rebuild[0]


def test_an_unknown_backend_is_refused(tree):
    done, _ = setup(tree, "rocm")
    assert done.returncode != 0 and "choose cpu, cuda, metal or vulkan" in done.stderr
