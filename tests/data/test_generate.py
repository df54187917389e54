"""graduate synth and augment --kind paraphrase: the teacher writes, the teacher labels, the new
items join the pool with their lineage; against the fault-injecting teacher on 127.0.0.1 and (small
n) the local llama.cpp teacher. Reruns send nothing and add nothing twice."""

from __future__ import annotations

import csv
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from graduate.data.generate import Draws, keep_new, label_matcher, parse_list
from graduate.data.text import text_hash
from graduate.pipeline.generate import CHUNK_CALLS, shortfall
from graduate.errors import SpecError
from graduate.pipeline.project import Project
from graduate.spec import ParseSpec
from graduate.store.schema import examples
from servers import fake_openai_server
from servers.fake_openai import LABEL_LINES, is_rude
from teacher.live_teacher import cli_env, live_calls, point_teacher


def test_a_numbered_answer_is_read_line_by_line() -> None:
    content = '1. "First one."\n2) second one\n\n- third one\n• fourth\n10. tenth\nx\n'
    assert parse_list(content) == ["First one.", "second one", "third one", "fourth", "tenth"]
    assert parse_list(None) == [] and parse_list("") == []


def test_a_preamble_or_remark_around_the_list_is_not_a_text() -> None:
    """A chat model's "Here are 3 new texts:" was stored, labelled and trained on as a written text."""
    content = "Sure! Here are 3 new texts:\n\n1. you are a total idiot\n2. lovely weather today\n3. \"what a jerk\"\n\nI hope these help!"
    assert parse_list(content) == ["you are a total idiot", "lovely weather today", "what a jerk"]
    assert parse_list("one text on its own\nanother one") == ["one text on its own", "another one"]  # no list: every line


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=500))
def test_any_answer_parses_to_short_clean_lines(content: str) -> None:
    for line in parse_list(content):
        assert 3 <= len(line) <= 2000 and "\n" not in line and line == line.strip()


def test_only_new_texts_are_kept() -> None:
    pool = ["the cat sat on the mat today", "stocks fell sharply on monday morning"]
    generated = ["the cat sat on the mat today", "The cat sat on the mat today!", "a dog ran in the park", "a dog ran in the park", "rain is expected tomorrow"]
    kept = keep_new(generated, pool, stored_hashes=set())
    assert kept.texts == ["a dog ran in the park", "rain is expected tomorrow"]
    assert kept.near_pool == 2 and kept.stored_already == 1


def augmented(project: Path) -> list:
    proj = Project.load(project)
    with proj.engine.connect() as conn:
        rows = conn.execute(select(examples.c.text, examples.c.lineage).where(examples.c.source == "augment")).all()
    proj.engine.dispose()
    return rows


def test_synth_writes_labels_and_stores_new_items_once(trained_copy: Path) -> None:
    with fake_openai_server() as server:
        point_teacher(trained_copy, server.base_url)
        proj = Project.load(trained_copy)
        report = proj.synth(target="bad", n=12, seeds=4)
        assert report.target_kind == "label" and report.calls == 2 and report.generated == 12 and report.added == 12
        assert report.per_label == {"bad": 6, "ok": 6}  # the teacher labels what it wrote: half of it is rude
        rows = augmented(trained_copy)
        assert len(rows) == 12 and all(r.lineage["method"] == "synth" and len(r.lineage["seeds"]) == 4 for r in rows)
        dataset = proj.build_training_set()
        by_text = {ex.text: lab for ex, lab in zip(dataset.examples, dataset.labels)}
        assert all(by_text[r.text] == ("bad" if is_rude(r.text) else "ok") for r in rows)
        sent = server.stats()["ok"]
        again = proj.synth(target="bad", n=12, seeds=4)  # the same seeds: from the call log, nothing new
        assert again.calls_sent == 0 and again.added == 0 and server.stats()["ok"] == sent
        other = proj.synth(target="bad", n=12, seeds=4, seed=1)
        assert other.added == 12


