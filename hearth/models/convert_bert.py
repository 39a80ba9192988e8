"""A sentence-transformers BERT model (Hugging Face format) -> an f16 GGUF, with llama.cpp's gguf-py.

This reproduces what llama.cpp's own `convert_hf_to_gguf.py` writes for `BertModel` (its
`conversion/bert.py` + `base.py`, as vendored in llama-cpp-python 0.3.36), without torch or
transformers: the weights are read from `model.safetensors` with gguf-py's own reader
(`gguf.utility.SafetensorsLocal`), tensor names go through gguf-py's `TensorNameMap` for BERT, and
the WordPiece vocabulary comes from `tokenizer.json`.

- hyperparameters: block count, context length, embedding/feed-forward length, head count,
  layer-norm epsilon, non-causal attention, the pooling type from the sentence-transformers
  `Pooling` module (`mean` for all-MiniLM-L6-v2), file type;
- vocabulary: tokenizer model `bert`, pre-tokenizer `bert-bge` (the converter's hash of this
  tokenizer's output names it so), tokens in llama.cpp's "phantom space" form (`##x` -> `x`, a
  word-initial `x` -> `\u2581x`, special tokens as they are), token types, special token ids and
  add-BOS/EOS flags from `gguf.SpecialVocab`, and BertNormalizer's lowercase/strip-accents flags
  (which llama.cpp's WordPiece tokenizer obeys);
- tensors: 1-D tensors, norms, position and token-type embeddings as f32, the rest as f16;
  the pooler (unused for embeddings) and `position_ids` are dropped.

The server never imports this module: only the setup does (`hearth fetch-models`).
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np

log = logging.getLogger("hearth.convert")

TOKENIZER_PRE = "bert-bge"  # the converter's chkhsh for the bert-base-uncased WordPiece tokenizer
_DROP = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")


def _hf_name(name: str) -> str:
    """The converter's `BertModel.filter_tensors` renames, before the TensorNameMap lookup."""
    name = name.removeprefix("bert.")
    if name.endswith(".gamma"):
        name = name[: -len(".gamma")] + ".weight"
    if name.endswith(".beta"):
        name = name[: -len(".beta")] + ".bias"
    return name


def _pooling_type(model_dir: Path, gguf):
    modules_file = model_dir / "modules.json"
    if not modules_file.is_file():
        return None
    for module in json.loads(modules_file.read_text()):
        if module["type"].endswith("Pooling"):
            cfg = json.loads((model_dir / module["path"] / "config.json").read_text())
            if cfg.get("pooling_mode_mean_tokens"):
                return gguf.PoolingType.MEAN
            if cfg.get("pooling_mode_cls_token"):
                return gguf.PoolingType.CLS
            if cfg.get("pooling_mode_lasttoken"):
                return gguf.PoolingType.LAST
            raise NotImplementedError(f"unsupported pooling in {module['path']}/config.json: {cfg}")
    return None


def _normalizer(tokenizer_json: dict) -> dict[str, bool]:
    """BertNormalizer's lowercase/strip_accents, as newer gguf-py's `SpecialVocab._parse_normalizer` reads them.

    llama.cpp's WordPiece tokenizer lowercases only when `tokenizer.ggml.normalizer.lowercase` says so
    (and strips accents by default when it lowercases); gguf 0.19.0 on PyPI does not write these keys.
    """
    out: dict[str, bool] = {}

    def walk(n: dict) -> None:
        kind = n.get("type")
        if kind == "Lowercase":
            out["lowercase"] = True
        elif kind == "StripAccents":
            out["strip_accents"] = True
        elif kind == "BertNormalizer":
            for k in ("lowercase", "strip_accents"):
                if n.get(k) is not None:
                    out[k] = bool(n[k])
        elif kind == "Sequence":
            for m in n.get("normalizers", []):
                walk(m)

    if tokenizer_json.get("normalizer"):
        walk(tokenizer_json["normalizer"])
    return out


