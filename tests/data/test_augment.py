"""graduate augment --kind counterfactual: term swaps that keep the label, stored with lineage,
added once, trained on by the next build (a reviewer's label still wins)."""

from __future__ import annotations

import csv
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from graduate.data.augment import swaps
from graduate.errors import SpecError
from graduate.pipeline.project import Project
from graduate.store.schema import examples
from teacher.live_teacher import cli_env

TERMS = ["gay", "straight", "muslim", "christian"]


def test_a_swap_replaces_every_occurrence_as_a_whole_word_and_keeps_case():
    out = swaps("Gay people are GAY, not gayish. gay!", TERMS, 2, random.Random(0))
    assert len(out) == 2
    for text, old, new in out:
        assert old == "gay" and new != "gay" and "gayish" in text
        assert text.startswith(new.capitalize() + " people are " + new.upper() + ",") and text.endswith(f" {new}!")
    assert swaps("nothing to swap here", TERMS, 3, random.Random(0)) == []


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=200), per_item=st.integers(1, 5))
def test_any_text_gives_at_most_per_item_copies_each_naming_another_term(text, per_item):
    out = swaps(text, TERMS, per_item, random.Random(1))
    assert len(out) <= min(per_item, len(TERMS) - 1)
    assert len({t for t, _, _ in out}) == len(out) or not out  # distinct terms put in
    for new_text, old, new in out:
        assert new.lower() != old and new.lower() in new_text.lower()


def _with_augment(project: Path, **augment) -> Project:
    path = project / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["augment"] = {"term_lists": {"identity": ["man", "woman", "person", "child"]}, **augment}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return Project.load(project)


def test_augment_adds_copies_with_lineage_once_and_the_build_trains_on_them(trained_copy: Path) -> None:
    proj = _with_augment(trained_copy, counterfactual={"per_item": 2, "labels": ["ok"]})
    before = proj.build_training_set()
    report = proj.augment()
    assert report.considered > 0 and report.matching >= 1 and report.added >= report.matching
    assert proj.augment().added == 0  # the copies are stored: nothing twice
    with proj.engine.connect() as conn:
        rows = conn.execute(select(examples.c.id, examples.c.text, examples.c.lineage).where(examples.c.source == "augment")).all()
    assert len(rows) == report.added
    parent_texts = {ex.id: ex.text for ex in before.examples}
    for r in rows:
        lineage = r.lineage
        assert lineage["method"] == "counterfactual" and lineage["parent"] in parent_texts and lineage["swap"][1] in r.text.lower()
    after = proj.build_training_set()
    by_id = {ex.id: (lab, who) for ex, lab, who in zip(after.examples, after.labels, after.producers)}
    assert all(by_id[r.id][0] == "ok" and by_id[r.id][1].startswith("augment:counterfactual<teacher:") for r in rows)
    assert any(st["step"] == "augmented" and st["added"] == len(rows) for st in after.recipe["steps"])
    kinds = {p["kind"]: p for p in after.recipe["provenance"]["labels"]}
    assert kinds["derived"]["items"] == len(rows)
    # switched off: the next build leaves them out
    proj = _with_augment(trained_copy, include=False)
    assert len(proj.build_training_set().examples) == len(before.examples)


def test_run_makes_the_copies_when_the_spec_says_in_run_and_a_rerun_adds_none(trained_copy: Path) -> None:
    proj = _with_augment(trained_copy, counterfactual={"per_item": 2, "labels": ["ok"]}, in_run=True)
    first = proj.run()
    aug = first["augment"]
    assert aug["added"] > 0 and aug["items_naming_a_term"] >= 1 and sum(aug["added_per_term"].values()) == aug["added"]
    steps = {st["step"]: st for st in first["dataset"]["recipe"]["steps"]}
    assert steps["augmented"]["added"] == aug["added"]  # the copies are in the training set the students learnt
    with proj.engine.connect() as conn:
        stored = conn.execute(select(examples.c.id).where(examples.c.source == "augment")).all()
    assert len(stored) == aug["added"]
    again = Project.load(trained_copy).run()
    assert again["augment"]["added"] == 0 and again["augment"]["already_stored"] == aug["added"]
    assert again["dataset"]["content_hash"] == first["dataset"]["content_hash"]
    with proj.engine.connect() as conn:
        assert len(conn.execute(select(examples.c.id).where(examples.c.source == "augment")).all()) == len(stored)


