"""Active selection: the pure rule (uncertainty + diversity) on arrays, and graduate select on a
trained tiny project with an unlabelled source, through the CLI, exported and sent to a real fake teacher."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from graduate.data.active import select_items, text_vectors, uncertainty
from graduate.pipeline.active import parse_budget
from graduate.pipeline.project import Project
from servers import fake_openai_server
from teacher.live_teacher import cli_env, comments, point_teacher


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 40), st.integers(1, 5)), elements=st.floats(0, 1)), st.booleans())
def test_uncertainty_is_between_0_and_1(p: np.ndarray, multi: bool) -> None:
    if not multi:
        p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-9)
    u = uncertainty(p, multi_label=multi)
    assert u.shape == (p.shape[0],) and np.all(u >= -1e-9) and np.all(u <= 1 + 1e-9)


def test_a_coin_toss_is_more_uncertain_than_a_sure_answer() -> None:
    u = uncertainty(np.array([[0.5, 0.5], [0.9, 0.1], [0.0, 1.0]]))
    assert u[0] == 1.0 and u[0] > u[1] > u[2] and u[2] == 0.0
    m = uncertainty(np.array([[0.3, 0.6], [0.99, 0.0]]), multi_label=True, thresholds=[0.3, 0.6])
    assert m[0] == 1.0 and m[1] < 0.05


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 60), st.integers(0, 70), st.integers(0, 3))
def test_select_returns_n_distinct_indices_among_the_uncertain(total: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.random(total)
    vectors = rng.normal(size=(total, 4))
    picks = select_items(scores, vectors, n, seed=seed)
    assert len(picks) == min(n, total) and len(set(picks)) == len(picks)
    allowed = set(np.argsort(-scores, kind="stable")[: 5 * n].tolist())
    assert set(picks) <= allowed


def test_select_spreads_over_clusters_instead_of_taking_near_copies() -> None:
    # 6 copies of one confusing item (most uncertain) and 6 of another, slightly less uncertain.
    texts = ["the bank by the river bank was closed"] * 6 + ["you people are the worst, honestly"] * 6
    scores = np.array([0.99] * 6 + [0.9] * 6)
    picks = select_items(scores, text_vectors(texts), 2)
    assert {texts[i] for i in picks} == set(texts)  # uncertainty alone would take two copies of the first


def test_texts_without_a_word_still_get_vectors_to_spread_over() -> None:
    """A pool left with "👍", "!!!" and "?" unanswered made `graduate select` stop on an internal
    error (TF-IDF's "empty vocabulary")."""
    texts = ["👍", "!!!", "?", "🙂🙂", "👍"]
    v = text_vectors(texts)
    assert v.shape[0] == len(texts) and np.isfinite(v).all()
    assert np.allclose(v[0], v[4]) and not np.allclose(v[0], v[3])
    assert sorted(select_items(np.array([0.9, 0.8, 0.7, 0.6, 0.5]), v, 2)) != [0, 4]  # not two copies of one


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=8), min_size=1, max_size=12))
def test_any_texts_get_finite_vectors_one_a_text(texts: list[str]) -> None:
    v = text_vectors(texts)
    assert v.shape[0] == len(texts) and np.isfinite(v).all()


def test_budget_is_items_or_usd_and_nonsense_is_named() -> None:
    assert parse_budget("500").items == 500 and parse_budget("$5").usd == 5.0 and parse_budget("2.5").usd == 2.5 and parse_budget("3usd").usd == 3.0
    for bad in ["abc", "0", "$0", "-3", "", "5 items", "１"]:
        try:
            parse_budget(bad)
        except Exception as exc:  # noqa: BLE001
            assert "--budget" in str(exc)
        else:
            raise AssertionError(bad)


@pytest.mark.parametrize("text", ["$1,50", "1,5", "2,50usd", "1,0000", ",500", "500,", "1,,000", "$0,5"])
def test_a_comma_that_is_no_thousands_separator_is_one_line_not_another_budget(text: str) -> None:
    """Commas were dropped wherever they stood: "$1,50" (a dollar fifty, as much of Europe writes
    it) was a budget of $150, and "1,5" 15 items."""
    from graduate.errors import SpecError

    with pytest.raises(SpecError) as caught:
        parse_budget(text)
    said = str(caught.value)
    assert "--budget" in said and "thousands" in said and "\n" not in said.strip(), said


