"""Frozen sentence embeddings (all-MiniLM-L6-v2 by default, sentence-transformers) + logistic regression.
``more_base_models`` puts further encoders' embeddings beside the first one's.

The encoder is not trained, so only the small classifier is saved; the embedding model is named
in ``student.json`` and read again from its package (or local directory) on load. With
``tfidf: true`` the classifier also sees word 1-2-gram TF-IDF features beside the embedding (the
vectoriser is saved with it). Multi-label tasks (``multi_label: true``): one logistic regression per
label over the same features (each text is embedded once), or one softmax over the labels
(``head: softmax``, see ``label_heads``), thresholds tuned on out-of-fold probabilities.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from graduate.errors import StudentError
from graduate.students import thresholds
from graduate.students.blas import fit_threads
from graduate.students.base import StudentBase, check_fit_input, params_with_defaults
from graduate.students.params import EmbedLogregParams
from graduate.models.base_models import encoder_dir


class EmbedLogregStudent(StudentBase):
    kind = "embed-logreg"
    takes_multi_label = True  # params multi_label: one logistic regression per label over one embedding
    Params = EmbedLogregParams  # every param: type, default, meaning (graduate students show)
    DEFAULTS: dict[str, Any] = EmbedLogregParams().model_dump()

    def __init__(self, labels: list[str], **params: Any):
        self.labels = list(labels)
        self.params = params_with_defaults(self.kind, params, self.DEFAULTS, self.Params)
        self.clf: Any = None
        self.vectoriser: Any = None
        self._encoder: Any = None
        self.multi_label = bool(self.params["multi_label"])
        self.thresholds: list[float] = [0.5] * len(self.labels)
        self.at_least_one = False

    @property
    def base_models(self) -> list[tuple[str, str]]:
        """(name, the param naming it) of every encoder whose embedding the classifier reads:
        base_model, then more_base_models."""
        more = [(name, f"more_base_models[{i}]") for i, name in enumerate(self.params["more_base_models"])]
        return [(self.params["base_model"], "base_model"), *more]

    def check_models(self) -> None:
        """Every encoder it names exists (nothing loaded)."""
        for name, field in self.base_models:
            encoder_dir(name, self.kind, field)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._encoder is None:
            self._encoder = [
                _sentence_model(str(encoder_dir(name, self.kind, field)), self.params["max_length"]) for name, field in self.base_models
            ]
        parts = [
            model.encode(list(texts), batch_size=self.params["batch_size"], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
            for model in self._encoder
        ]
        return parts[0] if len(parts) == 1 else np.hstack(parts)

    def _features(self, emb: np.ndarray, texts: Sequence[str], *, fit: bool = False) -> Any:
        """The classifier's input: the embedding, plus TF-IDF columns when ``tfidf`` is on."""
        if not self.params["tfidf"]:
            return emb
        from scipy.sparse import csr_matrix, hstack
        from sklearn.feature_extraction.text import TfidfVectorizer

        if fit:
            self.vectoriser = TfidfVectorizer(ngram_range=(1, 2), min_df=2 if len(texts) >= 20 else 1, sublinear_tf=True, strip_accents="unicode")
            words = self.vectoriser.fit_transform(list(texts))
        else:
            words = self.vectoriser.transform(list(texts))
        return hstack([csr_matrix(emb), words]).tocsr()

    def _classifier(self) -> Any:
        from sklearn.linear_model import LogisticRegression

        from graduate.students.label_heads import label_head

        p = self.params
        lr = {"C": p["C"], "class_weight": p["class_weight"], "max_iter": p["max_iter"], "random_state": p["seed"]}
        return label_head(p["head"], **lr) if self.multi_label else LogisticRegression(**lr)

    def fit(self, texts: Sequence[str], labels: Sequence[str], *, sample_weight: Sequence[float] | None = None) -> None:
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if self.multi_label:
            self._fit_sets(list(texts), labels, w)
            return
        check_fit_input(self.kind, texts, labels, self.labels)
        emb = self._embed(texts)
        with fit_threads():  # the encoder above keeps every thread; lbfgs is faster with one BLAS thread (see blas)
            x = self._features(emb, texts, fit=True)
            self.clf = self._classifier()
            self.clf.fit(x, list(labels), sample_weight=w)

    def _fit_sets(self, texts: list[str], labels: Sequence[str], w: np.ndarray | None) -> None:
        """Multi-label: tune each label's threshold on out-of-fold probabilities (threshold_folds;
        1: a held-out share), then train on all of it. Each text is embedded once."""
        y = thresholds.training_sets(self.kind, texts, labels, self.labels)
        emb = self._embed(texts)
        p = self.params

        def fit_predict(train: np.ndarray, held: np.ndarray) -> np.ndarray:
            x_train = self._features(emb[train], [texts[i] for i in train], fit=True)
            model = self._classifier().fit(x_train, y[train], sample_weight=None if w is None else w[train])
            return model.predict_proba(self._features(emb[held], [texts[i] for i in held]))

        with fit_threads():
            val, val_probs = thresholds.held_out_probs(y, fit_predict, folds_=p["threshold_folds"], share=p["validation_share"], seed=p["seed"])
            self.thresholds, self.at_least_one, decisions = thresholds.fit_decisions(y, val, val_probs, self.labels, max_labels=p["max_labels"])
            decisions["folds"] = p["threshold_folds"]
            self.clf = self._classifier().fit(self._features(emb, texts, fit=True), y, sample_weight=w)
        self.report = {"multi_label": decisions}

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.clf is None:
            raise StudentError("not trained; call fit or load first", kind=self.kind)
        raw = self.clf.predict_proba(self._features(self._embed(texts), texts))
        if self.multi_label:
            return np.asarray(raw, dtype=float)
        out = np.zeros((len(texts), len(self.labels)))
        for j, lab in enumerate(self.clf.classes_):
            out[:, self.labels.index(lab)] = raw[:, j]
        return out

    @property
    def base_model_bytes(self) -> int:
        """The frozen encoder it needs beside its own files (not saved with the student)."""
        from graduate.models.base_models import dir_size

        return sum(dir_size(d) for d in dict.fromkeys(encoder_dir(name, self.kind, field) for name, field in self.base_models))

    def save(self, directory: Path) -> None:
        import joblib

        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.clf, directory / "classifier.joblib")
        if self.vectoriser is not None:
            joblib.dump(self.vectoriser, directory / "tfidf.joblib")
        meta: dict[str, Any] = {"labels": self.labels, "params": self.params}
        if self.multi_label:
            meta.update(thresholds=self.thresholds, at_least_one=self.at_least_one, report=self.report)
        (directory / "student.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path) -> "EmbedLogregStudent":
        import joblib

        meta = json.loads((directory / "student.json").read_text())
        obj = cls(meta["labels"], **meta["params"])
        obj.clf = joblib.load(directory / "classifier.joblib")
        if obj.params["tfidf"]:
            obj.vectoriser = joblib.load(directory / "tfidf.joblib")
        if obj.multi_label:
            obj.thresholds, obj.at_least_one, obj.report = list(meta["thresholds"]), bool(meta["at_least_one"]), meta.get("report", {})
        return obj


@lru_cache(maxsize=4)
def _sentence_model(path: str, max_length: int) -> Any:
    """One frozen encoder per process (it is never trained, so students can share it)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device="cpu")
    model.max_seq_length = max_length
    return model
