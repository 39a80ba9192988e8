"""Where a model's layers go (GPU memory or host RAM), and whether it fits: each budget counted apart.

llama.cpp's offload, as the pinned version does it (it has no fitting function of its own: this is
ours, in the manner of Ollama's and of llama.cpp's later `llama_params_fit`):
- `n_gpu_layers = k` puts the last k repeating layers (`blk.N.*`) on the GPU, each with its KV cache
  (`offload_kqv` is on by default); k = n_layer + 1 puts the output layer there too; the token
  embeddings stay in host RAM whatever k is;
- what is not offloaded is read from host RAM (the file is mmapped: its pages count as RAM in use).

`gpu_layers`: "auto" offloads as many layers as fit in the free memory of the GPU with the most of it,
leaving MARGIN for llama.cpp's compute buffers; "max" offloads everything or refuses; an int is taken as
asked (clamped to n_layer + 1). With no GPU device (a CPU build, or no card) nothing is offloaded.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hearth import gguf
from hearth.engine.api import Device, EngineConfig, ModelDoesNotFit
from hearth.gguf import ModelFile

MARGIN = 1 << 30  # bytes of a GPU kept free for compute buffers and the driver (llama.cpp's fit leaves 1 GiB)
_LAYER = re.compile(r"^blk\.(\d+)\.")


DoesNotFit = ModelDoesNotFit  # one sentence for the user, naming what host RAM and GPU memory it needs and has


@dataclass(frozen=True)
class Placement:
    gpu_layers: int  # llama.cpp's n_gpu_layers: 0..n_layer + 1
    n_layer: int
    gpu_bytes: int  # weights + KV cache in GPU memory
    host_bytes: int  # weights + KV cache in host RAM
    device: str | None  # the GPU, when anything is offloaded

    def describe(self) -> str:
        """For the banner, /status and the page: "CPU" or "GPU 31/31 layers (NVIDIA H200, 4.2 GB)"."""
        if not self.gpu_layers:
            return "CPU"
        shown = min(self.gpu_layers, self.n_layer)
        return f"GPU {shown}/{self.n_layer} layers ({self.device}, {gb(self.gpu_bytes)})"


CPU_ONLY = Placement(0, 0, 0, 0, None)


def gb(n: int) -> str:
    return f"{n / 2**30:.1f} GB"


def gpu_layers_value(text: str) -> str | int:
    """--gpu-layers / the load route's `gpu_layers`: "auto", "max", "off" or a count of layers."""
    if text in ("auto", "max", "off"):
        return text
    if text.isdigit():
        return int(text)
    raise ValueError(f"gpu layers must be auto, max, off or a number of layers, not {text!r}")


def kv_cache_bytes(info: ModelFile, n_ctx: int, n_parallel: int | None) -> int:
    """What the engine's slot plan allocates for KV (f16 K and V), from the GGUF's own dimensions."""
    n_layer, n_head = info.meta_int("block_count"), info.meta_int("attention.head_count")
    n_embd = info.meta_int("embedding_length")
    if not (n_layer and n_head and n_embd):
        return 0
    n_head_kv = info.meta_int("attention.head_count_kv") or n_head
    per_token = 2 * 2 * n_layer * n_head_kv * (n_embd // n_head)
    from hearth.engine.llm_engine import plan_slots  # no llama_cpp at import

    _, n_slots = plan_slots(EngineConfig(model_path=info.path, n_ctx=n_ctx, n_parallel=n_parallel), per_token)
    return n_slots * n_ctx * per_token


def available_memory() -> int | None:
    """Bytes of host RAM this process may still use: MemAvailable, capped by a cgroup (container) limit;
    None if unknown."""
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


def place_file(path, kind: str, n_ctx: int, n_parallel: int | None, gpu_layers: str | int) -> Placement:
    """`place_model` for a model file. A file that is not a readable GGUF is placed on the CPU: its load
    reports what is wrong with it."""
    try:
        info = gguf.check(path)
    except gguf.BadModelFile:
        return CPU_ONLY
    return place_model(info, kind, n_ctx, n_parallel, gpu_layers)


def place_model(info: ModelFile, kind: str, n_ctx: int, n_parallel: int | None, gpu_layers: str | int) -> Placement:
    """`place` with this machine's GPUs, its free host RAM and the KV cache the engine will allocate."""
    from hearth.engine.devices import gpus  # loads llama.cpp: only when a model is placed

    kv = kv_cache_bytes(info, n_ctx, n_parallel) if kind == "llm" else 0
    return place(info, kv, gpu_layers, gpus(), available_memory())


def layer_bytes(info: ModelFile) -> tuple[list[int], int, int]:
    """(bytes of each repeating layer, of the output layer, of everything else) from the tensor table."""
    n_layer = info.meta_int("block_count") or 0
    layers, output, rest = [0] * n_layer, 0, 0
    for name, nbytes in info.tensor_bytes.items():
        match = _LAYER.match(name)
        if match and int(match.group(1)) < n_layer:
            layers[int(match.group(1))] += nbytes
        elif name.startswith(("output.", "output_norm.")):
            output += nbytes
        else:
            rest += nbytes
    return layers, output, rest


def place(info: ModelFile, kv_bytes: int, gpu_layers: str | int, devices: list[Device],
          host_free: int | None) -> Placement:
    """Where the model goes; raises DoesNotFit when the chosen placement exceeds either budget.
    `kv_bytes`: the whole KV cache the engine allocates (every slot, every layer)."""
    layers, output, rest = layer_bytes(info)
    n_layer = len(layers)
    kv_layer = kv_bytes // n_layer if n_layer else 0
    device = max(devices, key=lambda d: d.free, default=None)

    def split(k: int) -> tuple[int, int]:
        on_gpu = layers[n_layer - min(k, n_layer):] if k else []
        gpu = sum(on_gpu) + kv_layer * len(on_gpu) + (output if k > n_layer else 0)
        host = info.data_bytes + kv_bytes - gpu
        return gpu, host

    if device is None or n_layer == 0 or gpu_layers in (0, "off"):
        k = 0
    elif gpu_layers == "max":
        k = n_layer + 1
    elif gpu_layers == "auto":
        k = next((k for k in range(n_layer + 1, -1, -1) if split(k)[0] + MARGIN <= device.free), 0)
    else:
        k = max(0, min(int(gpu_layers), n_layer + 1))
    gpu, host = split(k)
    placement = Placement(k, n_layer, gpu, host, device.name if k and device else None)
    gpu_short = k and gpu + MARGIN > device.free
    host_short = host_free is not None and host > host_free
    if gpu_short or host_short:
        where = f"{gb(gpu)} of GPU memory ({device.name} has {gb(device.free)} free) and " if k else ""
        raise DoesNotFit(
            f"{info.path.rsplit('/', 1)[-1]} needs {where}{gb(host)} of host RAM ({gb(host_free or 0)} available) "
            f"with {k} of {n_layer + 1 if n_layer else 0} layers offloaded (weights {gb(info.data_bytes)}, KV cache "
            f"{gb(kv_bytes)}); " + ("offload fewer layers (--gpu-layers auto), " if gpu_short else
                                     "offload more layers to a GPU, " if devices else "")
            + "or lower --ctx-size / --parallel, or choose a smaller model or quantization.")
    return placement