def test_a_missing_term_list_is_one_line(trained_copy: Path) -> None:
    path = trained_copy / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["augment"] = {"counterfactual": {"terms": "jobs"}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(SpecError, match=r"no term list 'jobs'.*augment.term_lists.jobs"):
        Project.load(trained_copy).augment()
    out = subprocess.run([sys.executable, "-m", "graduate", "augment", str(trained_copy)], capture_output=True, text=True, timeout=120, env=cli_env())
    assert out.returncode != 0 and len(out.stderr.strip().splitlines()) == 1 and "augment.term_lists.jobs" in out.stderr


def test_targeted_additions_put_only_the_weak_slices_term_in(trained_copy: Path) -> None:
    proj = _with_augment(trained_copy, counterfactual={"per_item": 3})
    report = proj.augment(target="child")
    assert report.added >= 1 and set(report.per_term) == {"child"}
    with proj.engine.connect() as conn:
        rows = conn.execute(select(examples.c.text, examples.c.lineage).where(examples.c.source == "augment")).all()
    assert rows and all(r.lineage["swap"][1] == "child" and "child" in r.text.lower() for r in rows)
    with pytest.raises(SpecError, match="is not in term list 'identity'"):
        proj.augment(target="martian")
    result = subprocess.run(
        [sys.executable, "-m", "graduate", "augment", str(trained_copy), "--target", "[bold]martian"], capture_output=True, text=True, env=cli_env(), timeout=120
    )
    assert result.returncode == 2 and "'[bold]martian' is not in term list" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_paraphrase_options_given_with_counterfactual_are_refused_not_ignored(trained_copy: Path) -> None:
    """--per-item 8 with --kind counterfactual made the spec's 3 copies an item, silently."""
    _with_augment(trained_copy, counterfactual={"per_item": 3}).engine.dispose()
    result = subprocess.run(
        [sys.executable, "-m", "graduate", "augment", str(trained_copy), "--kind", "counterfactual", "--per-item", "8"], capture_output=True, text=True, env=cli_env(), timeout=120
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stdout + result.stderr
    assert "--per-item applies only to --kind paraphrase" in result.stderr and "augment.counterfactual.per_item" in result.stderr
    proj = Project.load(trained_copy)
    with proj.engine.connect() as conn:
        assert conn.execute(select(examples.c.id).where(examples.c.source == "augment")).first() is None  # nothing made
    proj.engine.dispose()


def test_the_term_slice_as_graduate_errors_names_it_is_a_target(trained_copy: Path) -> None:
    proj = _with_augment(trained_copy, counterfactual={"per_item": 3})
    report = proj.augment(target="mentions 'child'")
    assert report.added >= 1 and set(report.per_term) == {"child"}


def test_counterfactual_on_a_project_never_run_reads_its_logs_and_data_first(tiny_project: Path) -> None:
    """Before any `graduate run` it said no labelled training item names a term: nothing was in the store."""
    _with_augment(tiny_project, counterfactual={"per_item": 2}).engine.dispose()
    result = subprocess.run([sys.executable, "-m", "graduate", "augment", str(tiny_project)], capture_output=True, text=True, env=cli_env(), timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"new items added\W+[1-9]", result.stdout), result.stdout


def test_a_reviewers_correction_of_a_parent_reaches_its_counterfactual_copies(trained_copy: Path, tmp_path: Path) -> None:
    """A reviewer relabelled an item; its copies kept the label the reviewer had fixed, so the next
    build trained on per_item wrong copies of the corrected item."""
    import csv

    from graduate.data.review import review_columns

    proj = _with_augment(trained_copy, counterfactual={"per_item": 2})
    assert proj.augment().added > 0
    with proj.engine.connect() as conn:
        made = conn.execute(select(examples.c.id, examples.c.lineage).where(examples.c.source == "augment")).all()
    before = proj.build_training_set()
    label = {ex.id: lab for ex, lab in zip(before.examples, before.labels)}
    parent = made[0].lineage["parent"]
    copies = [r.id for r in made if r.lineage["parent"] == parent]
    assert copies and all(label[c] == label[parent] for c in copies)
    other = next(lab for lab in proj.spec.task.labels if lab != label[parent])
    with proj.engine.connect() as conn:
        row = conn.execute(select(examples).where(examples.c.id == parent)).mappings().one()
    queue = tmp_path / "review.csv"
    with queue.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=review_columns(list(proj.spec.task.labels)), restval="")
        w.writeheader()
        w.writerow({"example_id": parent, "source": row["source"], "external_id": row["external_id"], "text": row["text"], "corrected_label": other})
    imported = subprocess.run(
        [sys.executable, "-m", "graduate", "data", "review", "import", str(trained_copy), str(queue), "--reviewer", "ann"], capture_output=True, text=True, env=cli_env(), timeout=120
    )
    assert imported.returncode == 0, imported.stdout + imported.stderr
    after = proj.build_training_set()
    label = {ex.id: lab for ex, lab in zip(after.examples, after.labels)}
    producer = {ex.id: who for ex, who in zip(after.examples, after.producers or [])}
    assert label[parent] == other and all(label[c] == other for c in copies), {c: label[c] for c in copies}
    assert all(producer[c] == "augment:counterfactual<human:ann" for c in copies)
    step = next(s for s in after.recipe["steps"] if s["step"] == "derived_labels")
    assert step["changed"] == len(copies) and {c[0] for c in step["changes"]} == set(copies)


def test_a_term_list_that_no_training_item_names_is_one_line(trained_copy: Path) -> None:
    proj = _with_augment(trained_copy)
    path = trained_copy / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["augment"]["term_lists"]["identity"] = ["zyzzyva", "quokka"]
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(SpecError, match="names a term of list 'identity'"):
        Project.load(trained_copy).augment()


def test_per_item_by_label_gives_each_label_its_own_number_of_copies(trained_copy: Path) -> None:
    proj = _with_augment(trained_copy, counterfactual={"per_item": {"ok": 3, "bad": 1}})
    report = proj.augment()
    assert report.added >= 1
    with proj.engine.connect() as conn:
        rows = conn.execute(select(examples.c.lineage).where(examples.c.source == "augment")).all()
    dataset = proj.build_training_set()
    label_of = {ex.id: lab for ex, lab in zip(dataset.examples, dataset.labels)}
    per_parent = Counter(r.lineage["parent"] for r in rows)
    assert per_parent and all(n <= (3 if label_of[parent] == "ok" else 1) for parent, n in per_parent.items())
    assert {label_of[p] for p in per_parent} <= {"ok", "bad"}


@pytest.mark.parametrize(
    ("per_item", "message"),
    [({"ok": 3, "rude": 1}, r"per_item names unknown labels \['rude'\]"), ({"ok": 51}, "counts from 0 to 50"), (0, "a number from 1 to 50")],
)
def test_a_bad_per_item_is_one_line_naming_the_field(trained_copy: Path, per_item, message: str) -> None:
    path = trained_copy / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["augment"] = {"counterfactual": {"per_item": per_item}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = subprocess.run([sys.executable, "-m", "graduate", "augment", str(trained_copy)], capture_output=True, text=True, timeout=120, env=cli_env())
    assert out.returncode != 0 and len(out.stderr.strip().splitlines()) == 1 and "per_item" in out.stderr, out.stderr
    assert re.search(message, out.stderr), out.stderr


@pytest.mark.parametrize("labels", [["rude"], ["OK"], ["ok", "bad", "nope"], ["(none)"]])  # (none): only label sets have it
def test_counterfactual_labels_not_of_the_task_are_one_line_when_graduate_yaml_is_read(trained_copy: Path, labels: list[str]) -> None:
    """augment.counterfactual.labels naming a label the task lacks (a typo, another case) was read
    without a word: per_item's labels were checked at load, these only at `graduate augment`, whose
    error blamed the training items ("no labelled training item with labels ['rude'] names a term")
    and `graduate run` with augment.in_run off never said it."""
    path = trained_copy / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["augment"] = {"counterfactual": {"labels": labels}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = subprocess.run([sys.executable, "-m", "graduate", "check", str(trained_copy)], capture_output=True, text=True, timeout=120, env=cli_env())
    unknown = sorted(set(labels) - {"ok", "bad"})
    assert out.returncode != 0 and len(out.stderr.strip().splitlines()) == 1, out.stdout + out.stderr
    assert f"augment.counterfactual.labels names unknown labels {unknown}; allowed: ['ok', 'bad']" in out.stderr, out.stderr


def test_run_with_in_run_and_a_term_list_that_matches_nothing_is_one_line_and_keeps_the_store(trained_copy: Path) -> None:
    proj = _with_augment(trained_copy, in_run=True)
    path = trained_copy / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["augment"]["term_lists"]["identity"] = ["zyzzyva", "quokka"]
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with proj.engine.connect() as conn:
        before = conn.execute(select(examples.c.id)).all()
    out = subprocess.run([sys.executable, "-m", "graduate", "run", str(trained_copy)], capture_output=True, text=True, timeout=300, env=cli_env())
    # stderr holds the progress lines, then the error: one line, no traceback
    last = out.stderr.strip().splitlines()[-1]
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    assert "names a term of list 'identity'" in last and "term list" in last
    assert sum("names a term" in line for line in out.stderr.splitlines()) == 1
    with proj.engine.connect() as conn:
        assert sorted(conn.execute(select(examples.c.id)).all()) == sorted(before)  # nothing lost, nothing added


def test_terms_that_begin_or_end_with_a_sign_are_swapped_as_the_slices_match_them():
    """\\b needs a letter beside it, so "LGBTQ+" and "#MeToo" were never found (the error analysis
    reported their slices, augment made no copies for them)."""
    rng = random.Random(0)
    terms = ["LGBTQ+", "#MeToo", "muslim"]
    assert [t for t, _, _ in swaps("A proud lgbtq+ person.", terms, 5, rng, target="muslim")] == ["A proud muslim person."]
    assert [t for t, _, _ in swaps("#MeToo stories matter", terms, 5, rng, target="lgbtq+")] == ["LGBTQ+ stories matter"]
    assert swaps("aLGBTQ+ and x#metoox", terms, 5, rng) == []  # still whole words only


def test_padded_or_blank_identity_terms_never_glue_a_term_into_every_gap():
    """`identity_terms: [gay, muslim, " "]` matched the empty string and made
    'Thanksmuslimreadingmuslim...' copies; "muslim " turned "muslim people" into "gaypeople"."""
    from graduate.spec.evaluation import EvaluationSpec

    assert EvaluationSpec(identity_terms=["gay", " muslim ", " ", "Gay"]).identity_terms == ["gay", "muslim"]
    rng = random.Random(0)
    assert swaps("Thanks for reading there now", ["gay", "muslim", " "], 3, rng) == []
    assert [t for t, _, _ in swaps("muslim people here", ["gay", "muslim ", ""], 3, rng)] == ["gay people here"]


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=60),
    terms=st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=6), min_size=2, max_size=5),
)
def test_a_text_naming_no_term_gets_no_copy(text, terms):
    """Whatever the list holds (blanks, signs, odd Unicode): no copy for a text that names none of
    its terms, and every copy differs from the text."""
    named = [t.strip() for t in terms if t.strip() and t.strip().lower() in text.lower()]
    out = swaps(text, terms, 3, random.Random(0))
    if not named:
        assert out == []
    for copy, taken, put in out:
        assert copy != text or taken.lower() == put.lower()