def _vocab(model_dir: Path, vocab_size: int, gguf) -> tuple[list[str], list[int]]:
    """Tokens (phantom-space form) and token types, as `get_vocab_base` + `BertModel.set_vocab` make them."""
    tok = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    if tok["model"]["type"] != "WordPiece":
        raise NotImplementedError(f"tokenizer model {tok['model']['type']!r}: only WordPiece is converted here")
    reverse = {i: t for t, i in tok["model"]["vocab"].items()}
    added = {a["id"]: a for a in tok.get("added_tokens", [])}
    for i, a in added.items():
        reverse[i] = a["content"]
    if max(reverse) >= vocab_size:
        raise ValueError(f"token id {max(reverse)} is outside the model's vocabulary ({vocab_size})")
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        text = reverse[i]
        if i in added:
            types.append(gguf.TokenType.CONTROL if added[i].get("special") else gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
        if types[-1] != gguf.TokenType.CONTROL:  # phantom space: llama.cpp's WPM tokenizer expects it
            text = text[2:] if text.startswith("##") else "\u2581" + text
        tokens.append(text)
    return tokens, types


def convert(model_dir: str | Path, out_path: str | Path, name: str) -> Path:
    """Write `out_path` (an f16 GGUF) from the Hugging Face BERT model in `model_dir`; prints what it does."""
    import gguf  # setup-time dependency only

    model_dir, out_path = Path(model_dir), Path(out_path)
    hp = json.loads((model_dir / "config.json").read_text())
    if hp.get("architectures", ["BertModel"])[0] not in ("BertModel", "BertForMaskedLM"):
        raise NotImplementedError(f"{model_dir}: architecture {hp.get('architectures')} is not BERT")
    arch = gguf.MODEL_ARCH.BERT
    n_layer = hp["num_hidden_layers"]
    names = gguf.get_tensor_name_map(arch, n_layer)
    keep_f32 = {gguf.TENSOR_NAMES[t] for t in (gguf.MODEL_TENSOR.POS_EMBD, gguf.MODEL_TENSOR.TOKEN_TYPES)}

    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".partial")
    w = gguf.GGUFWriter(path=None, arch=gguf.MODEL_ARCH_NAMES[arch])

    n_params = 0
    with gguf.utility.SafetensorsLocal(model_dir / "model.safetensors") as tensors:
        for hf_name, t in tensors.items():
            src = _hf_name(hf_name)
            if src in _DROP or src.startswith(("cls.predictions", "cls.seq_relationship")):
                continue
            new_name = names.get_name(src, try_suffixes=(".weight", ".bias"))
            if new_name is None:
                raise ValueError(f"cannot map tensor {hf_name!r}")
            if t.dtype not in ("F32", "F16", "BF16"):
                raise ValueError(f"{hf_name}: unexpected dtype {t.dtype}")
            raw = t.mmap_bytes()
            if t.dtype == "BF16":
                data = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(t.shape)
            else:
                data = raw.view(np.float32 if t.dtype == "F32" else np.float16).reshape(t.shape).astype(np.float32)
            n_params += data.size
            f32 = data.ndim <= 1 or new_name.endswith("_norm.weight") or not new_name.endswith(".weight") \
                or new_name.removesuffix(".weight") in keep_f32
            qtype = gguf.GGMLQuantizationType.F32 if f32 else gguf.GGMLQuantizationType.F16
            data = gguf.quants.quantize(data, qtype)
            print(f"hearth: convert {hf_name:52s} -> {new_name:28s} {qtype.name} {list(reversed(data.shape))}",
                  file=sys.stderr)
            w.add_tensor(new_name, data, raw_dtype=qtype)

    # general.* (what the converter's gguf.Metadata writes for this model card, in short)
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(name)
    w.add_size_label(gguf.size_label(n_params, 0, 0, 0))
    # hyperparameters (TextModel.set_gguf_parameters + BertModel.set_gguf_parameters)
    w.add_block_count(n_layer)
    w.add_context_length(hp["max_position_embeddings"])
    w.add_embedding_length(hp["hidden_size"])
    w.add_feed_forward_length(hp["intermediate_size"])
    w.add_head_count(hp["num_attention_heads"])
    w.add_layer_norm_eps(hp["layer_norm_eps"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_causal_attention(False)
    if (pooling := _pooling_type(model_dir, gguf)) is not None:
        w.add_pooling_type(pooling)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    # vocabulary (BertModel.set_vocab)
    tokens, types = _vocab(model_dir, hp["vocab_size"], gguf)
    w.add_token_type_count(hp.get("type_vocab_size", 1))
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre(TOKENIZER_PRE)
    w.add_token_list(tokens)
    w.add_token_types(types)
    # 'cls' is left out as the converter's writer has no key for it (llama.cpp takes BOS=[CLS] for WPM)
    special = gguf.SpecialVocab(model_dir, n_vocab=len(tokens), special_token_types=('bos', 'eos', 'unk', 'sep', 'pad', 'mask'))
    special.add_to_gguf(w, quiet=True)
    for key, value in _normalizer(json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))).items():
        w.add_bool(f"tokenizer.ggml.normalizer.{key}", value)

    w.write_header_to_file(path=partial)
    w.write_kv_data_to_file()
    w.write_tensors_to_file(progress=False)
    w.close()
    partial.replace(out_path)
    print(f"hearth: wrote {out_path} ({out_path.stat().st_size / 1e6:.1f} MB, {n_params / 1e6:.1f}M parameters)",
          file=sys.stderr)
    return out_path
