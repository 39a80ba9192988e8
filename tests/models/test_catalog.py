"""The catalog: keys, types and context lengths of a models dir in LM Studio's layout."""
from __future__ import annotations

from pathlib import Path

from hearth import gguf
from hearth.models.catalog import Catalog
from hearth.models.defaults import default_model_path
from support import write_gguf


def link(target: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def test_lm_studio_layout_keys_types_and_metadata(tmp_path):
    smol = default_model_path()
    link(smol, tmp_path / "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf")
    link(smol, tmp_path / "lmstudio-community/Two-Quants-GGUF/two-quants-Q4_1.gguf")
    link(smol, tmp_path / "lmstudio-community/Two-Quants-GGUF/two-quants-Q8_0.gguf")
    link(smol, tmp_path / "other/SmolLM2-135M-Instruct-GGUF/copy.gguf")  # same folder name, another publisher
    write_gguf(tmp_path / "sentence-transformers/all-MiniLM-L6-v2-GGUF/all-MiniLM-L6-v2.F16.gguf",
                      {"general.architecture": "bert", "bert.context_length": 512, "bert.pooling_type": 1,
                       "tokenizer.ggml.tokens": ["[PAD]", "hello"], "general.name": "all-MiniLM-L6-v2"})
    (tmp_path / "notes.txt").write_text("not a model")
    write_gguf(tmp_path / "x/Vision-GGUF/mmproj-f16.gguf", {"general.architecture": "clip"})

    catalog = Catalog(tmp_path)
    entries = {e.key: e for e in catalog.entries()}
    assert sorted(entries) == ["other/smollm2-135m-instruct", "smollm2-135m-instruct",
                               "text-embedding-all-minilm-l6-v2", "two-quants@q4_1", "two-quants@q8_0"]
    smollm = entries["smollm2-135m-instruct"]
    assert (smollm.type, smollm.publisher, smollm.display_name) == ("llm", "HuggingFaceTB", "SmolLM2-135M-Instruct")
    assert smollm.max_context_length == 8192 and smollm.size_bytes == smol.stat().st_size
    assert (smollm.architecture, smollm.quantization, smollm.params_string) == ("llama", "Q4_1", "135M")
    minilm = entries["text-embedding-all-minilm-l6-v2"]
    assert (minilm.type, minilm.max_context_length, minilm.quantization) == ("embedding", 512, "F16")
    assert catalog.find("two-quants").key == "two-quants@q4_1"  # a bare key names the first variant
    assert catalog.find("SmolLM2-135M-Instruct").key == "smollm2-135m-instruct"
    assert catalog.find("no-such-model") is None


def test_metadata_reader_skips_arrays():
    meta = gguf.read_metadata(default_model_path())
    assert meta["general.architecture"] == "llama" and meta["llama.context_length"] == 8192
    assert "tokenizer.ggml.tokens" not in meta


def test_missing_dir_is_an_empty_catalog(tmp_path):
    assert Catalog(tmp_path / "nope").entries() == []