def test_a_term_followed_or_preceded_by_a_combining_mark_is_inside_a_word():
    """A combining mark is not \\w, so "हिंद" matched inside "हिंदू" (its vowel sign) and "cafe" inside
    a decomposed "café": the copy put the mark on another term ("baŕ") and the slice counted the item."""
    from graduate.evaluate.slices import make_slices

    rng = random.Random(0)
    assert swaps("हिंदू धर्म", ["हिंद", "मुस्लिम"], 3, rng) == []
    assert swaps("a cafe\u0301 culture", ["cafe", "bar"], 3, rng) == []
    assert swaps("e\u0301cafe here", ["cafe", "bar"], 3, rng) == []
    assert [t for t, _, _ in swaps("a cafe culture\u0301", ["cafe", "bar"], 3, rng)] == ["a bar culture\u0301"]
    slices = make_slices(["a cafe\u0301 culture", "हिंदू धर्म", "a cafe"], ["ok"] * 3, labels=["ok", "bad"], length_buckets=[], identity_terms=["cafe", "हिंद"])
    assert {s.name: s.members for s in slices if s.kind == "identity"} == {"mentions 'cafe'": [2], "mentions 'हिंद'": []}


def test_a_copy_never_puts_in_a_term_the_text_already_names():
    """"gay and straight people" became "straight and straight people"; and "istanbul" was swapped
    for "İstanbul", itself in another case (str.lower gives "i̇stanbul", which the match ignores)."""
    rng = random.Random(0)
    assert [(t, new) for t, _, new in swaps("gay and straight people", ["gay", "straight", "muslim"], 3, rng)] == [("muslim and straight people", "muslim")]
    assert [new for _, _, new in swaps("istanbul is big", ["İstanbul", "Ankara"], 3, rng)] == ["Ankara"]
    assert swaps("istanbul is big", ["İstanbul", "Ankara"], 3, rng, target="istanbul") == []


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(st.sampled_from(["gay", "Straight", "MUSLIM", "İstanbul", "istanbul", "c++", "the", "he", "people", ",", "ß", "SS"]), max_size=12),
    terms=st.lists(st.sampled_from(["gay", "straight", "muslim", "İstanbul", "Istanbul", "c++", "he", "she", "ß", "ss"]), min_size=2, max_size=6, unique=True),
)
def test_the_term_put_in_was_named_nowhere_in_the_text(words, terms):
    from graduate.spec.terms import term_pattern

    text = " ".join(words)
    for copy, taken, put in swaps(text, terms, 5, random.Random(0)):
        assert term_pattern([put]).search(text) is None, (text, put)
        assert term_pattern([put]).search(copy) and copy != text


