"""graduate synth and graduate augment --kind paraphrase: the teacher writes new items, the teacher
labels them, and the new ones join the training pool with their lineage.

Generation goes through the same client as labelling (graduate.teacher.labeling: cache, call log,
rate limits, budget), with the generation prompt in place of the task's; synth asks in chunks of
``CHUNK_CALLS`` calls and stops where the budget does, so a huge ``--n`` builds one chunk of
requests, not one per call asked, before its first call. Seeds and items are drawn by the hash of their text (graduate.data.generate.Draws), so
a rerun sends the same requests whatever order the pool is in, gets them from the call log and adds
nothing twice (``--seed`` draws others). Kept: texts that are new and no label of the task
(graduate.data.generate); stored under source ``augment`` with the teacher's label as their derived
label.
"""

from __future__ import annotations

import asyncio
import math
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence


from graduate.data.augment import SOURCE, Made, made_texts, store_made
from graduate.data.examples import Example, stored_text_hashes
from graduate.data.generate import (
    MAX_PER_CALL,
    PARAPHRASE_PROMPT,
    SYNTH_PROMPT,
    Diversity,
    Draws,
    diversity,
    generation_prompt,
    keep_new,
    label_matcher,
    parse_list,
    seed_block,
)
from graduate.data.text import text_hash
from graduate.errors import SpecError
from graduate.evaluate.slices import length_bucket, parse_slice_name
from graduate.formats.registry import answer_format
from graduate.spec.terms import term_pattern
from graduate.teacher.labeling import CutCount, label_texts
from graduate.teacher.registry import make_teacher

if TYPE_CHECKING:
    from graduate.pipeline.project import Project

MIN_SEEDS = 3
TOKENS_PER_TEXT = 120
# Writing calls asked at once: what synth holds in memory before a call is sent, however large --n.
CHUNK_CALLS = 500


@dataclass
class GenerateReport:
    method: str
    target: str | None
    target_kind: str  # label | tag | term | all
    matching: int = 0  # labelled training items the target matches
    calls: int = 0
    calls_sent: int = 0
    calls_cached: int = 0
    calls_failed: int = 0
    calls_retryable: int = 0  # of calls_failed: transient (timeouts, 429, 5xx after retries), which a rerun may get past
    calls_not_sent: int = 0  # writing and labelling calls left unsent, for the reasons below (the rest: the budget)
    calls_held: int = 0  # of calls_not_sent: waiting in an open Batch API batch
    calls_stopped: int = 0  # of calls_not_sent: the first answers were all cut off or held no text (CUT_STOP)
    calls_known_cut: int = 0  # of calls_not_sent: cut off at these very settings before (teacher.labeling.known_cut)
    cut_stopped: bool = False
    known_cut_advice: str | None = None
    generated: int = 0
    label_shaped: int = 0  # written lines that are a label of the task, not a text (graduate.data.generate.label_matcher)
    stored_already: int = 0
    near_pool: int = 0
    near_each_other: int = 0
    unlabelled: int = 0  # the teacher's label of a new text could not be read
    label_changed: int = 0  # paraphrase: the teacher labelled the rewrite differently from its parent
    added: int = 0
    per_label: dict[str, int] = field(default_factory=dict)
    diversity: Diversity | None = None
    cost_usd: float = 0.0
    budget_stopped: bool = False
    errors: list[str] = field(default_factory=list)
    asked: int = 0  # synth: texts asked for (--n)
    calls_asked: int = 0  # synth: calls the texts were asked in
    seed_draws: int = 0  # synth: how many of those calls were shown a seed sample of their own
    seeds_per_call: int = 0  # synth: seed examples shown in each call

    @property
    def budget_unsent(self) -> int:
        """Of ``calls_not_sent``: those the budget left unsent (the rest have reasons of their own)."""
        return self.calls_not_sent - self.calls_held - self.calls_stopped - self.calls_known_cut


def _labelled_pool(project: "Project") -> tuple[list[Example], list[str]]:
    # idempotent: a teacher log or data source added since the last run (or before any) joins the pool
    project.import_logs()
    project.load_data()
    dataset = project.build_training_set(name="train.generate-base")
    keep = [(ex, lab) for ex, lab in zip(dataset.examples, dataset.labels) if ex.source != SOURCE]
    return [ex for ex, _ in keep], [lab for _, lab in keep]


