"""`augment:` in graduate.yaml: new training items made from the pool's (graduate augment)."""

from __future__ import annotations

from pydantic import Field, model_validator

from graduate.spec.base import _Model
from graduate.spec.terms import clean_terms


class CounterfactualSpec(_Model):
    """Term swaps that keep the label: every item naming a term of a list gets copies with another
    term of the same list in its place (e.g. one identity for another)."""

    terms: str = Field("identity", description="The term list to swap within (a key of augment.term_lists; identity: evaluation.identity_terms by default).")
    per_item: int | dict[str, int] = Field(
        3,
        description="At most this many copies per item (the other terms, in list order from a seeded shuffle), 1-50; or per label, "
        "e.g. {ok: 12, bad: 1}: many for non-toxic items (naming a term is not toxic), a few for toxic ones (which term is named does not matter); "
        "a label left out (or 0) gets none. Multi-label: an item gets the most any label of its set is given.",
    )
    labels: list[str] = Field(default_factory=list, description="Only items with these labels (e.g. [ok], to teach that naming an identity is not toxic); empty: all. Multi-label: items whose set holds one of them.")

    @model_validator(mode="after")
    def _per_item(self) -> "CounterfactualSpec":
        counts = self.per_item.values() if isinstance(self.per_item, dict) else [self.per_item]
        low = 0 if isinstance(self.per_item, dict) else 1
        if any(not low <= n <= 50 for n in counts):
            raise ValueError(f"augment.counterfactual.per_item: give {'counts from 0' if low == 0 else 'a number from 1'} to 50, got {self.per_item}")
        return self

    def copies_for(self, label: str) -> int:
        """How many copies an item with this label gets at most (0: none)."""
        if self.labels and label not in self.labels:
            return 0
        return self.per_item.get(label, 0) if isinstance(self.per_item, dict) else self.per_item

    def labels_swapped(self) -> set[str]:
        """The labels whose items get copies (empty: every label)."""
        chosen = {k for k, v in self.per_item.items() if v} if isinstance(self.per_item, dict) else set()
        return (chosen & set(self.labels)) if self.labels and chosen else (chosen or set(self.labels))


class AugmentSpec(_Model):
    """Augmented items: stored with their lineage (parent item, method, what changed) and the
    parent's label, and added to the training pool (``include``)."""

    term_lists: dict[str, list[str]] = Field(
        default_factory=dict, description="Named term lists, e.g. {identity: [gay, straight, muslim, christian]}; identity defaults to evaluation.identity_terms."
    )
    counterfactual: CounterfactualSpec = Field(default_factory=CounterfactualSpec, description="graduate augment --kind counterfactual.")
    include: bool = Field(True, description="Augmented items join the training pool (their label: the parent's; a reviewer's wins).")
    in_run: bool = Field(
        False,
        description="graduate run also makes the counterfactual copies (after loading the data, before building the training set); "
        "copies already stored are not added again.",
    )

    @model_validator(mode="after")
    def _lists(self) -> "AugmentSpec":
        for name, terms in self.term_lists.items():
            # Stripped, blanks and repeats in any case left out (as evaluation.identity_terms): "Muslim"
            # and "muslim" put in made one text twice, counted "already stored" on the first run.
            cleaned = clean_terms(terms)
            if len(cleaned) < 2:
                raise ValueError(f"augment.term_lists.{name}: give at least two different terms to swap between")
            self.term_lists[name] = cleaned
        return self