def test_a_term_listed_twice_in_another_case_is_one_term():
    """[Muslim, muslim, gay] gave a "gay" item two copies, "Muslim ..." and "muslim ...", one text to
    the store: the first run said a copy was "already stored" and made fewer than per_item."""
    from graduate.spec.augment import AugmentSpec

    spec = AugmentSpec(term_lists={"identity": ["Muslim", " muslim", "gay", "GAY ", "İstanbul", "istanbul"]})
    assert spec.term_lists["identity"] == ["Muslim", "gay", "İstanbul"]
    with pytest.raises(ValueError, match="at least two different terms"):
        AugmentSpec(term_lists={"identity": ["Gay", "gay"]})


def test_a_rerun_after_the_pool_changed_adds_no_second_copy_of_an_item(trained_copy: Path) -> None:
    """One seeded generator drew every item's terms in pool order: once a row left the data file
    (or a label changed), the rerun drew other terms for the items after it and gave them a
    second copy each, past per_item."""
    from graduate.spec.terms import term_pattern

    proj = _with_augment(trained_copy, counterfactual={"per_item": 1})
    first = proj.augment()
    assert first.added >= 3
    path = trained_copy / "comments.csv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    named = term_pattern(["man", "woman", "person", "child"])
    gone = next(i for i, r in enumerate(rows) if r["subsets"].startswith("train") and named.search(r["comment_text"]))
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(r for i, r in enumerate(rows) if i != gone)
    proj.engine.dispose()
    proj = Project.load(trained_copy)
    proj.load_data()
    assert proj.augment().added == 0
    with proj.engine.connect() as conn:
        parents = Counter(lin["parent"] for lin in conn.execute(select(examples.c.lineage).where(examples.c.source == "augment")).scalars())
    assert max(parents.values()) == 1


