"""Build the training set from teacher labels, recording what each step dropped or changed and
why (the recipe, stored with the dataset version: every removed item is listed by example id)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from sqlalchemy import Connection, Engine, select

from graduate.data.augment import SOURCE as AUGMENT_SOURCE, augmented_pool, counterfactual_parents, derived_labels, made_from_absent
from graduate.data.balance import (
    class_counts,
    class_weights,
    label_set_prior_weights,
    label_set_weights,
    per_label_counts,
    prior_weights,
    undersample,
    undersample_label_sets,
)
from graduate.data.dedupe import exact_duplicates, near_duplicates
from graduate.data.examples import ABSENT_NOTE, Example, absent_examples, select_examples, selection_examples
from graduate.data.filters import cap_groups, rule_filter
from graduate.data.label_issues import ModelFactory
from graduate.errors import SpecError
from graduate.spec import ProjectSpec
from graduate.store.db import insert_ignore, now
from graduate.store.schema import dataset_builds, dataset_items, datasets

ProgressFn = Callable[[str, int, int | None], None]


@dataclass
class Dataset:
    name: str
    examples: list[Example]
    labels: list[str]
    recipe: dict[str, Any]
    content_hash: str
    id: int | None = None
    weights: list[float] = field(default_factory=list)
    # The teacher's label distribution per item (from answer logprobs), None where it gave none;
    # None for the whole set when no item has one. Students that distil (encoder) use them.
    soft_labels: list[dict[str, float] | None] | None = None
    # The teacher's rationale per item (a chain-of-thought's reasons), None where it gave none;
    # None for the whole set when no item has one. For rationale-augmented students.
    rationales: list[dict[str, Any] | None] | None = None
    # What the build measured but does not store (out-of-fold probabilities of the label-issue
    # step): `graduate data review export` ranks its queue with them.
    diagnostics: dict[str, Any] = field(default_factory=dict)
    # Who produced each item's label: the teacher labeller (or the vote), or human:REVIEWER.
    producers: list[str] | None = None

    @property
    def texts(self) -> list[str]:
        return [e.text for e in self.examples]

    @property
    def label_counts(self) -> dict[str, int]:
        return dict(Counter(self.labels))

    def without_weights(self) -> Dataset:
        """The same items and labels with every weight 1 (its own version hash), for students that
        should see the raw class shares (an ensemble member with ``use_weights: false``)."""
        if not any(w != 1.0 for w in self.weights):
            return self
        content_hash = versioned_hash(dataset_hash(self.examples, self.labels), None, self.soft_labels)
        return replace(self, weights=[], content_hash=content_hash, id=None)

    def take(self, keep: Sequence[int], *, name: str, step: dict[str, Any]) -> Dataset:
        """The items at ``keep`` (in order) as their own version: labels, weights, teacher
        distributions, rationales and producers go with them; ``step`` is added to the recipe."""
        examples = [self.examples[i] for i in keep]
        labels = [self.labels[i] for i in keep]
        weights = [self.weights[i] for i in keep] if self.weights else []
        soft = [self.soft_labels[i] for i in keep] if self.soft_labels is not None else None
        soft = soft if soft and any(p is not None for p in soft) else None
        reasons = [self.rationales[i] for i in keep] if self.rationales is not None else None
        reasons = reasons if reasons and any(r is not None for r in reasons) else None
        recipe = {**self.recipe, "steps": [*self.recipe.get("steps", []), step], "label_counts": dict(Counter(labels))}
        return Dataset(
            name, examples, labels, recipe, versioned_hash(dataset_hash(examples, labels), weights, soft), weights=weights, soft_labels=soft, rationales=reasons,
            producers=[self.producers[i] for i in keep] if self.producers is not None else None,
        )


def versioned_hash(base: str, weights: list[float] | None, soft: list[dict[str, float] | None] | None) -> str:
    """The dataset version: items and labels, then the weights and teacher distributions where
    there are any (what students learn from: other weights or distributions are another version)."""
    h = base
    if weights and any(w != 1.0 for w in weights):
        h = hashlib.sha256((h + json.dumps([round(w, 9) for w in weights])).encode()).hexdigest()
    if soft and any(p is not None for p in soft):
        h = hashlib.sha256((h + json.dumps(soft, sort_keys=True)).encode()).hexdigest()
    return h


def dataset_hash(examples: list[Example], labels: list[str]) -> str:
    h = hashlib.sha256()
    for ex, lab in sorted(zip(examples, labels), key=lambda p: (p[0].text_hash, p[1])):
        h.update(f"{ex.text_hash}\t{lab}\n".encode())
    return h.hexdigest()


def build_training_set(
    engine: Engine, spec: ProjectSpec, *, name: str = "train", progress: ProgressFn | None = None, make_detector: ModelFactory | None = None
) -> Dataset:
    """Training pool -> labels (teacher, self-consistency or ensemble) -> human corrections ->
    rule filters -> test overlap -> exact and near duplicates -> group cap -> label issues ->
    balance. Every step records in the recipe what it dropped or changed, which items and why.
    ``make_detector`` builds the label-issue student (``clean.label_issues``; the pipeline's build
    step passes one)."""
    from graduate.data.labellers import label_pool
    from graduate.store.runs import code_version

    report = progress or (lambda stage, done, total: None)
    clean = spec.clean
    pool = select_examples(engine, source=spec.train.source, tags=spec.train.tags)
    steps: list[dict[str, Any]] = [{"step": "pool", "tags": spec.train.tags, "source": spec.train.source, "kept": len(pool)}]
    gone = absent_examples(engine, source=spec.train.source, tags=spec.train.tags)
    if gone:
        from graduate.data.review import human_labels

        reviewed = len(human_labels(engine, _ids(gone)))
        steps.append(
            {
                "step": "not_in_file", "dropped": len(gone), "kept": len(pool), "removed": _ids(gone), "with_human_label": reviewed,
                "reason": f"no longer in their data file (a deleted row, a changed id_column, or a source no longer listed under data:): {ABSENT_NOTE}" + (f"; {reviewed} of them carry a reviewer's label, kept with them" if reviewed else ""),
            }
        )  # fmt: skip
    if spec.train.include_feedback and spec.train.source not in FEEDBACK_SOURCES:
        # items people labelled through POST /v1/feedback, and served items reviewed from the queue
        # (`graduate data review export` lists the teacher's disagreements with the student): their
        # human label wins (clean.human_labels)
        from graduate.data.review import human_labels

        have = {ex.id for ex in pool}
        candidates = [ex for source in FEEDBACK_SOURCES for ex in select_examples(engine, source=source) if ex.id not in have]
        reviewed = human_labels(engine, [ex.id for ex in candidates])
        extra = [ex for ex in candidates if ex.id in reviewed]
        if extra:
            pool += extra
            steps.append(
                {"step": "feedback", "added": len(extra), "reason": "served items people labelled (POST /v1/feedback, reviewed traffic)", "kept": len(pool), "added_items": _ids(extra)}
            )
    if spec.augment.include and spec.train.source != AUGMENT_SOURCE:
        have = {ex.id for ex in pool}
        made = [ex for ex in augmented_pool(engine) if ex.id not in have]
        orphans = made_from_absent(engine, _ids(made))
        if orphans:
            made = [ex for ex in made if ex.id not in orphans]
            steps.append(
                {"step": "made_from_absent", "dropped": len(orphans), "kept": len(pool), "removed": sorted(orphans), "reason": "items graduate augment made from an item no longer in its data file: they leave with it"}
            )
        if made:
            pool += made
            steps.append(
                {"step": "augmented", "added": len(made), "reason": "items graduate augment made from the pool's (augment.include)", "kept": len(pool), "added_items": _ids(made)}
            )
    report("label the pool", 0, 1)
    answers = label_pool(engine, spec, pool)
    report("label the pool", 1, 1)

    unanswered = [ex for ex in pool if not answers.by_example[ex.id].answered]
    unparsed = [ex for ex in pool if answers.by_example[ex.id].answered and answers.by_example[ex.id].label is None]
    rows = [_Row(ex, answers.by_example[ex.id].label) for ex in pool if answers.by_example[ex.id].label is not None]  # type: ignore[arg-type]
    steps.append(
        {"step": "teacher_answer", "labeller": answers.labeller, **answers.details, "dropped": len(unanswered), "reason": "no stored teacher answer", "kept": len(pool) - len(unanswered), "removed": _ids(unanswered)}
    )
    steps.append(
        {
            "step": "parse", "dropped": len(unparsed), "reason": "teacher answer did not parse to a label (ensembles: a vote without a winner)",
            "examples": [ex.external_id for ex in unparsed[:20]], "kept": len(rows), "removed": _ids(unparsed),
            # what was wrong with each, in the parser's words (unknown label word 'x', empty answer)
            "why": [f"{ex.source} id {ex.external_id}: {answers.by_example[ex.id].error}" for ex in unparsed[:20] if answers.by_example[ex.id].error],
        }
    )
    cfg = spec.train.labeller
    if cfg.kind != "teacher":
        ties = [r for r in rows if answers.by_example[r.ex.id].tie]
        steps.append({"step": "votes", "ties_broken_by_first_answer": len(ties), "examples": [r.ex.external_id for r in ties[:20]], "kept": len(rows)})
    if cfg.min_vote_share > 0:
        low = {i: f"vote share {answers.by_example[r.ex.id].share:.2f}" for i, r in enumerate(rows) if answers.by_example[r.ex.id].share < cfg.min_vote_share}
        rows = _drop(steps, rows, low, "low_agreement", f"winning vote share below train.labeller.min_vote_share {cfg.min_vote_share}")

    if clean.human_labels:
        rows = _human_labels(engine, steps, rows, pool, answers.by_example, spec.task.labels, multi_label=spec.task.multi_label)
    rows = _derived_labels(engine, steps, rows, pool, answers.labeller)
    producers = _producers(spec)
    _check_terms(spec, producers, sum(r.human is None for r in rows))

    f = clean.filters
    if f.min_chars is not None or f.max_chars is not None or f.drop_patterns:
        rows = _drop(steps, rows, rule_filter([r.ex.text for r in rows], f), "filters", "rule filters (clean.filters)", config=f.model_dump())

    if spec.train.exclude_test_overlap and spec.test_sets:
        test_hashes = {ex.text_hash for ts in spec.test_sets for ex in selection_examples(engine, ts)}
        overlap = {i: "in a test set" for i, r in enumerate(rows) if r.ex.text_hash in test_hashes}
        rows = _drop(steps, rows, overlap, "test_overlap", "same normalised text as a test item")

    dups = exact_duplicates([r.ex.text_hash for r in rows])
    conflicts = sum(1 for i, j in dups.items() if rows[i].label != rows[j].label)
    rows = _drop(
        steps, rows, {i: f"same text as {rows[j].ex.external_id}" for i, j in dups.items()}, "exact_duplicates", "same normalised text as an earlier item", label_conflicts=conflicts
    )

    nd = clean.near_duplicates
    if nd.enabled:
        report("near duplicates", 0, len(rows))
        near = near_duplicates(
            [r.ex.text for r in rows], threshold=nd.threshold, shingle_chars=nd.shingle_chars, num_perm=nd.num_perm, seed=spec.seed,
            progress=lambda done, total: report("near duplicates", done, total),
        )
        conflicts = sum(1 for i, (j, _) in near.items() if rows[i].label != rows[j].label)
        rows = _drop(
            steps, rows, {i: f"~{sim:.2f} like {rows[j].ex.external_id}" for i, (j, sim) in near.items()}, "near_duplicates",
            f"MinHash Jaccard >= {nd.threshold} with an earlier item", config=nd.model_dump(), label_conflicts=conflicts,
        )

    if clean.group_cap is not None:
        capped = cap_groups([r.ex.group for r in rows], clean.group_cap)
        rows = _drop(steps, rows, {i: f"group {rows[i].ex.group!r}" for i in capped}, "group_cap", f"more than {clean.group_cap} items of its group")

    diagnostics: dict[str, Any] = {}
    li = clean.label_issues
    multi = spec.task.multi_label
    if li.action != "off":
        rows = _label_issues(spec, steps, rows, diagnostics, report, make_detector)

    labels = [r.label for r in rows]
    bal = clean.balance
    before = per_label_counts(labels, spec.task.labels) if multi else class_counts(labels, spec.task.labels)
    step: dict[str, Any] = {"step": "balance", "strategy": bal.strategy, "before": before}
    if multi:
        # A label set is not a class: counts are per label; class_weight makes each item weigh its
        # rarest label, prior rakes the weights to each label's production share, undersample drops
        # items whose every label is more common than the rarest.
        step["per_label"] = True
        if bal.strategy == "class_weight":
            item_w, label_w = label_set_weights(labels, spec.task.labels)
            for r, w in zip(rows, item_w):
                r.weight *= w
            step.update(class_weights=label_w, reason="multi-label: each item weighs its rarest label's balanced weight (sum kept at n)")
        elif bal.strategy == "prior":
            item_w, reached = label_set_prior_weights(labels, spec.task.labels, bal.prior or {})
            for r, w in zip(rows, item_w):
                r.weight *= w
            step.update(prior=bal.prior, weighted_shares=reached, reason="multi-label: item weights raked so each label is carried by its production share (sum kept at n)")
            # a label no training item carries (or every one does) keeps its share: said, not hidden in the recipe
            missed = {lab: reached[lab] for lab, want in (bal.prior or {}).items() if abs(reached[lab] - want) > 0.01}
            if missed:
                step["prior_not_reached"] = missed
        elif bal.strategy == "undersample":
            dropped = set(undersample_label_sets(labels, spec.task.labels, seed=spec.seed))
            step.update(
                dropped=len(dropped),
                reason="multi-label: random items (seeded) whose every label is more common than the rarest label",
                removed=[[rows[i].ex.id, rows[i].label] for i in sorted(dropped)],
            )
            rows = [r for i, r in enumerate(rows) if i not in dropped]
    elif bal.strategy == "class_weight":
        cw = class_weights(labels, spec.task.labels)
        for r in rows:
            r.weight *= cw[r.label]
        step["class_weights"] = cw
    elif bal.strategy == "prior":
        pw = prior_weights(labels, bal.prior or {})
        for r in rows:
            r.weight *= pw.get(r.label, 1.0)
        step.update(prior=bal.prior, class_weights=pw)
    elif bal.strategy == "undersample":
        dropped = set(undersample(labels, seed=spec.seed))
        step.update(dropped=len(dropped), reason="random items of the larger classes (seeded)", removed=[[rows[i].ex.id, rows[i].label] for i in sorted(dropped)])
        rows = [r for i, r in enumerate(rows) if i not in dropped]
    step["after"] = per_label_counts([r.label for r in rows], spec.task.labels) if multi else class_counts([r.label for r in rows], spec.task.labels)
    step["kept"] = len(rows)
    steps.append(step)

    if cfg.weight_by_vote_share:
        for r in rows:
            r.weight *= answers.by_example[r.ex.id].share if not (r.human or r.derived) else 1.0
        steps.append({"step": "vote_share_weights", "reason": "each item weighs its winning vote share (train.labeller.weight_by_vote_share)", "kept": len(rows)})

    unique = [r.ex for r in rows]
    labels = [r.label for r in rows]
    weights = [float(r.weight) for r in rows]
    # A human-corrected label has no teacher distribution: its row trains on the hard label.
    soft = [None if (r.human or r.derived) else answers.by_example[r.ex.id].probs for r in rows]
    rationales = [None if (r.human or r.derived) else answers.by_example[r.ex.id].rationale for r in rows]
    content_hash = versioned_hash(dataset_hash(unique, labels), weights, soft)
    if any(p is not None for p in soft):
        steps.append({"step": "soft_labels", "with_distribution": sum(p is not None for p in soft), "kept": len(unique)})
    if any(r is not None for r in rationales):
        steps.append({"step": "rationales", "with_rationale": sum(r is not None for r in rationales), "kept": len(unique)})
    dataset = Dataset(
        name, unique, labels, {"steps": steps}, content_hash, weights=weights,
        soft_labels=soft if any(p is not None for p in soft) else None,
        rationales=rationales if any(r is not None for r in rationales) else None,
        diagnostics=diagnostics,
        producers=[r.human or r.derived or answers.labeller for r in rows],  # r.human: human:REVIEWER
    )
    dataset.recipe["label_counts"] = dataset.label_counts
    dataset.recipe["provenance"] = _provenance(spec, producers, rows, answers.labeller)
    if multi:
        dataset.recipe["per_label_counts"] = per_label_counts(labels, spec.task.labels)
    dataset.recipe["config"] = {
        "train": json.loads(spec.train.model_dump_json()),
        "clean": json.loads(clean.model_dump_json()),
        "teacher": spec.teacher.labeller,
        "seed": spec.seed,
        "code_version": code_version(),
    }
    dataset.id = save_dataset(engine, dataset)
    return dataset


def _producers(spec: ProjectSpec) -> list[tuple[str, Any]]:
    """(labeller, terms) of every teacher configuration whose answers make the training labels."""
    cfg = spec.train.labeller
    if cfg.kind != "ensemble":
        return [(spec.teacher.labeller, spec.teacher.terms)]
    from graduate.spec import audit_configs

    configs = {c.name: c.teacher for c in audit_configs(spec)}
    names = cfg.members or [c.name for c in spec.audit.configs]
    return [(configs[n].labeller, configs[n].terms) for n in names if n in configs]


def _check_terms(spec: ProjectSpec, producers: list[tuple[str, Any]], from_teacher: int) -> None:
    """Refuse labels whose teacher's terms forbid training (teacher.terms.train_allowed: false),
    unless train.allow_restricted_labels says the user holds the rights."""
    forbidding = [(who, terms) for who, terms in producers if terms.train_allowed is False]
    if not forbidding or not from_teacher or spec.train.allow_restricted_labels:
        return
    who, terms = forbidding[0]
    note = f" ({terms.note})" if terms.note else ""
    raise SpecError(
        f"{from_teacher} training labels come from {who}, whose terms forbid training a model on its answers{note}; "
        "label with another teacher or by review, or set train.allow_restricted_labels: true if you hold the rights",
        field="teacher.terms.train_allowed",
    )


def _provenance(spec: ProjectSpec, producers: list[tuple[str, Any]], rows: list["_Row"], labeller: str) -> dict[str, Any]:
    """Who produced the training set's labels and under which terms: the teacher labeller (with
    each configuration that voted) and every reviewer, with how many labels each."""
    reviewers: dict[str, int] = {}
    derived: dict[str, int] = {}
    for r in rows:
        if r.human is not None:
            reviewers[r.human] = reviewers.get(r.human, 0) + 1
        elif r.derived is not None:
            derived[r.derived] = derived.get(r.derived, 0) + 1
    teacher_items = sum(r.human is None and r.derived is None for r in rows)
    out = [
        {
            "producer": labeller,
            "kind": spec.train.labeller.kind,
            "items": teacher_items,
            "configs": [{"labeller": who, "train_allowed": terms.train_allowed, "note": terms.note} for who, terms in producers],
            "train_allowed": _combined(producers),
        }
    ]
    out += [{"producer": who, "kind": "human", "items": n, "configs": [], "train_allowed": True} for who, n in sorted(reviewers.items())]
    out += [{"producer": who, "kind": "derived", "items": n, "configs": [], "train_allowed": _combined(producers)} for who, n in sorted(derived.items())]
    return {"labels": out, "allow_restricted_labels": spec.train.allow_restricted_labels}


def _combined(producers: list[tuple[str, Any]]) -> bool | str:
    """False when any configuration forbids training, unknown when any is unchecked, else True."""
    values = [terms.train_allowed for _, terms in producers]
    return False if False in values else ("unknown" if "unknown" in values else True)


# Example sources of served items: labelled through POST /v1/feedback, or exported for review.
FEEDBACK_SOURCES = ("feedback", "traffic")


@dataclass
class _Row:
    ex: Example
    label: str
    weight: float = 1.0
    human: str | None = None  # the human labeller, when a review corrected or confirmed it
    derived: str | None = None  # an augmented item: augment:METHOD<the parent's labeller


def _ids(examples: list[Example]) -> list[int]:
    return [ex.id for ex in examples]


def _drop(steps: list[dict[str, Any]], rows: list[_Row], drop: dict[int, str], step: str, reason: str, **extra: Any) -> list[_Row]:
    """Drop the positions in ``drop`` (position -> why) and record the step with every removed item."""
    steps.append(
        {
            "step": step,
            "dropped": len(drop),
            "reason": reason,
            **extra,
            "examples": [rows[i].ex.external_id for i in sorted(drop)[:20]],
            "removed": [[rows[i].ex.id, why] for i, why in sorted(drop.items())],
            "kept": len(rows) - len(drop),
        }
    )
    return [r for i, r in enumerate(rows) if i not in drop]


def _derived_labels(engine: Engine, steps: list[dict[str, Any]], rows: list["_Row"], pool: list[Example], labeller: str) -> list["_Row"]:
    """Augmented items take the label they inherited from their parent (a reviewer's still wins:
    those rows are already in). A counterfactual copy follows its parent's label as this build has
    it: a reviewer who corrects the parent corrects its copies too, which otherwise kept training
    on the label the reviewer fixed."""
    present = {r.ex.id for r in rows}
    candidates = [ex for ex in pool if ex.source == AUGMENT_SOURCE and ex.id not in present]
    if not candidates:
        return rows
    derived = derived_labels(engine, [ex.id for ex in candidates])
    parents = counterfactual_parents(engine, [ex.id for ex in candidates if ex.id in derived])
    by_id = {r.ex.id: r for r in rows}
    added, changes = [], []
    for ex in candidates:
        if ex.id not in derived:
            continue
        label, who = derived[ex.id]
        parent = by_id.get(parents.get(ex.id, -1))
        if parent is not None and parent.label != label:
            changes.append([ex.id, label, parent.label, f"its parent {parent.ex.id} is labelled {parent.label!r} now"])
            label, who = parent.label, f"augment:counterfactual<{parent.human or parent.derived or labeller}"
        added.append(_Row(ex, label, derived=who))
    steps.append(
        {"step": "derived_labels", "reason": "augmented items keep their parent's label", "added": len(added), "changed": len(changes), "changes": changes, "kept": len(rows) + len(added)}
    )
    return sorted(rows + added, key=lambda r: r.ex.id)


def _unknown_labels(label: str, labels: list[str], multi_label: bool) -> list[str]:
    """The labels a stored label (a set's canonical string) names that ``labels`` no longer hold."""
    from graduate.formats import labelset

    if not multi_label:
        return [] if label in labels else [label]
    named = [] if label == labelset.NONE else [p for p in label.split(labelset.SEPARATOR) if p]
    return sorted({p for p in named if p not in labels})


def _human_labels(
    engine: Engine, steps: list[dict[str, Any]], rows: list[_Row], pool: list[Example], answers: dict[int, Any], labels: list[str], *, multi_label: bool
) -> list[_Row]:
    """Reviewers' labels (kind=human) win over the teacher's; items the teacher could not label
    come back in when a reviewer labelled them. A reviewer's label naming a label ``task.labels`` no
    longer holds (renamed since) is named in the step and left out; it stays in the store."""
    from graduate.data.review import human_labels

    human = human_labels(engine, [ex.id for ex in pool])
    stale = {ex_id: (lab, who, bad) for ex_id, (lab, who) in human.items() if (bad := _unknown_labels(lab, labels, multi_label))}
    for ex_id in stale:
        del human[ex_id]
    not_task = {
        "not_task_labels": [[ex_id, lab, who] for ex_id, (lab, who, _) in sorted(stale.items())],
        "why": [f"item {ex_id}: {who}'s {lab!r} names labels {bad} not in task.labels; kept in the store, not trained on" for ex_id, (lab, who, bad) in sorted(stale.items())][:20],
    } if stale else {}  # fmt: skip
    if not human:
        steps.append({"step": "human_labels", "changed": 0, "confirmed": 0, "added": 0, "kept": len(rows), **not_task})
        return rows
    changed, confirmed = [], 0
    present = {r.ex.id for r in rows}
    for r in rows:
        h = human.get(r.ex.id)
        if h is None:
            continue
        r.human = h[1]
        if h[0] != r.label:
            changed.append([r.ex.id, r.label, h[0], h[1]])
            r.label = h[0]
        else:
            confirmed += 1
    added = [_Row(ex, human[ex.id][0], human=human[ex.id][1]) for ex in pool if ex.id in human and ex.id not in present]
    steps.append(
        {
            "step": "human_labels",
            "reason": "a reviewer's label (graduate data review import, a reviews: file or /v1/feedback) replaces the teacher's",
            "changed": len(changed),
            "confirmed": confirmed,
            "added": len(added),
            "changes": changed,  # [example id, teacher label, human label, reviewer]
            "added_ids": [[r.ex.id, r.label, r.human] for r in added],
            "kept": len(rows) + len(added),
            **not_task,
        }
    )
    return sorted(rows + added, key=lambda r: r.ex.id)


def _label_issues(
    spec: ProjectSpec, steps: list[dict[str, Any]], rows: list[_Row], diagnostics: dict[str, Any], report: ProgressFn, make_detector: ModelFactory | None
) -> list[_Row]:
    from graduate.data.label_issues import detect_label_issues

    li = spec.clean.label_issues
    if make_detector is None:
        from graduate.errors import GraduateError

        raise GraduateError("clean.label_issues needs a student to find them: build through graduate.pipeline (Project.build_training_set)")
    # Human-reviewed labels are trusted: they train the detector but are never flagged.
    found = detect_label_issues(
        [r.ex.text for r in rows], [r.label for r in rows], spec.task.labels, make_model=make_detector, kind=li.student, params=li.params, folds=li.folds,
        filter_by=li.filter_by, seed=spec.seed, progress=lambda done, total: report("label issues (cross-validation)", done, total),
        multi_label=spec.task.multi_label,
    )
    ranked = [i for i in found.ranked if rows[i].human is None]
    limit = int(li.max_share * len(rows))
    acted = ranked[:limit]
    diagnostics["label_issues"] = {
        "example_ids": [rows[i].ex.id for i in ranked],
        "quality": {rows[i].ex.id: float(found.quality[i]) for i in range(len(rows))},
        "pred_probs": {rows[i].ex.id: found.pred_probs[i].tolist() for i in range(len(rows))},
        "labels": {rows[i].ex.id: rows[i].label for i in range(len(rows))},
    }
    base = {
        "student": li.student,
        "folds": found.folds,
        "filter_by": li.filter_by,
        "found": len(ranked),
        "action": li.action,
        "ranked": [[rows[i].ex.id, rows[i].label, round(float(found.quality[i]), 6)] for i in ranked],
    }
    if found.suspect_labels is not None:  # multi-label: which labels of each suspect set look wrong
        base["suspect_labels"] = {str(rows[i].ex.id): found.suspect_labels[i] for i in ranked}
        diagnostics["label_issues"]["suspect_labels"] = {rows[i].ex.id: found.suspect_labels[i] for i in ranked}
    if li.action == "remove":
        return _drop(
            steps, rows, {i: f"label {rows[i].label} quality {found.quality[i]:.3f}" for i in acted}, "label_issues",
            f"cleanlab: probably mislabelled (the most suspect, at most {li.max_share:.0%} of the items)", **base,
        )
    if li.action == "down_weight":
        for i in acted:
            rows[i].weight *= li.weight
        steps.append({"step": "label_issues", "reason": f"cleanlab: probably mislabelled, weight x{li.weight}", "changed": len(acted), **base, "kept": len(rows)})
        return rows
    steps.append({"step": "label_issues", "reason": "cleanlab: probably mislabelled (report only)", "changed": 0, **base, "kept": len(rows)})
    return rows


def stored_recipe(conn: Connection, dataset_id: int) -> dict[str, Any] | None:
    """The recipe of a stored dataset version's newest build (None when there is no such version)."""
    later = conn.execute(
        select(dataset_builds.c.recipe).where(dataset_builds.c.dataset_id == dataset_id).order_by(dataset_builds.c.id.desc()).limit(1)
    ).scalar()
    recipe = later if later is not None else conn.execute(select(datasets.c.recipe).where(datasets.c.id == dataset_id)).scalar()
    return json.loads(recipe) if isinstance(recipe, str) else recipe


def latest_dataset_id(conn: Connection, name: str) -> int | None:
    """The version of dataset ``name`` whose recipe was stored last: the newest version, or an
    older one rebuilt since through other steps (a build row)."""
    newest = conn.execute(select(datasets.c.id, datasets.c.created_at).where(datasets.c.name == name).order_by(datasets.c.id.desc()).limit(1)).first()
    rebuilt = conn.execute(
        select(dataset_builds.c.dataset_id, dataset_builds.c.created_at)
        .join(datasets, datasets.c.id == dataset_builds.c.dataset_id)
        .where(datasets.c.name == name)
        .order_by(dataset_builds.c.id.desc())
        .limit(1)
    ).first()
    if newest is None:
        return None
    if rebuilt is not None and _aware(rebuilt.created_at) > _aware(newest.created_at):
        return int(rebuilt.dataset_id)
    return int(newest.id)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)  # SQLite hands back naive UTC


