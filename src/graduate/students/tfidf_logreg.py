"""TF-IDF over word and character n-grams, then logistic regression (scikit-learn)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from graduate.errors import StudentError
from graduate.students.base import StudentBase, check_fit_input, params_with_defaults
from graduate.students.params import TfidfLogregParams


class TfidfLogregStudent(StudentBase):
    kind = "tfidf-logreg"
    Params = TfidfLogregParams  # every param: type, default, meaning (graduate students show)
    DEFAULTS: dict[str, Any] = TfidfLogregParams().model_dump()

    def __init__(self, labels: list[str], **params: Any):
        self.labels = list(labels)
        self.params = params_with_defaults(self.kind, params, self.DEFAULTS, self.Params)
        self.pipeline: Any = None

    def _build(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion, Pipeline

        p = self.params
        features = FeatureUnion(
            [
                (
                    "word",
                    TfidfVectorizer(
                        analyzer="word",
                        ngram_range=tuple(p["word_ngrams"]),
                        min_df=p["min_df"],
                        max_features=p["max_features"],
                        sublinear_tf=p["sublinear_tf"],
                        strip_accents="unicode",
                    ),
                ),
                (
                    "char",
                    TfidfVectorizer(
                        analyzer="char_wb",
                        ngram_range=tuple(p["char_ngrams"]),
                        min_df=p["min_df"],
                        max_features=p["max_features"],
                        sublinear_tf=p["sublinear_tf"],
                        lowercase=True,
                    ),
                ),
            ]
        )
        clf = LogisticRegression(
            C=p["C"], class_weight=p["class_weight"], max_iter=p["max_iter"], random_state=p["seed"]
        )
        return Pipeline([("features", features), ("clf", clf)])

    def fit(self, texts: Sequence[str], labels: Sequence[str], *, sample_weight: Sequence[float] | None = None) -> None:
        check_fit_input(self.kind, texts, labels, self.labels)
        self.pipeline = self._build()
        kwargs = {"clf__sample_weight": np.asarray(sample_weight)} if sample_weight is not None else {}
        self.pipeline.fit(list(texts), list(labels), **kwargs)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.pipeline is None:
            raise StudentError("not trained; call fit or load first", kind=self.kind)
        from graduate.students.tfidf_fast import fast_pipeline

        # Same numbers as self.pipeline.predict_proba, several times faster (see tfidf_fast).
        raw = fast_pipeline(self.pipeline).predict_proba(list(texts))
        classes = list(self.pipeline.classes_)
        out = np.zeros((len(texts), len(self.labels)))
        for j, lab in enumerate(classes):
            out[:, self.labels.index(lab)] = raw[:, j]
        return out

    def save(self, directory: Path) -> None:
        import joblib

        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.pipeline, directory / "pipeline.joblib")
        (directory / "student.json").write_text(json.dumps({"labels": self.labels, "params": self.params}))

    @classmethod
    def load(cls, directory: Path) -> "TfidfLogregStudent":
        import joblib

        meta = json.loads((directory / "student.json").read_text())
        obj = cls(meta["labels"], **meta["params"])
        obj.pipeline = joblib.load(directory / "pipeline.joblib")
        return obj
