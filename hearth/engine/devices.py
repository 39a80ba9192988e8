"""The GPUs this build of llama.cpp can offload to, with their free memory (ggml's device registry).

A CPU build (llama-cpp-python compiled without CUDA, Metal or Vulkan) has none; neither has a GPU build
on a machine without the card. The pinned llama-cpp-python binds no ggml device functions, so they are
called from ggml's own libraries beside libllama.
"""
from __future__ import annotations

import ctypes
from functools import lru_cache
from pathlib import Path

import llama_cpp as L

from hearth.engine.api import Device

_GPU_TYPES = {1, 2}  # ggml_backend_dev_type: GPU, and integrated GPU where ggml has that type


@lru_cache(maxsize=1)
def _ggml():
    libs = Path(L.__file__).parent / "lib"
    ggml, base = ctypes.CDLL(str(libs / "libggml.so")), ctypes.CDLL(str(libs / "libggml-base.so"))
    ggml.ggml_backend_dev_count.restype = ctypes.c_size_t
    ggml.ggml_backend_dev_get.restype = ctypes.c_void_p
    ggml.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    base.ggml_backend_dev_type.restype = ctypes.c_int
    base.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    base.ggml_backend_dev_description.restype = ctypes.c_char_p
    base.ggml_backend_dev_description.argtypes = [ctypes.c_void_p]
    base.ggml_backend_dev_memory.restype = None
    base.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t),
                                             ctypes.POINTER(ctypes.c_size_t)]
    return ggml, base


def gpus() -> list[Device]:
    """Every GPU device with its free and total memory now; [] for a CPU build or no card."""
    if not L.llama_supports_gpu_offload():
        return []
    ggml, base = _ggml()
    found = []
    for i in range(ggml.ggml_backend_dev_count()):
        dev = ggml.ggml_backend_dev_get(i)
        if base.ggml_backend_dev_type(dev) not in _GPU_TYPES:
            continue
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        base.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
        name = (base.ggml_backend_dev_description(dev) or b"GPU").decode("utf-8", "replace")
        found.append(Device(name, free.value, total.value))
    return found
