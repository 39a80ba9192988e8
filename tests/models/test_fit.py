"""Where layers go (GPU or host RAM) over described devices: a 24 GB card, an 8 GB card, none."""
from __future__ import annotations

import pytest

from hearth.engine.api import Device
from hearth.gguf import ModelFile
from hearth.models import fit

GB = 2**30
LAYER, OUTPUT, EMBED = 130 * 2**20, 400 * 2**20, 400 * 2**20  # an 8B model at 4-5 bits: 32 layers


def model(n_layer: int = 32) -> ModelFile:
    tensors = {f"blk.{i}.{part}": LAYER // 2 for i in range(n_layer) for part in ("attn_q.weight", "ffn_up.weight")}
    tensors |= {"output.weight": OUTPUT, "token_embd.weight": EMBED}
    total = sum(tensors.values())
    return ModelFile(path="/models/eight-b.gguf", size=total, version=3, n_tensors=len(tensors),
                     metadata={"general.architecture": "llama", "llama.block_count": n_layer},
                     data_bytes=total, tensor_bytes=tensors)


def card(free_gb: float) -> list[Device]:
    return [Device("NVIDIA Test", int(free_gb * GB), int(free_gb * GB))]


KV = 4 * GB  # e.g. 32k tokens of an 8B model's f16 KV


def test_layer_bytes_from_the_tensor_table():
    layers, output, rest = fit.layer_bytes(model())
    assert layers == [LAYER] * 32 and output == OUTPUT and rest == EMBED


def test_a_24_gb_card_takes_every_layer_and_the_output():
    p = fit.place(model(), KV, "auto", card(24), host_free=32 * GB)
    assert p.gpu_layers == 33 and p.gpu_bytes == 32 * LAYER + OUTPUT + KV
    assert p.host_bytes == EMBED  # the token embeddings stay in host RAM
    assert p.describe() == "GPU 32/32 layers (NVIDIA Test, 8.5 GB)"


def test_an_8_gb_card_takes_as_many_layers_as_fit_with_their_kv_and_the_margin():
    p = fit.place(model(), KV, "auto", card(8), host_free=32 * GB)
    per_layer = LAYER + KV // 32
    assert 0 < p.gpu_layers < 32
    assert p.gpu_bytes == p.gpu_layers * per_layer and p.gpu_bytes + fit.MARGIN <= 8 * GB
    assert (p.gpu_layers + 1) * per_layer + fit.MARGIN > 8 * GB  # one more would not fit
    assert p.host_bytes == model().data_bytes + KV - p.gpu_bytes


def test_no_gpu_keeps_everything_in_host_ram():
    for devices in ([], None):
        p = fit.place(model(), KV, "auto", devices or [], host_free=32 * GB)
        assert (p.gpu_layers, p.gpu_bytes, p.host_bytes, p.describe()) == (0, 0, model().data_bytes + KV, "CPU")


def test_max_that_does_not_fit_names_both_budgets():
    with pytest.raises(fit.DoesNotFit) as caught:
        fit.place(model(), KV, "max", card(8), host_free=32 * GB)
    message = str(caught.value)
    assert "GPU memory (NVIDIA Test has 8.0 GB free)" in message and "of host RAM" in message
    assert "--gpu-layers auto" in message


def test_host_ram_short_is_refused_with_the_figures():
    with pytest.raises(fit.DoesNotFit) as caught:
        fit.place(model(), KV, "auto", [], host_free=2 * GB)
    assert "of host RAM (2.0 GB available)" in str(caught.value)
    p = fit.place(model(), KV, "auto", card(24), host_free=2 * GB)  # offloaded, the same model fits
    assert p.gpu_layers == 33


def test_an_explicit_count_is_taken_as_asked_and_clamped():
    assert fit.place(model(), KV, 10, card(24), host_free=None).gpu_layers == 10
    assert fit.place(model(), KV, 99, card(24), host_free=None).gpu_layers == 33
    assert fit.place(model(), KV, "off", card(24), host_free=None).gpu_layers == 0
