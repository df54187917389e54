"""Frozen sentence embeddings (all-MiniLM-L6-v2 by default, sentence-transformers) + logistic regression.

The encoder is not trained, so only the small classifier is saved; the embedding model is named
in ``student.json`` and read again from its package (or local directory) on load.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from graduate.errors import StudentError
from graduate.students.base import StudentBase, check_fit_input, params_with_defaults
from graduate.students.params import EmbedLogregParams
from graduate.models.base_models import MINILM, encoder_dir


class EmbedLogregStudent(StudentBase):
    kind = "embed-logreg"
    Params = EmbedLogregParams  # every param: type, default, meaning (graduate students show)
    DEFAULTS: dict[str, Any] = EmbedLogregParams().model_dump()

    def __init__(self, labels: list[str], **params: Any):
        self.labels = list(labels)
        self.params = params_with_defaults(self.kind, params, self.DEFAULTS, self.Params)
        self.clf: Any = None
        self._encoder: Any = None

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._encoder is None:
            self._encoder = _sentence_model(str(encoder_dir(self.params["base_model"], self.kind)), self.params["max_length"])
        return self._encoder.encode(
            list(texts), batch_size=self.params["batch_size"], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )

    def fit(self, texts: Sequence[str], labels: Sequence[str], *, sample_weight: Sequence[float] | None = None) -> None:
        from sklearn.linear_model import LogisticRegression

        check_fit_input(self.kind, texts, labels, self.labels)
        x = self._embed(texts)
        p = self.params
        self.clf = LogisticRegression(C=p["C"], class_weight=p["class_weight"], max_iter=p["max_iter"], random_state=p["seed"])
        self.clf.fit(x, list(labels), sample_weight=None if sample_weight is None else np.asarray(sample_weight, dtype=float))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.clf is None:
            raise StudentError("not trained; call fit or load first", kind=self.kind)
        raw = self.clf.predict_proba(self._embed(texts))
        out = np.zeros((len(texts), len(self.labels)))
        for j, lab in enumerate(self.clf.classes_):
            out[:, self.labels.index(lab)] = raw[:, j]
        return out

    @property
    def base_model_bytes(self) -> int:
        """The frozen encoder it needs beside its own files (not saved with the student)."""
        from graduate.models.base_models import dir_size

        return dir_size(encoder_dir(self.params["base_model"], self.kind))

    def save(self, directory: Path) -> None:
        import joblib

        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.clf, directory / "classifier.joblib")
        (directory / "student.json").write_text(json.dumps({"labels": self.labels, "params": self.params}))

    @classmethod
    def load(cls, directory: Path) -> "EmbedLogregStudent":
        import joblib

        meta = json.loads((directory / "student.json").read_text())
        obj = cls(meta["labels"], **meta["params"])
        obj.clf = joblib.load(directory / "classifier.joblib")
        return obj


@lru_cache(maxsize=2)
def _sentence_model(path: str, max_length: int) -> Any:
    """One frozen encoder per process (it is never trained, so students can share it)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device="cpu")
    model.max_seq_length = max_length
    return model
