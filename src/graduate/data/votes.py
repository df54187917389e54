"""What a teacher configuration answered for each example, over all its stored samples.

A configuration is a teacher spec and a number of samples ``n``: its label for an example is the
majority of the first ``n`` successful answers to that exact request in the call log
(self-consistency; ties go to the earliest answer), with the vote share as its confidence. The
first answer's label, rationale and soft label are also recorded in the labels table, like any
teacher label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from sqlalchemy import Engine

from graduate.data.examples import Example
from graduate.data.teacher_labels import TeacherLabel, teacher_key, teacher_labels
from graduate.spec import TaskSpec, TeacherSpec
from graduate.store.calls import CallRow, samples
from graduate.formats.registry import answer_format
from graduate.formats.voting import Vote, majority_vote


@dataclass
class ExampleAnswers:
    vote: Vote  # over the first n successful answers
    used: list[CallRow]  # those answers' calls
    failed_calls: int  # calls of this request that ended in an error
    unparseable: int  # of the used answers, how many parsed to no label
    all_labels: list[str | None]  # every successful answer's label, in sample order (for disagreement)
    first: TeacherLabel | None = None


@dataclass
class ConfigAnswers:
    labeller: str
    n: int
    by_example: dict[int, ExampleAnswers] = field(default_factory=dict)

    def label(self, example_id: int) -> str | None:
        a = self.by_example.get(example_id)
        return a.vote.label if a is not None else None


def config_answers(
    engine: Engine, task: TaskSpec, teacher: TeacherSpec, examples: Sequence[Example], *, n: int = 1, record: bool = True
) -> ConfigAnswers:
    """Per example: the vote over the configuration's first ``n`` stored answers (an example with
    no stored answer gets an empty vote). ``record`` stores the first answer's label in the labels table."""
    keys = {ex.id: teacher_key(teacher, ex.text) for ex in examples}
    stored = samples(engine, keys.values())
    first = teacher_labels(engine, task, teacher, examples, record=record)
    parsed: dict[int, str | None] = {}
    out = ConfigAnswers(teacher.labeller, n)
    for ex in examples:
        rows = stored.get(keys[ex.id], [])
        ok = [r for r in rows if r.status == "ok"]
        for r in ok:
            if r.id not in parsed:
                parsed[r.id] = answer_format(task.parse, task.labels).parse(r.content).label
        used = ok[:n]
        labels = [parsed[r.id] for r in used]
        out.by_example[ex.id] = ExampleAnswers(
            vote=majority_vote(labels, tie_break="first", order=task.labels if task.multi_label else None, max_labels=task.parse.max_labels),
            used=used,
            failed_calls=sum(1 for r in rows if r.status == "error"),
            unparseable=sum(1 for lab in labels if lab is None),
            all_labels=[parsed[r.id] for r in ok],
            first=first.get(ex.id),
        )
    return out