def test_paraphrase_rewrites_items_and_labels_them_again(trained_copy: Path) -> None:
    with fake_openai_server() as server:
        point_teacher(trained_copy, server.base_url)
        result = subprocess.run(
            [sys.executable, "-m", "graduate", "augment", str(trained_copy), "--kind", "paraphrase", "--items", "5", "--per-item", "2"],
            capture_output=True, text=True, env=cli_env(), timeout=180,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = augmented(trained_copy)
    assert len(rows) == 10 and all(r.lineage["method"] == "paraphrase" and r.lineage["parent"] for r in rows)
    assert "new items added" in result.stdout


def test_synth_and_paraphrase_exit_non_zero_when_teacher_calls_fail(trained_copy: Path) -> None:
    """As `graduate label` does: a failed call is an error to retry, not a quiet success."""
    with fake_openai_server(p500=1.0) as server:
        point_teacher(trained_copy, server.base_url, max_retries=0)
        runs = [
            subprocess.run([sys.executable, "-m", "graduate", *args], capture_output=True, text=True, env=cli_env(), timeout=180)
            for args in (["synth", str(trained_copy), "--n", "3"], ["augment", str(trained_copy), "--kind", "paraphrase", "--items", "2"])
        ]
    for result in runs:
        assert result.returncode == 1, result.stdout + result.stderr
        flat = " ".join(result.stderr.split())
        assert "teacher calls failed after every retry (timeouts, rate limits, server errors); run the same command again" in flat, flat
        assert "re-run would fail alike" not in flat
        assert "trains on the new items" not in result.stdout
    assert augmented(trained_copy) == []


def test_refused_teacher_calls_name_the_field_to_fix_not_a_rerun(trained_copy: Path) -> None:
    """As `graduate label` does: a 400 is refused alike however often it is sent; both commands
    said "run the same command again" for it."""
    with fake_openai_server(shape="param-400") as server:
        point_teacher(trained_copy, server.base_url, max_retries=0)
        runs = [
            subprocess.run([sys.executable, "-m", "graduate", *args], capture_output=True, text=True, env={**cli_env(), "COLUMNS": "300"}, timeout=180)
            for args in (["synth", str(trained_copy), "--n", "3"], ["augment", str(trained_copy), "--kind", "paraphrase", "--items", "2"])
        ]
    for result in runs:
        flat = " ".join(result.stderr.split())
        assert result.returncode == 1, result.stdout + result.stderr
        assert "refused or cut off as sent, and a re-run would fail alike: fix the field of graduate.yaml that the messages above name" in flat, flat
        assert "run the same command again" not in flat and "max_tokens" in flat
    assert augmented(trained_copy) == []


def test_a_target_that_matches_nothing_or_too_few_seeds_is_one_line(trained_copy: Path) -> None:
    proj = Project.load(trained_copy)
    with pytest.raises(SpecError, match="matches nothing"):
        proj.synth(target="zyzzyva-never-said", n=5)
    result = subprocess.run(
        [sys.executable, "-m", "graduate", "synth", str(trained_copy), "--target", "[red]nothing[/]", "--n", "3"], capture_output=True, text=True, env=cli_env(), timeout=120
    )
    assert result.returncode == 2 and "'[red]nothing[/]' matches nothing" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("seeds", [0, -1])
def test_synth_through_the_api_with_no_seed_examples_is_refused_before_any_call(trained_copy: Path, seeds: int) -> None:
    """Project.synth(seeds=0) asked the teacher with no example at all (every call the same request,
    answered once), and seeds=-1 ended in a ValueError from math.perm; the CLI's --seeds has min=1,
    the API checked nothing."""
    with fake_openai_server() as server:
        point_teacher(trained_copy, server.base_url)
        with pytest.raises(SpecError, match=r"--seeds must be at least 1"):
            Project.load(trained_copy).synth(target="bad", n=5, seeds=seeds)
        assert server.stats()["requests"] == 0


@pytest.mark.parametrize("target", ["bad\u200b", "\ufeffbad", "\u200bbad\u2060 "])
def test_a_label_pasted_with_invisible_characters_around_it_is_the_label(trained_copy: Path, target: str) -> None:
    """--target 'bad' pasted with a zero-width space or a BOM about it was no label: it became the
    term "bad", and the teacher was asked for texts "that mention 'bad\u200b'", not texts labelled bad."""
    with fake_openai_server() as server:
        point_teacher(trained_copy, server.base_url)
        report = Project.load(trained_copy).synth(target=target, n=3, seeds=3)
    assert (report.target, report.target_kind) == ("bad", "label"), report
    assert all("\u200b" not in r.lineage["target"] and r.lineage["target_kind"] == "label" for r in augmented(trained_copy))


@pytest.mark.parametrize("target", ["gold=bad", "gold =bad", "gold  =  bad"])
def test_a_gold_slice_typed_without_its_spaces_is_the_label(trained_copy: Path, target: str) -> None:
    """`graduate errors` prints "gold = bad"; typed "gold=bad" it matched nothing ("not a label, a
    tag, a slice ... or a word any training item names")."""
    with fake_openai_server() as server:
        point_teacher(trained_copy, server.base_url)
        report = Project.load(trained_copy).synth(target=target, n=3, seeds=3)
    assert report.target_kind == "label" and report.matching >= 3, report


def test_the_report_shows_what_the_loop_made_and_each_students_before_and_after(trained_copy: Path) -> None:
    with fake_openai_server() as server:
        point_teacher(trained_copy, server.base_url)
        proj = Project.load(trained_copy)
        proj.synth(target="bad", n=6, seeds=3)
    result = subprocess.run([sys.executable, "-m", "graduate", "run", str(trained_copy)], capture_output=True, text=True, env=cli_env(), timeout=300)
    assert result.returncode in (0, 1), result.stderr
    html = (trained_copy / ".graduate" / "report.html").read_text()
    made = html[html.index('<table id="made">') : html.index("</table>", html.index('<table id="made">'))]
    assert "synth" in made and "<td>6</td>" in made
    after = html[html.index('<table id="before-after">') : html.index("</table>", html.index('<table id="before-after">'))]
    assert "tfidf-logreg" in after and "test.balanced" in after
    slices = html[html.index('<table id="slice-changes">') : html.index("</table>", html.index('<table id="slice-changes">'))]
    assert "tfidf-logreg" in slices and "label: gold = " in slices


def test_a_rerun_adds_nothing_when_the_teacher_wrote_more_than_asked(trained_copy: Path) -> None:
    # --n 25: three calls of 9 texts, 27 written; the first run stores 25, a rerun must not add the other 2.
    with fake_openai_server() as server:
        point_teacher(trained_copy, server.base_url)
        proj = Project.load(trained_copy)
        first = proj.synth(target="bad", n=25, seeds=3)
        assert first.generated == 27 and first.added == 25
        again = proj.synth(target="bad", n=25, seeds=3)
    assert again.added == 0 and again.stored_already == 25 and len(augmented(trained_copy)) == 25


def test_synth_and_paraphrase_stopped_by_the_budget_say_so(trained_copy: Path) -> None:
    """They exited 3 with nothing printed but a table of zeros."""
    with fake_openai_server() as server:
        point_teacher(trained_copy, server.base_url, budget_usd=0.0004)  # below one call
        runs = [
            subprocess.run([sys.executable, "-m", "graduate", *args], capture_output=True, text=True, env={**cli_env(), "COLUMNS": "300"}, timeout=180)
            for args in (["synth", str(trained_copy), "--n", "3"], ["augment", str(trained_copy), "--kind", "paraphrase", "--items", "2"])
        ]
        assert server.stats()["ok"] == 0
    for result, unsent in zip(runs, (1, 2)):
        assert result.returncode == 3, result.stdout + result.stderr
        says = f"error: teacher budget of $0.0004 reached; {unsent} teacher calls not sent. Raise teacher.budget_usd in graduate.yaml and run the same command again"
        assert says in " ".join(result.stderr.split()), result.stderr
        assert re.search(rf"│ teacher calls not sent\s+│\s+{unsent} │", result.stdout), result.stdout


def test_synth_and_paraphrase_stopped_by_answers_without_text_count_the_calls_left_unsent(trained_copy: Path) -> None:
    """When the first CUT_STOP answers hold no text the rest are not sent: the report and the CLI
    said nothing of them (a table of failed calls only, exit as for those)."""
    from graduate.teacher.labeling import CUT_STOP

    with fake_openai_server(shape="tool-calls") as server:
        point_teacher(trained_copy, server.base_url, max_retries=0, concurrency=1)
        runs = [
            subprocess.run([sys.executable, "-m", "graduate", *args], capture_output=True, text=True, env={**cli_env(), "COLUMNS": "300"}, timeout=180)
            for args in (["synth", str(trained_copy), "--n", "70"], ["augment", str(trained_copy), "--kind", "paraphrase", "--items", "7"])
        ]
        report = Project.load(trained_copy).synth(target=None, n=70, seed=1)  # another draw: none from the call log
        assert server.stats()["ok"] == 3 * CUT_STOP
    for result in runs:
        flat = " ".join(result.stderr.split())
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"the first answers were all cut off or held no text, so {7 - CUT_STOP} teacher calls were not sent" in flat, flat
        assert re.search(rf"│ teacher calls not sent\s+│\s+{7 - CUT_STOP} │", result.stdout), result.stdout
    assert (report.calls_failed, report.calls_not_sent, report.calls_stopped, report.cut_stopped) == (CUT_STOP, 7 - CUT_STOP, 7 - CUT_STOP, True), report
    assert f"{7 - CUT_STOP} calls not sent ({7 - CUT_STOP}: the first answers were all cut off or held no text)" in (shortfall(report) or "")


def test_the_stop_on_unusable_answers_counts_the_whole_run_not_each_chunk(trained_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """synth asks in chunks of CHUNK_CALLS calls, and each chunk counted its own first CUT_STOP
    answers: with chunks smaller than CUT_STOP every answer of a run could be unusable (paid for,
    no text) and none stopped it. Labelling stops once the run's first CUT_STOP answers are."""
    import graduate.pipeline.generate as generate
    from graduate.teacher.labeling import CUT_STOP

    monkeypatch.setattr(generate, "CHUNK_CALLS", CUT_STOP - 2)  # a run's first CUT_STOP answers span two chunks
    with fake_openai_server(shape="tool-calls") as server:
        point_teacher(trained_copy, server.base_url, max_retries=0, concurrency=1)
        report = Project.load(trained_copy).synth(target=None, n=100)  # 10 calls
        assert server.stats()["ok"] == CUT_STOP
    assert (report.calls_failed, report.calls_not_sent, report.calls_stopped, report.cut_stopped) == (CUT_STOP, 10 - CUT_STOP, 10 - CUT_STOP, True), report


def test_the_recipe_lists_the_items_made_with_their_lineage(trained_copy: Path) -> None:
    """`data recipe --step augmented` said "0 items" and the table no count: what the loop added, and from what, was nowhere."""
    with fake_openai_server() as server:
        point_teacher(trained_copy, server.base_url)
        proj = Project.load(trained_copy)
        report = proj.synth(target="bad", n=4, seeds=3)
        proj.build_training_set()
        proj.engine.dispose()
    assert report.added == 4
    env = cli_env()
    table = subprocess.run([sys.executable, "-m", "graduate", "data", "recipe", str(trained_copy)], capture_output=True, text=True, env=env, timeout=120)
    assert table.returncode == 0 and re.search(r"augmented\W+–\W+\+4 added", table.stdout), table.stdout + table.stderr
    step = subprocess.run(
        [sys.executable, "-m", "graduate", "data", "recipe", str(trained_copy), "--step", "augmented"], capture_output=True, text=True, env=env, timeout=120
    )
    assert step.returncode == 0 and "step augmented: 4 items" in step.stdout, step.stdout + step.stderr
    rows = augmented(trained_copy)
    assert all(r.text.split()[0] in step.stdout for r in rows)
    assert step.stdout.count("method=synth; target=bad; target_kind=label; seeds=[") == 4


def test_a_weak_slice_named_as_graduate_errors_prints_it_is_a_target(trained_copy: Path) -> None:
    """`graduate errors` prints weak slices as '<100 chars', 'gold = bad', "mentions 'you'"; synth
    refused each as matching nothing, and its message sent the user back to those same names."""
    proj = Project.load(trained_copy)
    dataset = proj.build_training_set()
    short = sum(len(ex.text) < 100 for ex in dataset.examples)
    bad = dataset.labels.count("bad")
    assert 3 <= short < len(dataset.examples)
    with fake_openai_server() as server:
        point_teacher(trained_copy, server.base_url)
        proj = Project.load(trained_copy)
        by_length = proj.synth(target="<100 chars", n=3, seeds=3)
        by_label = proj.synth(target="gold = bad", n=3, seeds=3)
        by_term = proj.synth(target="mentions 'you'", n=3, seeds=3)
    prompts = " ".join(str(r.request) for r in live_calls(trained_copy))
    assert "Write 3 new texts of the same kind under 100 characters long" in prompts  # the teacher is told which slice
    assert (by_length.target_kind, by_length.matching, by_length.added) == ("length", short, 3)
    assert (by_label.target_kind, by_label.matching, by_label.added) == ("label", bad, 3)
    assert by_term.target_kind == "term" and by_term.added == 3
    with pytest.raises(SpecError, match="matches nothing"):
        proj.synth(target="mentions 'zyzzyva-never-said'", n=3)


def test_synth_on_a_project_never_run_reads_its_teacher_logs_first(tiny_project: Path) -> None:
    """Before any `graduate run` synth said "only 0 training items match --target 'bad'; label more
    items" though graduate.yaml declares 366 recorded teacher calls: it loaded the data, not the logs."""
    with fake_openai_server() as server:
        point_teacher(tiny_project, server.base_url)
        report = Project.load(tiny_project).synth(target="bad", n=3, seeds=3)
    assert report.matching >= 3 and report.added == 3


@pytest.mark.parametrize("target", ["", "  "])
def test_an_empty_target_is_one_line_not_every_item(trained_copy: Path, target: str) -> None:
    """--target '' matched every item as a "term" and asked the teacher for texts "that mention ''"."""
    for args in (["synth", str(trained_copy), "--n", "2"], ["augment", str(trained_copy), "--kind", "paraphrase", "--items", "1"]):
        result = subprocess.run([sys.executable, "-m", "graduate", *args, "--target", target], capture_output=True, text=True, env=cli_env(), timeout=120)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stdout + result.stderr
        assert "is empty: give a label, a tag, a term or a slice" in result.stderr
    assert augmented(trained_copy) == []


def test_with_augment_include_off_the_cli_does_not_say_the_next_run_trains_on_them(trained_copy: Path) -> None:
    path = trained_copy / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["augment"] = {"include": False}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with fake_openai_server() as server:
        point_teacher(trained_copy, server.base_url)
        result = subprocess.run([sys.executable, "-m", "graduate", "synth", str(trained_copy), "--n", "2"], capture_output=True, text=True, env=cli_env(), timeout=180)
    assert result.returncode == 0, result.stderr
    flat = " ".join(result.stdout.split())
    assert "trains on the new items" not in flat and "augment.include is false in graduate.yaml: builds leave the new items out" in flat, flat
    dataset = Project.load(trained_copy).build_training_set()
    assert not any(ex.source == "augment" for ex in dataset.examples)  # as it says: left out


def test_near_copies_of_items_another_run_made_are_dropped(trained_copy: Path, tmp_path: Path) -> None:
    """Only the pool's own items counted: a text nearly the same as one an earlier synth, paraphrase
    or counterfactual run had stored went in again (the training set held both)."""
    import shutil

    from graduate.data.augment import Made, store_made

    reference = tmp_path / "reference"
    shutil.copytree(trained_copy, reference)
    with fake_openai_server() as server:
        point_teacher(reference, server.base_url)
        first = Project.load(reference).synth(target="bad", n=4, seeds=3)
        written = [r.text for r in augmented(reference)]
        assert first.added == 4 and len(written) == 4
        point_teacher(trained_copy, server.base_url)
        proj = Project.load(trained_copy)
        # another run made near copies of what this one's teacher will write (the same request, the same answer)
        earlier = store_made(proj.engine, [Made(t + "!", {"method": "paraphrase", "parent": None}, "ok", "augment:paraphrase<test", "", "ok", ["augment"]) for t in written])
        assert earlier.added == 4
        report = proj.synth(target="bad", n=4, seeds=3)
        assert report.generated == 4 and report.near_pool == 4 and report.added == 0
        again = proj.synth(target="bad", n=4, seeds=3)
    assert again.added == 0 and len(augmented(trained_copy)) == 4


def test_a_target_of_three_items_gets_the_texts_asked_for(trained_copy: Path) -> None:
    """With 3 matching items two of four calls drew the same seeds in the same order: one request,
    answered once from the cache, its texts dropped as written twice (20 of 40 added, nothing said)."""
    with fake_openai_server() as server:
        point_teacher(trained_copy, server.base_url)
        proj = Project.load(trained_copy)
        report = proj.synth(target="perhaps", n=40, seeds=5)
        assert report.matching == 3 and report.calls == 4 and report.calls_sent == 4 and report.added == 40
        again = proj.synth(target="perhaps", n=40, seeds=5)  # the same draws: all from the call log
        assert again.calls_sent == 0 and again.added == 0


def test_fewer_texts_than_asked_are_said_in_one_line_with_why(trained_copy: Path) -> None:
    with fake_openai_server() as server:
        point_teacher(trained_copy, server.base_url)
        result = subprocess.run(
            [sys.executable, "-m", "graduate", "synth", str(trained_copy), "--target", "perhaps", "--n", "80"], capture_output=True, text=True, env=cli_env(), timeout=180
        )
        one_seed = shortfall(Project.load(trained_copy).synth(target="perhaps", n=40, seeds=1))
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if "texts asked for were added" in x)
    assert line.startswith("60 of the 80 texts asked for were added: the 3 matching items allow only 6 different seed draws for 8 calls"), line
    assert line.endswith("widen --target; 20 stored already or written twice") and len(augmented(trained_copy)) == 60 + 30
    assert one_seed is not None and "only 3 different seed draws for 4 calls (asked alike, answered alike): widen --target or raise --seeds (up to 3)" in one_seed


def test_a_written_text_equal_to_an_item_taken_out_of_its_data_file_is_added(trained_copy: Path, tmp_path: Path) -> None:
    """It was dropped as "already stored": the taken-out item is in no build, so nothing held the
    text (feedback on such a text is added as a new item alike)."""
    import shutil

    reference = tmp_path / "reference"
    shutil.copytree(trained_copy, reference)
    with fake_openai_server() as server:
        point_teacher(reference, server.base_url)
        assert Project.load(reference).synth(target="bad", n=4, seeds=3).added == 4
        written = sorted(r.text for r in augmented(reference))
        data = trained_copy / "comments.csv"
        original = data.read_bytes()
        with data.open("a", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([[f"taken-out-{i}", text, "0", "train"] for i, text in enumerate(written[:2])])
        Project.load(trained_copy).load_data()
        data.write_bytes(original)  # taken out again: synth's own load marks them absent
        point_teacher(trained_copy, server.base_url)
        report = Project.load(trained_copy).synth(target="bad", n=4, seeds=3)
    assert report.generated == 4 and report.stored_already == 0 and report.added == 4, report
    assert sorted(r.text for r in augmented(trained_copy)) == written


def test_a_term_that_begins_or_ends_with_a_sign_is_a_target_as_the_slices_match_it(trained_copy: Path) -> None:
    """--target '(UTC)' (or 'c++', '#MeToo') matched nothing: the word boundary \\b needs a letter
    beside the sign, so a term the slices and the counterfactual swaps find was said to be named by no item."""
    with fake_openai_server() as server:
        point_teacher(trained_copy, server.base_url)
        proj = Project.load(trained_copy)
        report = proj.synth(target="(UTC)", n=3, seeds=3)
        assert report.target_kind == "term" and report.matching >= 3 and report.added == 3
        assert proj.synth(target="mentions '(utc)'", n=3, seeds=3).target_kind == "term"


def test_a_label_typed_in_another_case_is_the_label_not_a_word(trained_copy: Path) -> None:
    """--target BAD (the label is bad) searched the texts for the word "bad": one item, "synth needs
    at least 3 seed examples", or, on a larger pool, texts "that mention 'BAD'" written and added."""
    bad = Project.load(trained_copy).build_training_set().labels.count("bad")
    with fake_openai_server() as server:
        point_teacher(trained_copy, server.base_url)
        report = Project.load(trained_copy).synth(target="BAD", n=3, seeds=3)
    assert (report.target_kind, report.matching, report.added) == ("label", bad, 3)
    assert "that mention" not in " ".join(str(r.request) for r in live_calls(trained_copy))


def test_a_shortfall_the_budget_or_failures_caused_does_not_advise_another_seed() -> None:
    """"0 of the 3 texts asked for were added: 1 calls not sent (budget reached) ...; another --seed
    draws other seed examples": another seed meets the same budget."""
    from graduate.pipeline.generate import GenerateReport

    common = dict(method="synth", target="bad", target_kind="label", matching=40, asked=3, calls_asked=1, seed_draws=1, seeds_per_call=5)
    budget = shortfall(GenerateReport(**common, calls=1, calls_not_sent=1, budget_stopped=True))
    failed = shortfall(GenerateReport(**common, calls=1, calls_failed=1, calls_retryable=1))
    copies = shortfall(GenerateReport(**common, calls=1, generated=3, added=1, near_pool=2))
    assert budget and "budget reached" in budget and "another --seed" not in budget
    assert failed and "1 calls failed" in failed and "another --seed" not in failed
    assert copies and copies.endswith("2 near copies of a pool item; another --seed draws other seed examples")


TOXIC = ParseSpec(kind="label_words", words={"ok": ["ok", "non-toxic"], "bad": ["toxic"]})
MORAL = ParseSpec(kind="label_list", separator=",", none="non-moral")


@pytest.mark.parametrize(
    "parse, labels, line",
    [
        (TOXIC, ["ok", "bad"], "toxic"),
        (TOXIC, ["ok", "bad"], "OK."),
        (TOXIC, ["ok", "bad"], "Label: toxic"),
        (TOXIC, ["ok", "bad"], "**Non-toxic**"),
        (TOXIC, ["ok", "bad"], "(none)"),
        (ParseSpec(kind="json_key", key="is_bad", values={"0": "ok", "1": "bad"}), ["ok", "bad"], '{"is_bad": 1}'),
        (ParseSpec(kind="json_key", key="is_bad", values={"0": "ok", "1": "bad"}), ["ok", "bad"], "bad / ok"),
        (MORAL, ["care", "equality", "loyalty"], "care, equality"),
        (MORAL, ["care", "equality", "loyalty"], "Labels: Care; Loyalty"),
        (MORAL, ["care", "equality", "loyalty"], "non-moral"),
        (MORAL, ["care", "equality", "loyalty"], '["care", "equality"]'),
        (ParseSpec(kind="json_list"), ["care", "equality"], "(none)"),
    ],
)
def test_a_written_line_that_is_a_label_is_label_shaped(parse: ParseSpec, labels: list[str], line: str) -> None:
    assert label_matcher(parse, labels)(line), line


@pytest.mark.parametrize(
    "line",
    ["you are toxic", "ok then, see you at the bad game", "Label this as toxic please", "care for your equality", "not toxic at all", "toxic toxic waste dump"],
)
def test_a_text_that_names_labels_among_other_words_is_not_label_shaped(line: str) -> None:
    assert not label_matcher(TOXIC, ["ok", "bad"])(line)
    assert not label_matcher(MORAL, ["care", "equality", "loyalty"])(line)


@pytest.mark.parametrize("line", ["Thanks!", "Help?", "**Cancel!**", "Hello, hello!", "¿Help?", "谢谢！"])
def test_a_short_exclaimed_or_asked_line_is_a_text_though_its_word_is_a_label(line: str) -> None:
    """An intent task's labels are what its users say: asked for texts of "thanks", a teacher that
    wrote "Thanks!" had it dropped as a label (an answer naming a label neither exclaims nor asks)."""
    intents = ParseSpec(kind="label_words", words={"thanks": ["thanks", "谢谢"]})
    assert not label_matcher(intents, ["thanks", "help", "cancel", "hello"])(line)
    assert label_matcher(intents, ["thanks", "help", "cancel", "hello"])(line.strip("*!?¿！"))


@pytest.mark.parametrize("line", ["Ok :)", "ok ;-)", "OK :D", "ok <3", "bad :(", "Toxic :P"])
def test_a_label_word_with_an_emoticon_is_a_text(line: str) -> None:
    """The emoticon's marks were stripped as punctuation about the word: "Ok :)" was the label ok
    and dropped, though an answer naming a label smiles no more than it exclaims ("Thanks!")."""
    assert not label_matcher(TOXIC, ["ok", "bad"])(line), line
    assert label_matcher(TOXIC, ["ok", "bad"])(line.split()[0] + "."), line  # the word alone, said as an answer, is still one


def test_label_lines_the_teacher_writes_are_left_out_and_counted(trained_copy: Path) -> None:
    """Asked to write texts, a teacher that answered "bad", "Label: ok" or '{"is_bad": 1}' had each
    stored as a new training text (and labelled, and trained on)."""
    with fake_openai_server(label_lines=True) as server:
        point_teacher(trained_copy, server.base_url)
        report = Project.load(trained_copy).synth(target="bad", n=8, seeds=3)
        result = subprocess.run(
            [sys.executable, "-m", "graduate", "augment", str(trained_copy), "--kind", "paraphrase", "--items", "2", "--per-item", "4"],
            capture_output=True, text=True, env=cli_env(), timeout=180,
        )  # fmt: skip
    assert (report.generated, report.label_shaped, report.added) == (8, 4, 4), report
    assert "4 written lines that are a label, not a text" in (shortfall(report) or "")
    assert result.returncode == 0, result.stderr
    assert re.search(r"│ dropped: a label, not a text\s+│\s+4 │", result.stdout), result.stdout
    stored = [r.text for r in augmented(trained_copy)]
    assert len(stored) == 8 and not any(t in LABEL_LINES for t in stored), stored


def test_a_huge_n_asks_in_chunks_and_stops_at_the_budget(trained_copy: Path) -> None:
    """--n 1000000000 drew a seed sample and built a prompt for each of its 100,000,000 calls before
    the first was sent (the budget stopped the first one)."""
    import resource

    def small_memory() -> None:  # the CLI's own size (~0.6 GB) and room to spare; 100M prompts are far past it
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    with fake_openai_server() as server:
        point_teacher(trained_copy, server.base_url, budget_usd=0.0004)  # below one call
        result = subprocess.run(
            [sys.executable, "-m", "graduate", "synth", str(trained_copy), "--target", "bad", "--n", "1000000000"],
            capture_output=True, text=True, env={**cli_env(), "COLUMNS": "300"}, timeout=120, preexec_fn=small_memory,
        )  # fmt: skip
        assert server.stats()["ok"] == 0
    assert result.returncode == 3, result.stdout + result.stderr
    assert "teacher budget of $0.0004 reached; 100000000 teacher calls not sent" in " ".join(result.stderr.split()), result.stderr


@pytest.mark.slow
def test_an_n_past_one_chunk_of_calls_gets_the_texts_asked_for_and_a_rerun_sends_nothing(trained_copy: Path) -> None:
    n = CHUNK_CALLS * 10 + 20  # two chunks of calls: the texts of both are kept, stored and found again
    with fake_openai_server() as server:
        point_teacher(trained_copy, server.base_url, budget_usd=1000.0)
        proj = Project.load(trained_copy)
        first = proj.synth(target=None, n=n, seeds=5)
        assert (first.calls_asked, first.calls_sent, first.generated, first.added, first.seed_draws) == (CHUNK_CALLS + 2,) * 2 + (n,) * 2 + (CHUNK_CALLS + 2,), first
        sent = server.stats()["ok"]
        again = proj.synth(target=None, n=n, seeds=5)
        assert again.calls_sent == 0 and again.added == 0 and again.stored_already == n and server.stats()["ok"] == sent


def test_the_seeds_and_items_drawn_do_not_depend_on_the_pool_order() -> None:
    """Seeds and paraphrased items were drawn by position with one generator: a row added, taken out
    or moved in the data file changed every draw."""
    hashes = [text_hash(f"comment number {i}") for i in range(200)]
    picked = Draws(hashes).take("0:0:synth", 5)
    shuffled = hashes[:]
    random.Random(3).shuffle(shuffled)
    assert [shuffled[i] for i in Draws(shuffled).take("0:0:synth", 5)] == [hashes[i] for i in picked]
    unpicked = next(h for i, h in enumerate(hashes) if i not in picked)
    fewer = [h for h in hashes if h != unpicked] + [text_hash("a comment added at the end")]
    again = [fewer[i] for i in Draws(fewer).take("0:0:synth", 5)]
    assert len(set(again) & {hashes[i] for i in picked}) >= 4  # only the added row can take a place
    assert Draws(hashes).take("0:1:synth", 5) != picked


def test_synth_and_paraphrase_send_the_same_requests_for_the_pool_in_another_order(tiny_project: Path, tmp_path: Path) -> None:
    import shutil

    shuffled = tmp_path / "shuffled"
    shutil.copytree(tiny_project, shuffled)
    with (shuffled / "comments.csv").open(newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    random.Random(5).shuffle(rows)
    with (shuffled / "comments.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])
    sent = []
    with fake_openai_server() as server:
        for project in (tiny_project, shuffled):
            point_teacher(project, server.base_url)
            proj = Project.load(project)
            assert proj.synth(target="bad", n=20, seeds=3).added == 20
            assert proj.augment("paraphrase", items=4, per_item=2).added == 8
            proj.engine.dispose()
            sent.append(sorted(str(r.request["messages"]) for r in live_calls(project) if "numbered list" in str(r.request)))
    assert len(sent[0]) == 2 + 4 and sent[0] == sent[1]
    assert sorted(r.text for r in augmented(tiny_project)) == sorted(r.text for r in augmented(shuffled))


def test_a_label_written_decomposed_in_the_spec_is_the_target_typed_composed(tmp_path: Path) -> None:
    """--target is read composed (NFC); a label graduate.yaml writes decomposed ("ne\u0301gatif")
    was then no label: the target became a term, and the teacher was asked for texts that mention it."""
    from graduate.pipeline.generate import _clean_target, resolve_target

    root = tmp_path / "p"
    root.mkdir()
    (root / "items.csv").write_text("id,text,label\n1,a,positif\n", encoding="utf-8")
    spec = {
        "task": {"name": "avis", "labels": ["positif", "ne\u0301gatif"], "parse": {"kind": "label_words"}},
        "teacher": {"model": "m", "prompt": "Avis : {text}"},
        "data": [{"name": "items", "path": "items.csv", "id_column": "id"}],
    }
    (root / "graduate.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    proj = Project.load(root)
    for typed in ("négatif", "ne\u0301gatif", "NÉGATIF"):
        kind, idx, _ = resolve_target(proj, _clean_target(typed), [], ["ne\u0301gatif", "positif"])
        assert (kind, idx) == ("label", [0]), typed