def test_a_comma_between_groups_of_three_digits_is_a_thousands_separator() -> None:
    assert parse_budget("1,000").items == 1000 and parse_budget("$1,250.50").usd == 1250.5 and parse_budget("12,345,678").items == 12345678
    # a budget wrong for another reason is not blamed on its (right) comma
    for text in ("1,000 $", "€1,000"):
        with pytest.raises(Exception) as caught:
            parse_budget(text)
        assert "is neither a number of items" in str(caught.value) and "thousands" not in str(caught.value), text


def add_unlabelled(project: Path, n: int) -> Path:
    rows = [{"id": f"u{i}", "comment_text": f"{t} (asked again, {i})"} for i, t in enumerate(comments(project, n))]
    path = project / "unlabelled.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["id", "comment_text"])
        w.writeheader()
        w.writerows(rows)
    spec = yaml.safe_load((project / "graduate.yaml").read_text())
    spec["data"].append({"name": "unlabelled", "path": "./unlabelled.csv", "id_column": "id"})
    (project / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def graduate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graduate", *args], capture_output=True, text=True, env=cli_env(), timeout=180)


def test_select_exports_the_uncertain_unanswered_items_then_sends_them(trained_copy: Path) -> None:
    add_unlabelled(trained_copy, 60)
    result = graduate("select", str(trained_copy), "--budget", "12", "--source", "unlabelled")
    assert result.returncode == 0, result.stderr
    with (trained_copy / ".graduate" / "select.csv").open(newline="", encoding="utf-8") as f:
        chosen = list(csv.DictReader(f))
    assert len(chosen) == 12 and len({r["external_id"] for r in chosen}) == 12 and all(r["source"] == "unlabelled" for r in chosen)
    scores = [float(r["uncertainty"]) for r in chosen]
    assert scores == sorted(scores, reverse=True) and "of 60 unanswered pool items" in result.stdout
    flat = " ".join(result.stdout.split())
    assert "fill corrected_label, then `graduate data review import" in flat and "not train.source 'jigsaw'" in flat, flat
    # the queue is a review file: filled in, `graduate data review import` takes it (it could not: no example_id column)
    filled = trained_copy / "filled.csv"
    with filled.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(chosen[0]))
        w.writeheader()
        w.writerows({**r, "corrected_label": "ok" if i < 3 else ""} for i, r in enumerate(chosen))
    imported = graduate("data", "review", "import", str(trained_copy), str(filled), "--reviewer", "ann")
    assert imported.returncode == 0 and re.search(r"new human labels\W+3\b", imported.stdout), imported.stdout + imported.stderr

    assert "learning curve: none yet" in result.stdout
    import json

    from graduate.evaluate.curve import CurveFit

    curve = {"fit": CurveFit(True, 0.9, 2.0, 0.5, "fitted").__dict__, "dataset_size": 100, "test_set": "test.balanced"}
    (trained_copy / ".graduate" / "curve-tfidf-logreg.json").write_text(json.dumps(curve))
    priced = graduate("select", str(trained_copy), "--budget", "12", "--source", "unlabelled", "--output", str(trained_copy / "priced.csv"))
    assert "learning curve: labelling 12 more items is expected to add" in priced.stdout  # 100 -> 112 items on 0.9 - 2 n^-0.5

    too_small = graduate("select", str(trained_copy), "--budget", "$0.000001", "--source", "unlabelled")
    assert too_small.returncode == 2 and "below one teacher call" in too_small.stderr

    with fake_openai_server() as server:
        point_teacher(trained_copy, server.base_url)
        sent = graduate("select", str(trained_copy), "--budget", "12", "--source", "unlabelled", "--send")
        assert sent.returncode == 0, sent.stderr
        assert server.stats()["ok"] == 12
        again = graduate("select", str(trained_copy), "--budget", "12", "--source", "unlabelled", "--output", str(trained_copy / "next.csv"))
    assert "of 45 unanswered pool items" in again.stdout  # 60, less the 3 reviewed and the 12 answered
    with (trained_copy / ".graduate" / "select.csv").open(newline="", encoding="utf-8") as f:
        sent_ids = {r["external_id"] for r in csv.DictReader(f)}  # --send wrote the queue of what it sent
    with (trained_copy / "next.csv").open(newline="", encoding="utf-8") as f:
        assert not {r["external_id"] for r in csv.DictReader(f)} & sent_ids  # answered items are never chosen again


