"""graduate select: which unlabelled items of the pool the teacher should answer next.

The best trained student scores the pool's items the call log has no teacher answer for and no
reviewer labelled; the
items it is least sure of, spread over the pool (graduate.data.active), fill the budget, given as
a number of items or in USD (priced with the teacher's estimated cost per call). They are sent
to the teacher or exported as a review queue.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

import numpy as np

from graduate.data.active import select_items, text_vectors, uncertainty
from graduate.data.examples import Example, select_examples
from graduate.data.review import human_labels
from graduate.data.teacher_labels import teacher_key
from graduate.errors import NotReadyError, SpecError
from graduate.formats.tokens import estimate_prompt_tokens
from graduate.store.calls import answers, longest_answer
from graduate.teacher.labeling import output_reserve
from graduate.teacher.prompt import render_messages

if TYPE_CHECKING:
    from graduate.pipeline.project import Project
    from graduate.spec import ProjectSpec

PREDICT_BATCH = 4096


@dataclass
class Budget:
    items: int | None = None
    usd: float | None = None


def parse_budget(text: str) -> Budget:
    """'500' is 500 items; '$5', '5usd' or '5.00' is USD. A comma is a thousands separator
    ('1,000', '$1,250.50') and nothing else: '$1,50' is refused, not read as $150."""
    raw = text.strip().lower()
    if "," in raw:
        number = re.fullmatch(r"\$?\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(usd)?", raw.replace(",", ""))
        if number is not None and re.fullmatch(r"\$?\s*[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?\s*(?:usd)?", raw) is None:
            raise SpecError(
                f"budget {text!r}: a comma goes only between groups of three digits, as a thousands separator (1,000 or $1,250.50); "
                "write cents with a point ($1.50)",
                field="--budget",
            )
        raw = raw.replace(",", "")
    usd = re.fullmatch(r"\$?\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(usd)?", raw)
    if usd is None:
        raise SpecError(f"budget {text!r} is neither a number of items (500) nor USD ($5, 5usd, 5.00)", field="--budget")
    if raw.startswith("$") or usd.group(2) or "." in usd.group(1):
        number = float(usd.group(1))
        if number <= 0:
            raise SpecError(f"budget {text!r} must be more than $0", field="--budget")
        if not math.isfinite(number):
            raise SpecError(f"budget {text[:20]!r}... is too large a sum; give a smaller one or a number of items", field="--budget")
        return Budget(usd=number)
    items = int(usd.group(1))  # an int, however long: a float of 400 digits is infinity
    if items < 1:
        raise SpecError(f"budget {text!r} must be at least 1 item", field="--budget")
    return Budget(items=items)


@dataclass
class Selection:
    pool: int  # items of the pool
    unanswered: int  # of those, without a teacher answer: what selection chooses from
    chosen: list[Example]
    scores: list[float]  # uncertainty, 0 (sure) .. 1
    predicted: list[str]
    probs: np.ndarray
    labels: list[str]
    cost_per_call_usd: float | None
    student: str
    pool_shares: dict[str, float]  # the student's estimate of each label's share in the pool (mean probability)
    curve_advice: str | None = None  # what the learning curve (graduate curve) expects that many more items to add
    outside_training: int = 0  # chosen items train.source and train.tags leave out: their labels do not reach training

    @property
    def est_cost_usd(self) -> float | None:
        return None if self.cost_per_call_usd is None else self.cost_per_call_usd * len(self.chosen)


def select(project: "Project", budget: Budget, *, source: str | None = None, tags: list[str] | None = None, seed: int = 0) -> Selection:
    spec = project.spec
    # a teacher log or data source added to graduate.yaml since the last run joins the pool: an
    # item a log answers is not chosen (and paid for) again
    project.import_logs()
    project.load_data()
    sources = ", ".join(d.name for d in spec.data)
    if source is not None and not source.strip():  # an empty shell variable: not "the default pool"
        raise SpecError(f"{source!r} names no stored item; give one of graduate.yaml's data sources: {sources}", field="--source")
    src = source or spec.train.source
    patterns = tags or (["*"] if source else spec.train.tags)  # another source: all of its items
    pool = select_examples(project.engine, source=src, tags=patterns)
    if not pool and source is not None and (patterns == ["*"] or not select_examples(project.engine, source=source, tags=["*"])):
        raise SpecError(f"{source!r} names no stored item; give one of graduate.yaml's data sources: {sources}", field="--source")
    if not pool:
        raise SpecError(f"the pool (source {src or 'any'}, tags {patterns}) matches no stored item; name a data source with --source and tags with --tags", field="--source/--tags")
    todo = _unanswered(project, pool)
    unanswered = len(todo)
    # Copies of one text are one teacher call (the call log answers them all): chosen once, or a
    # reviewer labels the text again and again and the cost counts calls never made.
    distinct: dict[str, Example] = {}
    for ex in todo:
        distinct.setdefault(teacher_key(spec.teacher, ex.text), ex)
    todo = list(distinct.values())
    if not todo:
        # Another data source may hold the new items (train.source is the default pool): name it.
        # Not a source a test set reads: its items are gold to test on, never to pay the teacher for and train on.
        tested = {t.source for t in spec.test_sets}
        others = [d.name for d in spec.data if d.name != src and d.name not in tested]
        elsewhere = [] if source else [(name, len(_unanswered(project, select_examples(project.engine, source=name, tags=["*"])))) for name in others]
        where = "; ".join(f"--source {name} has {count} unanswered items" for name, count in elsewhere if count)
        raise NotReadyError(
            f"every one of the pool's {len(pool)} items has a teacher answer or a reviewer's label: nothing to choose from; "
            + (where or "load more items (a data source, or --source/--tags)")
        )
    price = spec.price_for(spec.teacher.model)
    out_reserve = output_reserve(spec.teacher, longest_answer(project.engine, spec.teacher.model))
    per_call = None
    if price is not None:
        sample = todo[:: max(1, len(todo) // 500)]
        per_call = float(np.mean([price.cost(estimate_prompt_tokens(render_messages(spec.teacher, ex.text)), out_reserve) for ex in sample]))
    if budget.usd is not None:
        if per_call is None:
            raise SpecError(f"a budget in USD needs the teacher's price: add prices: {{{spec.teacher.model}: {{input_per_1m: ..., output_per_1m: ...}}}}; or give a number of items", field="prices")
        calls = budget.usd / per_call if per_call > 0 else math.inf
        n = len(todo) if calls >= len(todo) else math.floor(calls)  # a sum past a float's range is every item, not an OverflowError
        if n < 1:
            raise SpecError(f"a budget of ${budget.usd:g} is below one teacher call (~${f'{per_call:.8f}'.rstrip('0').rstrip('.')}); raise it or give a number of items", field="--budget")
    else:
        n = budget.items or 0
    n = min(n, len(todo))
    student, run = project.best_student()
    texts = [ex.text for ex in todo]
    probs = np.vstack([student.predict_proba(texts[i : i + PREDICT_BATCH]) for i in range(0, len(texts), PREDICT_BATCH)])
    scores = uncertainty(probs, multi_label=student.multi_label, thresholds=student.thresholds if student.multi_label else None)
    picks = select_items(scores, text_vectors(texts, seed=seed), n, seed=seed)
    decided = student.decide(probs[picks]) if picks else []
    return Selection(
        pool=len(pool), unanswered=unanswered, chosen=[todo[i] for i in picks], scores=[float(scores[i]) for i in picks], predicted=list(decided),
        probs=probs[picks], labels=list(student.labels), cost_per_call_usd=per_call, student=f"{run.name} (run {run.id[:8]})",
        pool_shares={lab: float(v) for lab, v in zip(student.labels, probs.mean(axis=0))},
        curve_advice=_curve_advice(project, student.kind, len(picks), per_call),
        outside_training=sum(not _in_training_pool(spec, todo[i]) for i in picks),
    )


def _unanswered(project: "Project", pool: list[Example]) -> list[Example]:
    """The items of ``pool`` without a teacher answer (call log) or a reviewer's label: a filled
    review queue imported back must not come round again in the next one."""
    keys = {ex.id: teacher_key(project.spec.teacher, ex.text) for ex in pool}
    answered = answers(project.engine, keys.values())
    reviewed = human_labels(project.engine, [ex.id for ex in pool])
    return [ex for ex in pool if keys[ex.id] not in answered and ex.id not in reviewed]


def _in_training_pool(spec: "ProjectSpec", ex: Example) -> bool:
    """Whether ``train.source`` and ``train.tags`` take ``ex`` in (as the build selects its pool)."""
    if ex.source != spec.train.source:
        return False
    patterns = spec.train.tags
    return not patterns or patterns == ["*"] or any(fnmatchcase(t, p) for t in ex.tags for p in patterns)


def _curve_advice(project: "Project", kind: str, n: int, per_call: float | None) -> str | None:
    """The learning curve's word on ``n`` more items, when `graduate curve` ran for this kind: a
    curve of random additions, so a floor for chosen ones (benchmarks/bench_select.py)."""
    import json

    from graduate.evaluate.curve import CurveFit, marginal_value

    path = project.workdir / f"curve-{kind}.json"
    if not path.exists() or n < 1:
        return None
    try:
        data = json.loads(path.read_text())
        fit = CurveFit(**data["fit"])
        size = int(data["dataset_size"])
    except (ValueError, KeyError, TypeError):
        return None
    return marginal_value(fit, size, n, per_call, min_gain_points=0.5).text + f" ({path.name}: random additions on {data.get('test_set')})"