def resolve_target(project: "Project", target: str | None, pool: Sequence[Example], labels: Sequence[str]) -> tuple[str, list[int], str]:
    """What ``target`` names (a label, a tag of the pool, a term the texts use, or a slice as
    `graduate errors` names it: ``gold = bad``, ``<100 chars``, ``mentions 'gay'``), the indexes of
    the pool items it matches, and how the teacher's prompt describes them."""
    if target is None:
        return "all", list(range(len(pool))), ""
    spec = project.spec
    if target in spec.task.labels:
        return "label", [i for i, lab in enumerate(labels) if target in lab.split(";") or lab == target], f" labelled {target!r}"
    tagged = [i for i, ex in enumerate(pool) if target in ex.tags]
    if tagged:
        return "tag", tagged, ""
    # --target BAD: the label bad, not the word "bad" in the texts; in either Unicode form (the target
    # is read composed, NFC; a label in graduate.yaml may be written decomposed)
    cased = [lab for lab in spec.task.labels if unicodedata.normalize("NFC", lab).casefold() == target.casefold()]
    if len(cased) == 1:
        return resolve_target(project, cased[0], pool, labels)
    term = target
    named_slice = parse_slice_name(target, labels=list(spec.task.labels), length_buckets=spec.evaluation.length_buckets)
    if named_slice is not None and named_slice[0] == "label":
        return resolve_target(project, str(named_slice[1]), pool, labels)
    if named_slice is not None and named_slice[0] == "length":
        bucket = int(named_slice[1])
        within = [i for i, ex in enumerate(pool) if length_bucket(len(ex.text), spec.evaluation.length_buckets) == bucket]
        if within:
            return "length", within, _length_phrase(spec.evaluation.length_buckets, bucket)
    if named_slice is not None and named_slice[0] == "identity":
        term = str(named_slice[1])
    word = term_pattern([term])  # as the slices and the counterfactual swaps match it: "(UTC)", "c++" too
    named = [i for i, ex in enumerate(pool) if word.search(ex.text)]
    if named:
        return "term", named, f" that mention {term!r}"
    raise SpecError(
        f"--target {target!r} matches nothing: it is not a label ({', '.join(spec.task.labels)}), a tag of a training item, "
        "a slice of `graduate errors` any training item falls in, or a word any training item names; pick a slice `graduate errors` lists",
        field="--target",
    )


def _clean_target(target: str | None) -> str | None:
    """``target`` without padding; an empty one is refused (as a term it matched every item and
    told the teacher to write texts "that mention ''")."""
    if target is None:
        return None
    # Invisible format characters about it (a zero-width space, a BOM, a word joiner: what a pasted
    # name brings along) are no part of it: "bad\u200b" is the label bad, not the term "bad".
    cleaned = unicodedata.normalize("NFC", target)
    while cleaned and (cleaned[0].isspace() or unicodedata.category(cleaned[0]) == "Cf"):
        cleaned = cleaned[1:]
    while cleaned and (cleaned[-1].isspace() or unicodedata.category(cleaned[-1]) == "Cf"):
        cleaned = cleaned[:-1]
    if not cleaned:
        raise SpecError(f"--target {target!r} is empty: give a label, a tag, a term or a slice `graduate errors` lists, or leave --target out for the whole pool", field="--target")
    return cleaned


def _length_phrase(bounds: list[int], bucket: int) -> str:
    lo = bounds[bucket - 1] if bucket > 0 else None
    hi = bounds[bucket] if bucket < len(bounds) else None
    if lo is None and hi is None:
        return ""
    if lo is None:
        return f" under {hi} characters long"
    if hi is None:
        return f" of at least {lo} characters"
    return f" of {lo} to {hi - 1} characters"


def _generation_spec(project: "Project", prompt: str, per_call: int) -> Any:
    # The teacher as configured, asked to write instead of label: no task system prompt, examples,
    # answer constraint or logprobs; warmer sampling, room for the list.
    return project.spec.teacher.model_copy(
        update={
            "prompt": prompt, "system": None, "few_shot": [], "response_format": None, "logprobs": False,
            "temperature": max(project.spec.teacher.temperature, 0.9), "max_tokens": TOKENS_PER_TEXT * per_call,
        }
    )