def test_items_a_reviewer_labelled_are_not_chosen_again(trained_copy: Path) -> None:
    """select -> fill the queue -> review import -> select handed the reviewer the same items again."""
    add_unlabelled(trained_copy, 30)
    queue = trained_copy / "queue.csv"
    first = graduate("select", str(trained_copy), "--budget", "5", "--source", "unlabelled", "--output", str(queue))
    assert first.returncode == 0, first.stderr
    with queue.open(newline="", encoding="utf-8") as f:
        chosen = list(csv.DictReader(f))
    with queue.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(chosen[0]))
        w.writeheader()
        w.writerows({**r, "corrected_label": "ok"} for r in chosen)
    imported = graduate("data", "review", "import", str(trained_copy), str(queue), "--reviewer", "ann")
    assert imported.returncode == 0 and re.search(r"new human labels\W+5\b", imported.stdout), imported.stdout + imported.stderr
    again = graduate("select", str(trained_copy), "--budget", "5", "--source", "unlabelled", "--output", str(trained_copy / "next.csv"))
    assert again.returncode == 0 and "of 25 unanswered pool items" in again.stdout, again.stdout + again.stderr
    with (trained_copy / "next.csv").open(newline="", encoding="utf-8") as f:
        assert not {r["external_id"] for r in csv.DictReader(f)} & {r["external_id"] for r in chosen}