def test_a_term_inside_a_longer_listed_phrase_stays_with_its_phrase():
    """"gay and gay men", terms [gay, gay men, women]: every "gay" was replaced, the one in the
    phrase "gay men" too, giving "women and women men"."""
    out = swaps("gay and gay men", ["gay", "gay men", "women"], 3, random.Random(0))
    assert [t for t, _, _ in out] == ["women and gay men"]


def test_a_term_is_named_in_any_canonically_equal_spelling_and_the_rest_of_the_text_is_kept():
    """Terms were matched on the text as stored: "café" missed a decomposed "cafe\\u0301" (and a
    decomposed term missed the composed text), a zero-width joiner inside "gayish" made it name
    "gay" while a soft hyphen inside "gay" hid it, and "gay man" missed "gay  man", "gay\\tman" or
    "gay\\u00a0man". The copy replaces the term in the text as it was, nothing else."""
    from graduate.evaluate.slices import make_slices

    rng = random.Random(0)
    one = lambda text, terms, target: [t for t, _, _ in swaps(text, terms, 5, rng, target=target)]  # noqa: E731
    assert one("a cafe\u0301 culture", ["café", "bar"], "bar") == ["a bar culture"]
    assert one("a café culture", ["cafe\u0301", "bar"], "bar") == ["a bar culture"]
    assert one("E\u0301COLE and e\u0301cole", ["école", "lycée"], "lycée") == ["LYCÉE and lycée"]
    assert one("Cafe\u0301 noir", ["café", "bar"], "bar") == ["Bar noir"]
    assert swaps("so gay\u200dish", ["gay", "muslim"], 3, rng) == []
    assert swaps("so gay\u200cish", ["gay", "muslim"], 3, rng) == []
    assert one("so g\u00aday, \u200bgay\u200b!", ["gay", "muslim"], "muslim") == ["so muslim, \u200bmuslim\u200b!"]
    for gap in ["  ", "\t", "\u00a0", "\n", " \u200b\n", "\u3000"]:
        assert one(f"a Gay{gap}Man here  and\tthere", ["gay man", "straight woman"], "straight woman") == ["a Straight woman here  and\tthere"], gap
        assert one(f"a GAY{gap}MAN", ["gay man", "straight woman"], "straight woman") == ["a STRAIGHT WOMAN"], gap
    assert swaps("a gay mango", ["gay man", "straight woman"], 3, rng) == []
    texts = ["a cafe\u0301", "gay\u00a0\nman", "gay\u200dish", "g\u00aday", "plain"]
    slices = make_slices(texts, ["ok"] * 5, labels=["ok", "bad"], length_buckets=[], identity_terms=["café", "gay man", "gay"])
    assert {s.name: s.members for s in slices if s.kind == "identity"} == {"mentions 'café'": [0], "mentions 'gay man'": [1], "mentions 'gay'": [1, 3]}