def _ask(project: "Project", spec: Any, inputs: list[str], report: GenerateReport, cut: CutCount | None = None) -> list[Any]:
    """The teacher's written answers to ``inputs``; ``cut``: the run's answers so far, when this is
    one chunk of a run, so the CUT_STOP stop is the run's (as labelling's), not each chunk's."""
    with project.exclusive("asking the teacher to write items"):  # one spender at a time (the budget is read once)
        outcomes, stats = asyncio.run(
            # A list cut at its token room still holds the items written before the cut.
            label_texts(
                project.engine, spec, make_teacher(spec), inputs, price=project.spec.price_for(spec.model), redactor=project.redactor, whole_answers=False,
                cut=cut,
            )
        )
    report.calls += stats.distinct
    report.calls_sent += stats.sent
    report.calls_cached += stats.cached
    _count(report, stats)
    return outcomes


def _count(report: GenerateReport, stats: Any) -> None:
    """What a writing or labelling run of the teacher (``LabelStats``) failed or left unsent, and why."""
    report.calls_failed += stats.failed
    report.calls_retryable += stats.retryable
    report.calls_not_sent += stats.not_sent
    report.calls_held += stats.held
    report.calls_stopped += stats.stopped_unsent
    report.calls_known_cut += stats.known_cut
    report.cost_usd += stats.cost_usd
    report.budget_stopped = report.budget_stopped or stats.budget_stopped
    report.cut_stopped = report.cut_stopped or stats.cut_stopped
    report.known_cut_advice = stats.known_cut_advice or report.known_cut_advice
    report.errors += stats.errors[:5]


def _fresh(
    project: "Project", report: GenerateReport, generated: list[str], pool_texts: list[str], *, limit: int | None, calls: set[int]
) -> tuple[list[str], list[int]]:
    """The generated texts to label and store, with their indexes into ``generated``. Which texts
    are chosen (near copies of the pool, of items other runs made, or of each other dropped; the
    first ``limit`` kept) depends only on what the teacher wrote and those, never on what this
    run's own calls (``calls``) stored before: a rerun after an interruption picks the same texts,
    and only those not stored yet go on, so it adds nothing twice and nothing more."""
    kept = keep_new(generated, pool_texts + made_texts(project.engine, except_calls=calls), set())
    report.near_pool, report.near_each_other = kept.near_pool, kept.near_each_other
    chosen = list(zip(kept.texts, kept.origin))[: limit if limit is not None else len(kept.texts)]
    stored = stored_text_hashes(project.engine, (text_hash(t) for t, _ in chosen))
    fresh = [(t, i) for t, i in chosen if text_hash(t) not in stored]
    report.stored_already = kept.stored_already + len(chosen) - len(fresh)
    return [t for t, _ in fresh], [i for _, i in fresh]


def _label_and_store(project: "Project", report: GenerateReport, texts: list[str], lineages: list[dict[str, Any]], pool_texts: list[str]) -> None:
    """The teacher labels the new texts; those it labelled join the pool (source augment)."""
    teacher = project.spec.teacher
    if not texts:
        return
    outcomes, stats = project.label(texts)
    _count(report, stats)  # a rerun asks again for those failed or unsent (the texts are chosen alike)
    fmt = answer_format(project.spec.task.parse, project.spec.task.labels)
    made = []
    for text, lineage, outcome in zip(texts, lineages, outcomes):
        if outcome.status in ("failed", "not_sent"):
            continue
        parsed = fmt.parse(outcome.content) if outcome.content is not None else None
        if parsed is None or parsed.label is None:
            report.unlabelled += 1
            continue
        parent_label = lineage.pop("_parent_label", None)
        if parent_label is not None and parent_label != parsed.label:
            report.label_changed += 1
        lineage.update({"label_call": outcome.call_id, "label_from": teacher.labeller})
        made.append(Made(text, lineage, parsed.label, f"augment:{report.method}<{teacher.labeller}", f"{report.method} for {report.target or 'the pool'}",
                         parsed.label, ["augment", report.method] + ([f"target:{report.target}"] if report.target else [])))  # fmt: skip
    stored = store_made(project.engine, made)
    report.added = stored.added
    report.stored_already += stored.already_stored
    report.per_label = stored.per_key
    report.diversity = diversity([m.text for m in made], pool_texts)