def test_items_a_teacher_log_added_since_the_run_answers_are_not_chosen(trained_copy: Path) -> None:
    """A log declared in graduate.yaml after the run was never imported by select: the items it
    answers were chosen again, and --send would pay for them twice."""
    import json

    from graduate.formats.prompt import render_messages
    from graduate.pipeline.project import Project

    add_unlabelled(trained_copy, 30)
    proj = Project.load(trained_copy)
    teacher = proj.spec.teacher
    answered = [f"{t} (asked again, {i})" for i, t in enumerate(comments(trained_copy, 10))]
    with (trained_copy / "later.batch_input.jsonl").open("w") as f:
        for i, text in enumerate(answered):
            body = {"model": teacher.model, "temperature": teacher.temperature, "messages": render_messages(teacher, text)}
            f.write(json.dumps({"custom_id": f"later/{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}) + "\n")
    with (trained_copy / "later.batch_output.jsonl").open("w") as f:
        for i in range(len(answered)):
            choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": '{"is_bad": 0}'}}
            f.write(json.dumps({"custom_id": f"later/{i}", "response": {"status_code": 200, "body": {"model": teacher.model, "choices": [choice]}}, "error": None}) + "\n")
    spec = yaml.safe_load((trained_copy / "graduate.yaml").read_text())
    spec["teacher_logs"].append({"input": "later.batch_input.jsonl", "output": "later.batch_output.jsonl"})
    (trained_copy / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    result = graduate("select", str(trained_copy), "--budget", "30", "--source", "unlabelled")
    assert result.returncode == 0 and "20 of 20 unanswered pool items" in " ".join(result.stdout.split()), result.stdout + result.stderr
    with (trained_copy / ".graduate" / "select.csv").open(newline="", encoding="utf-8") as f:
        assert not {r["text"] for r in csv.DictReader(f)} & set(answered)


def test_an_output_that_cannot_be_a_file_is_one_line(trained_copy: Path) -> None:
    """--output naming a folder ended in "internal error ... IsADirectoryError" after the selection ran."""
    add_unlabelled(trained_copy, 10)
    (trained_copy / "a-file").write_text("x")
    for output, message in [(trained_copy, "is a folder; give a file name"), (trained_copy / "a-file" / "q.csv", "is a file, not a folder")]:
        result = graduate("select", str(trained_copy), "--budget", "3", "--source", "unlabelled", "--output", str(output))
        assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stdout + result.stderr
        assert "internal error" not in result.stderr


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=30))
def test_any_budget_text_is_a_budget_or_one_line_naming_the_option(text: str) -> None:
    from graduate.errors import SpecError

    try:
        b = parse_budget(text)
    except SpecError as exc:
        assert "--budget" in str(exc) and "\n" not in str(exc).strip()
    else:
        assert (b.items is not None and b.items >= 1) or (b.usd is not None and b.usd > 0)


@pytest.mark.parametrize("text", ["9" * 400, "$" + "9" * 400, "9" * 400 + ".5usd"])
def test_a_budget_too_large_for_a_float_is_all_items_or_one_line(text: str) -> None:
    """400 nines ended in "internal error ... OverflowError" (float infinity made an int)."""
    from graduate.errors import SpecError

    try:
        b = parse_budget(text)
    except SpecError as exc:
        assert "--budget" in str(exc) and "too large" in str(exc)
    else:
        assert b.items == int(text)


def test_a_pool_with_nothing_left_names_the_data_source_that_has_unanswered_items(trained_copy: Path) -> None:
    """With train.source all answered and a source of new items added, `select --budget 5` said
    "load more items (a data source, or --source/--tags)": the items were loaded; which --source
    holds them went unsaid."""
    add_unlabelled(trained_copy, 7)
    # and a source of gold items a test set reads: never named, or the teacher is paid for test items to train on
    rows = [{"id": f"h{i}", "comment_text": f"{t} (held out, {i})", "is_bad": "0"} for i, t in enumerate(comments(trained_copy, 5))]
    with (trained_copy / "heldout.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["id", "comment_text", "is_bad"])
        w.writeheader()
        w.writerows(rows)
    spec = yaml.safe_load((trained_copy / "graduate.yaml").read_text())
    spec["data"].append({"name": "heldout", "path": "./heldout.csv", "id_column": "id", "gold_column": "is_bad", "gold_values": {"0": "ok", "1": "bad"}})
    spec["test_sets"].append({"name": "heldout", "source": "heldout", "tags": ["*"]})
    (trained_copy / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    result = graduate("select", str(trained_copy), "--budget", "5")
    said = " ".join(result.stderr.split())
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1, result.stdout + result.stderr
    assert "nothing to choose from; --source unlabelled has 7 unanswered items" in said and "heldout" not in said, said


@pytest.mark.parametrize("source", ["unlabeled", "", " "])
def test_a_source_that_names_no_data_source_is_one_line_listing_them(trained_copy: Path, source: str) -> None:
    """`select --source unlabeled` (a typo) said "name a data source with --source" without naming
    one, and `--source ''` (an empty shell variable) chose from train.source's items as if no
    --source were given."""
    add_unlabelled(trained_copy, 7)
    result = graduate("select", str(trained_copy), "--budget", "5", "--source", source)
    said = " ".join(result.stderr.split())
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stdout + result.stderr
    assert f"option: --source: {source!r} names no stored item; give one of graduate.yaml's data sources: jigsaw, unlabelled" in said, said
    assert not (trained_copy / ".graduate" / "select.csv").exists()


def test_a_filled_in_queue_not_imported_yet_is_not_written_over(trained_copy: Path) -> None:
    """select (and data review export) rewrote their CSV on every run: a reviewer's answers not yet
    imported were lost without a word."""
    add_unlabelled(trained_copy, 30)
    queue = trained_copy / ".graduate" / "select.csv"
    assert graduate("select", str(trained_copy), "--budget", "5", "--source", "unlabelled").returncode == 0
    with queue.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with queue.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows({**r, "corrected_label": "ok" if i < 2 else "", "reviewer": "ann"} for i, r in enumerate(rows))
    before = queue.read_bytes()
    again = graduate("select", str(trained_copy), "--budget", "5", "--source", "unlabelled")
    assert again.returncode == 2, again.stdout + again.stderr
    assert "select.csv: holds 2 reviewed rows (corrected_label filled in) that are not imported yet" in " ".join(again.stderr.split()), again.stderr
    assert queue.read_bytes() == before  # kept as the reviewer left it
    # the same guard on the review queue's own export
    review = trained_copy / "queue.csv"
    review.write_bytes(before)
    export = graduate("data", "review", "export", str(trained_copy), "--out", str(review))
    assert export.returncode == 2 and "holds 2 reviewed rows" in " ".join(export.stderr.split()), export.stderr
    # once imported, the queue may be written again
    imported = graduate("data", "review", "import", str(trained_copy), str(queue))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    third = graduate("select", str(trained_copy), "--budget", "5", "--source", "unlabelled")
    assert third.returncode == 0, third.stderr
    assert queue.read_bytes() != before


def test_select_says_when_the_chosen_items_carry_none_of_train_tags(trained_copy: Path) -> None:
    # The same source but tags train.tags leaves out: the labels never reach training, and only
    # another source was ever named.
    add_unlabelled(trained_copy, 30)
    spec = yaml.safe_load((trained_copy / "graduate.yaml").read_text())
    spec["train"] = {"source": "unlabelled", "tags": ["train*"]}
    (trained_copy / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    result = graduate("select", str(trained_copy), "--budget", "5", "--tags", "*")
    assert result.returncode == 0, result.stderr
    flat = " ".join(result.stdout.split())
    assert "5 of these items carry none of train.tags ['train*']: their labels (teacher or reviewer) reach training once train.tags take them in" in flat, flat


def test_select_send_says_why_items_cut_off_before_are_not_sent_again(trained_copy: Path) -> None:
    # At temperature 0 an answer cut off at max_tokens comes back cut: label no longer pays for it
    # again. select --send went through the same path but said nothing and exited 0.
    add_unlabelled(trained_copy, 20)
    with fake_openai_server(shape="length") as server:
        point_teacher(trained_copy, server.base_url, max_tokens=3, temperature=0)
        first = graduate("select", str(trained_copy), "--budget", "4", "--source", "unlabelled", "--send")
        assert first.returncode == 1 and server.stats()["requests"] == 4, first.stdout + first.stderr
    with fake_openai_server() as server:
        point_teacher(trained_copy, server.base_url)
        again = graduate("select", str(trained_copy), "--budget", "4", "--source", "unlabelled", "--send")
        assert server.stats()["requests"] == 0, again.stdout + again.stderr
    assert again.returncode == 1 and "not sent 4" in again.stdout, again.stdout + again.stderr
    assert "raise teacher.max_tokens" in again.stderr, again.stderr


def test_select_send_whose_answers_fail_says_why_and_what_it_left_unsent(trained_copy: Path) -> None:
    """select --send with answers that held no text printed "failed 5, not sent 3" and exited 1:
    not the answers' fault and fix (as `graduate label` prints them), nor that the first answers
    stopped the rest."""
    from graduate.teacher.labeling import CUT_STOP

    add_unlabelled(trained_copy, 20)
    with fake_openai_server(shape="tool-calls") as server:
        point_teacher(trained_copy, server.base_url, max_retries=0, concurrency=1)
        result = graduate("select", str(trained_copy), "--budget", str(CUT_STOP + 3), "--source", "unlabelled", "--send")
        assert server.stats()["ok"] == CUT_STOP
    said = " ".join(result.stderr.split())
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed: the answer holds a tool call, not text" in said and "check teacher.model and teacher.prompt in graduate.yaml" in said, said
    assert "error: the first answers were all cut off or held no text, so 3 items were not sent" in said, said


def test_copies_of_one_text_are_chosen_once(trained_copy: Path) -> None:
    """A pool holding one text under three ids filled three places of the budget with it: a reviewer
    labelled it three times, and --send priced three calls the call log answers as one."""
    from graduate.pipeline.active import Budget
    from graduate.pipeline.active import select as choose

    texts = ["is this rude or not, hard to say"] * 3 + ["a second text, asked twice"] * 2 + ["a third one", "and a fourth"]
    with (trained_copy / "unlabelled.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "comment_text"])
        w.writerows((f"u{i}", t) for i, t in enumerate(texts))
    spec = yaml.safe_load((trained_copy / "graduate.yaml").read_text())
    spec["data"].append({"name": "unlabelled", "path": "./unlabelled.csv", "id_column": "id"})
    (trained_copy / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    proj = Project.load(trained_copy)
    for n in (3, 10):
        chosen = [ex.text for ex in choose(proj, Budget(items=n), source="unlabelled").chosen]
        assert len(chosen) == len(set(chosen)) == min(n, 4), chosen
