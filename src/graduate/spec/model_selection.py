"""`model_selection:` in graduate.yaml: how `graduate run` picks the best student (the one
`graduate predict`, `serve`, the gates and the cascade use) without looking at the test sets."""

from __future__ import annotations

from pydantic import Field, model_validator

from graduate.spec.base import _Model


class ModelSelectionSpec(_Model):
    """The best student is picked on a validation split carved from the training set (scored
    against its training labels), never on the test sets: those only report. With one student,
    or one named in ``student``, nothing is held out."""

    student: str | None = Field(
        None,
        description="Name the student to use (a label of students:, e.g. ensemble); nothing is held out from training and no score picks it.",
    )
    validation_share: float = Field(
        0.1,
        gt=0,
        le=0.5,
        description="Share of the training pool's own items held out to pick the best student (chosen by a hash of each text and the seed, "
        "stable as data is added); items graduate made from a held-out item (counterfactual copies, paraphrases) are held out with it and never scored.",
    )
    min_items: int = Field(
        50, ge=10, description="Hold out at least this many items; a training set under 4x this many holds nothing out and uses the last listed student."
    )
    max_items: int = Field(1000, ge=10, description="Hold out at most this many items (the share shrinks on large pools).")

    @model_validator(mode="after")
    def _sizes(self) -> "ModelSelectionSpec":
        if self.max_items < self.min_items:
            raise ValueError(f"model_selection.max_items ({self.max_items}) must be at least min_items ({self.min_items})")
        return self