def synth(project: "Project", *, target: str | None, n: int, seeds: int = 5, seed: int = 0) -> GenerateReport:
    """``n`` new texts of the target's kind, written by the teacher from ``seeds`` examples a call."""
    if n < 1:
        raise SpecError("--n must be at least 1", field="--n")
    if seeds < 1:  # none shown: every call the same request, answered once
        raise SpecError(f"--seeds must be at least 1 (got {seeds}): the seed examples shown in each call", field="--seeds")
    target = _clean_target(target)
    pool, labels = _labelled_pool(project)
    kind, idx, what = resolve_target(project, target, pool, labels)
    report = GenerateReport("synth", target, kind, matching=len(idx))
    if len(idx) < MIN_SEEDS:
        matched = f"match --target {target!r}" if target else "are labelled in the training pool"
        raise SpecError(f"only {len(idx)} training items {matched}; synth needs at least {MIN_SEEDS} seed examples: widen the target or label more items", field="--target")
    calls = math.ceil(n / MAX_PER_CALL)
    per_call = math.ceil(n / calls)  # 12 -> two calls of 6, not 10 + 10
    spec = _generation_spec(project, generation_prompt(SYNTH_PROMPT, per_call, what), per_call)
    draws = _SeedDraws(pool, idx, min(seeds, len(idx)), f"{project.spec.seed}:{seed}:synth:{target}:{seeds}")
    report.asked, report.calls_asked, report.seeds_per_call = n, calls, min(seeds, len(idx))
    is_label = label_matcher(project.spec.task.parse, project.spec.task.labels)
    generated: list[str] = []
    origin: list[tuple[list[int], int | None]] = []
    run_calls: set[int] = set()
    cut = CutCount()  # one for the run: its first CUT_STOP answers, whichever chunks they are in
    asked = 0
    while asked < calls:
        seed_sets = [draws.next() for _ in range(min(CHUNK_CALLS, calls - asked))]
        asked += len(seed_sets)
        outcomes = _ask(project, spec, [seed_block([pool[i].text for i in s]) for s in seed_sets], report, cut)
        for s, out in zip(seed_sets, outcomes):
            texts = _written(report, out.content, per_call, is_label)
            generated += texts
            origin += [([pool[i].id for i in s], out.call_id)] * len(texts)
        run_calls |= {out.call_id for out in outcomes if out.call_id is not None}
        if report.budget_stopped or report.cut_stopped:  # the rest would be refused alike: counted, not built
            break
    left = calls - asked
    report.calls_not_sent += left
    report.calls_stopped += left if report.cut_stopped and not report.budget_stopped else 0
    report.seed_draws = len(draws.seen) + min(left, draws.possible - len(draws.seen))
    pool_texts = [ex.text for ex in pool]
    texts, picked = _fresh(project, report, generated, pool_texts, limit=n, calls=run_calls)
    lineages = [{"method": "synth", "target": target, "target_kind": kind, "seeds": origin[i][0], "generation_call": origin[i][1]} for i in picked]
    _label_and_store(project, report, texts, lineages, pool_texts)
    return report


def _written(report: GenerateReport, content: str | None, per_call: int, is_label: Callable[[str], bool]) -> list[str]:
    """The texts of one written list (the first ``per_call`` lines); lines that are a label of the
    task, not a text, are counted and left out."""
    lines = parse_list(content)[:per_call]
    report.generated += len(lines)
    texts = [line for line in lines if not is_label(line)]
    report.label_shaped += len(lines) - len(texts)
    return texts


def _by_text(pool: Sequence[Example], idx: list[int]) -> list[int]:
    """``idx`` in an order of their own, not the pool's (items of one text by source and id)."""
    return sorted(idx, key=lambda i: (pool[i].text_hash, pool[i].source, pool[i].external_id))


class _SeedDraws:
    """One seed sample per call, drawn as the call is asked (graduate.data.generate.Draws: by the
    items' texts, whatever the pool's order), no two alike where the target has enough items: two
    calls shown the same seeds in the same order are one request, which the cache answers once, so
    the texts came back twice and fewer than asked were kept. A target of 3 items gives 6 orders;
    past that the draws repeat (the report counts the distinct ones)."""

    def __init__(self, pool: Sequence[Example], idx: list[int], k: int, salt: str):
        self.idx = _by_text(pool, idx)
        self.draws = Draws([pool[i].text_hash for i in self.idx])
        self.k, self.salt, self.calls = k, salt, 0
        self.possible = math.perm(len(idx), k)
        self.seen: set[tuple[int, ...]] = set()

    def next(self) -> list[int]:
        call, self.calls = self.calls, self.calls + 1
        for attempt in range(1001 if len(self.seen) < self.possible else 1):  # each call's own draws: no call moves another's
            draw = tuple(self.idx[j] for j in self.draws.take(f"{self.salt}:{call}:{attempt}", self.k))
            if draw not in self.seen:
                break
        self.seen.add(draw)
        return list(draw)