def test_a_zero_width_space_separates_words_as_a_space_does():
    """U+200B was left out with the other format characters: "gay\u200band" folded to "gayand", so
    the item was not in the slice of "gay", got no copy, and kept its term when masked; "gay\u200bman"
    did not name "gay man". The joiners and the soft hyphen inside a word are still left out."""
    from graduate.evaluate.slices import make_slices
    from graduate.spec.terms import fold, mask_terms, term_pattern

    text = "I am gay\u200band proud"
    texts = [text, "gay\u200dand", "g\u00aday\ufeff", "a GAY\u200bMAN", "gay\u200b\u00adman"]
    slices = make_slices(texts, ["ok"] * 5, labels=["ok", "bad"], length_buckets=[], identity_terms=["gay", "gay man"])
    assert {s.name: s.members for s in slices if s.kind == "identity"} == {"mentions 'gay'": [0, 2, 3, 4], "mentions 'gay man'": [3, 4]}
    assert [fold(t) for t in texts] == ["I am gay and proud", "gayand", "gay", "a GAY MAN", "gay man"]
    assert swaps(text, ["gay", "muslim"], 3, random.Random(0)) == [("I am muslim\u200band proud", "gay", "muslim")]
    assert mask_terms(text, term_pattern(["gay"]), "[T]") == "I am [T]\u200band proud"
    pair = ["gay man", "straight woman"]
    assert [t for t, _, _ in swaps("a GAY\u200bMAN, ok", pair, 3, random.Random(0))] == ["a STRAIGHT WOMAN, ok"]
    assert [t for t, _, _ in swaps("\u200bgay\u200b\u00adman\u200b!", pair, 3, random.Random(0))] == ["\u200bstraight woman\u200b!"]
    assert mask_terms("x gay\u200bman\u200by", term_pattern(pair), "[T]") == "x [T]\u200by"  # text the fast path reads
    assert mask_terms("x ga\u200dy\u200bman\u200by", term_pattern(pair), "[T]") == "x [T]\u200by"  # and letter by letter


def test_the_term_taken_out_is_named_in_the_lineage_as_the_spec_lists_it(trained_copy: Path) -> None:
    """The lineage named the term taken out as the text spelt it, lower-cased: "İZMİRLİ" became
    "i̇zmi̇rli̇" (each "İ" an "i" and a combining dot), a term of no list, the text's spelling neither."""
    from graduate.data.augment import counterfactual
    from graduate.data.csv_source import Item
    from graduate.data.examples import add_examples, select_examples

    terms = ["İzmirli", "Ankaralı", "gay"]
    assert [(old, new) for _, old, new in swaps("Die İZMİRLİ sind da", terms, 1, random.Random(0), target="gay")] == [("İzmirli", "gay")]
    assert [old for _, old, _ in swaps("GAY and izmirli", terms, 3, random.Random(0))] == ["gay"]
    proj = _with_augment(trained_copy, term_lists={"identity": terms}, counterfactual={"per_item": 2})
    add_examples(proj.engine, "turkish", [Item("t1", "Die İZMİRLİ sind da"), Item("t2", "izmirli kahvaltı")])
    pool = select_examples(proj.engine, source="turkish")
    report = counterfactual(proj.engine, proj.spec, {ex.id: ("ok", "human:test") for ex in pool}, pool)
    assert report.added == 4
    with proj.engine.connect() as conn:
        lineages = conn.execute(select(examples.c.lineage).where(examples.c.source == "augment")).scalars().all()
    assert len(lineages) == 4 and all(lin["swap"][0] == "İzmirli" and lin["swap"][1] in terms for lin in lineages)


