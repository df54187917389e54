"""The README keys the call cache by (model, messages, parameters): a teacher whose temperature or
max_tokens changed is asked again. The labels table kept the first answer's label (one row per item
and labeller, inserted once), so the review queue, feedback and cascade costs read an answer to a
request the spec no longer makes. The answer to the current request replaces it, logged."""

from __future__ import annotations

from pathlib import Path

from servers import fake_openai_server
from servers.fake_openai import is_rude
from sqlalchemy import select
from teacher.live_teacher import point_teacher
from teacher.test_label_keys import label, row_value, write_items

from graduate.data.teacher_labels import owns_labels, teacher_key
from graduate.pipeline.project import Project
from graduate.store.schema import label_changes, labels, teacher_calls


def _stored(proj: Project, ids: list[int]) -> dict[int, tuple[str | None, str]]:
    with proj.engine.connect() as conn:
        rows = conn.execute(
            select(labels.c.example_id, labels.c.label, teacher_calls.c.cache_key)
            .join(teacher_calls, teacher_calls.c.id == labels.c.call_id)
            .where(labels.c.example_id.in_(ids), labels.c.labeller == proj.spec.teacher.labeller)
        ).all()
    return {r.example_id: (r.label, r.cache_key) for r in rows}


def test_a_changed_temperature_replaces_the_stored_teacher_label(tiny_project: Path, tmp_path: Path) -> None:
    proj = Project.load(tiny_project)
    proj.import_logs()
    proj.load_data()
    built = proj.build_training_set()
    fake = {ex.id: "bad" if is_rude(ex.text) else "ok" for ex in built.examples}
    differs = next(i for i, ex in enumerate(built.examples) if built.labels[i] != fake[ex.id])
    same = next(i for i, ex in enumerate(built.examples) if built.labels[i] == fake[ex.id])
    chosen = [built.examples[differs], built.examples[same]]
    ids = [ex.id for ex in chosen]
    before = _stored(proj, ids)
    assert before[ids[0]][0] == built.labels[differs]

    with fake_openai_server() as server:
        point_teacher(tiny_project, server.base_url, temperature=0.7, max_tokens=20)
        # the first text twice: one example, one change logged
        result = label(tiny_project, write_items(tmp_path / "t" / "items.csv", [(str(i), ex.text) for i, ex in enumerate([*chosen, chosen[0]])]))
    assert result.returncode == 0, result.stderr
    assert row_value(result.stdout, "sent and answered") == 2  # a new request: asked again
    proj = Project.load(tiny_project)
    after = _stored(proj, ids)
    assert after == {ex.id: (fake[ex.id], teacher_key(proj.spec.teacher, ex.text)) for ex in chosen}
    with proj.engine.connect() as conn:
        changes = conn.execute(select(label_changes.c.example_id, label_changes.c.old_label, label_changes.c.new_label, label_changes.c.origin)).all()
    assert [(c.example_id, c.old_label, c.new_label) for c in changes] == [(ids[0], built.labels[differs], fake[ids[0]])]
    assert "teacher request changed" in changes[0].origin

    again = proj.build_training_set()  # the build at the new temperature agrees with what is stored
    assert dict(zip([ex.id for ex in again.examples], again.labels)) == {ex.id: fake[ex.id] for ex in chosen}  # only these have answers now
    assert _stored(proj, ids) == after


def test_an_audit_config_at_another_temperature_does_not_take_the_teachers_labels(tiny_project: Path) -> None:
    spec = Project.load(tiny_project).spec
    warm = spec.teacher.model_copy(update={"temperature": 0.9})
    other = spec.teacher.model_copy(update={"model": "gpt-3.5-turbo", "temperature": 0.9})
    assert owns_labels(spec.teacher, spec.teacher) and not owns_labels(spec.teacher, warm) and owns_labels(spec.teacher, other)