def unsent_reasons(report: GenerateReport) -> str:
    """Why the calls of ``report.calls_not_sent`` were not sent, e.g. "1: budget reached, 2: the first answers were all cut off or held no text"."""
    parts = [
        (report.budget_unsent, "budget reached"),
        (report.calls_stopped, "the first answers were all cut off or held no text"),
        (report.calls_known_cut, "cut off at these settings before"),
        (report.calls_held, "waiting in an open batch"),
    ]
    return ", ".join(f"{n}: {what}" for n, what in parts if n) or "budget reached"


def shortfall(report: GenerateReport) -> str | None:
    """Why fewer texts than asked were added, in one line (None when none are missing)."""
    if report.method != "synth" or report.added >= report.asked:
        return None
    why = []
    if report.seed_draws < report.calls_asked:
        fix = "widen --target" + (f" or raise --seeds (up to {report.matching})" if report.seeds_per_call < report.matching else "")
        why.append(f"the {report.matching} matching items allow only {report.seed_draws} different seed draws for {report.calls_asked} calls (asked alike, answered alike): {fix}")
    if report.calls_failed:
        why.append(f"{report.calls_failed} calls failed")
    if report.calls_not_sent or report.budget_stopped:
        why.append(f"{report.calls_not_sent} calls not sent ({unsent_reasons(report)})")
    if report.generated < report.asked:
        why.append(f"the teacher wrote {report.generated}")
    for count, what in (
        (report.stored_already, "stored already or written twice"),
        (report.near_pool, "near copies of a pool item"),
        (report.near_each_other, "near copies of each other"),
        (report.unlabelled, "without a teacher label"),
        (report.label_shaped, "written lines that are a label, not a text"),
    ):
        if count:
            why.append(f"{count} {what}")
    # Another seed helps where the teacher wrote copies or too little, not where the budget or failed calls stopped it.
    copies = report.stored_already or report.near_pool or report.near_each_other
    stopped = report.calls_failed or report.calls_not_sent or report.budget_stopped
    helps = report.seed_draws >= report.calls_asked and (copies or not stopped)
    again = "; another --seed draws other seed examples" if helps else ""
    return f"{report.added} of the {report.asked} texts asked for were added: " + ("; ".join(why) or "the teacher wrote fewer new ones") + again


def paraphrase(project: "Project", *, target: str | None, items: int = 20, per_item: int = 3, seed: int = 0) -> GenerateReport:
    """Teacher rewrites of ``items`` training items (of the target, when given), labelled again."""
    if items < 1 or per_item < 1:
        raise SpecError("--items and --per-item must be at least 1", field="--items")
    target = _clean_target(target)
    pool, labels = _labelled_pool(project)
    kind, idx, _ = resolve_target(project, target, pool, labels)
    report = GenerateReport("paraphrase", target, kind, matching=len(idx))
    per_call = min(MAX_PER_CALL, per_item)
    spec = _generation_spec(project, generation_prompt(PARAPHRASE_PROMPT, per_call), per_call)
    ordered = _by_text(pool, idx)
    chosen = [ordered[j] for j in Draws([pool[i].text_hash for i in ordered]).take(f"{project.spec.seed}:{seed}:paraphrase:{target}", min(items, len(idx)))]
    outcomes = _ask(project, spec, [pool[i].text for i in chosen], report)
    is_label = label_matcher(project.spec.task.parse, project.spec.task.labels)
    generated: list[str] = []
    origin: list[tuple[int, int | None]] = []
    for i, out in zip(chosen, outcomes):
        texts = _written(report, out.content, per_call, is_label)
        generated += texts
        origin += [(i, out.call_id)] * len(texts)
    pool_texts = [ex.text for ex in pool]
    texts, picked = _fresh(project, report, generated, pool_texts, limit=None, calls={out.call_id for out in outcomes if out.call_id is not None})
    lineages = []
    for g in picked:
        parent_index, call_id = origin[g]
        parent = pool[parent_index]
        lineages.append({"method": "paraphrase", "parent": parent.id, "parent_source": parent.source, "parent_id": parent.external_id, "target": target,
                         "generation_call": call_id, "_parent_label": labels[parent_index]})  # fmt: skip
    _label_and_store(project, report, texts, lineages, pool_texts)
    return report