def test_terms_spelled_apart_only_by_composition_or_spacing_are_one_term():
    from graduate.spec.augment import AugmentSpec
    from graduate.spec.terms import same_term

    assert same_term("café", "CAFE\u0301") and same_term("gay  man", "gay\u00a0man") and same_term("gay", "g\u00aday")
    assert not same_term("cafe", "café")
    assert AugmentSpec(term_lists={"identity": ["café", "cafe\u0301", "bar", "\u200b"]}).term_lists["identity"] == ["café", "bar"]


# Any text, and text of what folding joins or drops: marks, letters they compose with, jamo,
# format characters, odd spaces.
_ODD = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
    st.text(st.sampled_from(["e", "\u0301", "\u0323", "\u0307", "\u1e0a", "\u212b", "\u1100", "\u1161", "\u11a8", "\u0b47", "\u0b3e", "\u200d", "\u00ad", "\u00a0", "\n", " ", "\u3099", "\u304b", "\u200b"]), max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(
    before=_ODD,
    after=_ODD,
    spelling=st.sampled_from(["gay man", "GAY\u00a0MAN", "gay  man", "gay\t\u200bman", "g\u00aday\nman", "Gay\u2003man", "gay\u200bman", "Gay\u200b\u00ad\u200bMan"]),
)
def test_a_copy_keeps_the_text_around_the_term_byte_for_byte(before, after, spelling):
    """Whatever surrounds the term (marks, format characters, odd spaces, unnormalised text): the
    copy is the text with the term's own span replaced."""
    from graduate.spec.terms import term_pattern

    terms = ["gay man", "muslim"]
    if term_pattern(terms).search(before) or term_pattern(terms).search(after):
        return
    out = swaps(f"{before} {spelling} {after}", terms, 3, random.Random(0))
    assert len(out) == 1
    copy, taken, put = out[0]
    assert (taken, put) == ("gay man", "muslim")
    assert copy.startswith(before + " ") and copy.endswith(" " + after)
    assert copy[len(before) + 1 : len(copy) - len(after) - 1].lower() == "muslim"


@settings(max_examples=400, deadline=None)
@given(
    words=st.lists(
        st.sampled_from(["gay", "Gay", "GAY", "gay man", "(gay)", "gays", "muslim,", "straight", "x", "café", "İstanbul", "—", "e\u0301", "g\u200bay", "gay\u200bman", "\u200bgay"])
        | st.text(st.characters(blacklist_categories=("Cs",)), max_size=6),
        max_size=12,
    ),
    gaps=st.lists(st.sampled_from([" ", "  ", "\t", "\n", "\u00a0", " \n ", "\u200b", " \u200b", "\u200b\u200b"]), min_size=12, max_size=12),
)
def test_plain_text_is_folded_and_replaced_as_letter_by_letter_reading_does(words: list[str], gaps: list[str]) -> None:
    """The fast view of composed text without format characters (white-space runs and words) gives
    the folded text, the masked text and the swaps that reading it letter by letter gives."""
    import unicodedata

    from graduate.spec import terms as T

    text = "".join(w + g for w, g in zip(words, gaps))
    pattern = T.term_pattern(["gay", "gay man", "muslim", "straight", "café", "istanbul"])
    letters = T._view_letters(text)
    assert letters[0] == T.fold(text)
    if not unicodedata.is_normalized("NFC", text) or T._format().search(text):
        return  # the fast view is not taken
    plain = T._view_plain(text)
    assert plain[0] == letters[0]
    matches = [(m, "[T]") for m in pattern.regex.finditer(plain[0])]
    assert T._replace(text, *plain, matches) == T._replace(text, *letters, matches)
    assert T.mask_terms(text, pattern, "[T]") == T._replace(text, *letters, matches)  # one regex pass over the text itself