def save_dataset(engine: Engine, dataset: Dataset) -> int:
    """Store a dataset version once (name + content hash); its items and recipe go with it. A later
    build that keeps the same items through other steps (more items dropped, say) adds its recipe
    to the version's builds (only when it differs from the one stored: a rerun adds no row), so the
    stored recipe always names every item the latest build removed."""
    recipe = json.loads(json.dumps(dataset.recipe))
    with engine.begin() as conn:
        existing = conn.execute(
            select(datasets.c.id).where(datasets.c.name == dataset.name, datasets.c.content_hash == dataset.content_hash)
        ).scalar()
        if existing is not None:
            if stored_recipe(conn, int(existing)) != recipe:
                conn.execute(dataset_builds.insert().values(dataset_id=int(existing), recipe=recipe, created_at=now()))
            return int(existing)
        ds_id = conn.execute(
            datasets.insert().values(
                name=dataset.name,
                content_hash=dataset.content_hash,
                recipe=recipe,
                size=len(dataset.examples),
                created_at=now(),
            )
        ).inserted_primary_key[0]
        insert_ignore(
            conn,
            dataset_items,
            [
                {"dataset_id": ds_id, "example_id": ex.id, "label": lab, "weight": w, "labeller": who}
                for ex, lab, w, who in zip(dataset.examples, dataset.labels, dataset.weights, dataset.producers or [None] * len(dataset.examples))
            ],
        )
    return int(ds_id)
