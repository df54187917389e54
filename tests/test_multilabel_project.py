"""Multi-label end to end on the real MFRC data (issue 18): `graduate run examples/mfrc` imports the
recorded teacher, trains on its answers for `pool`, and scores teacher and students against gold
on `test`; `graduate predict` writes each item's label set and per-label probabilities.

Reads ../shared/data/mfrc beside the checkout (never copied into the repository)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from graduate.formats import labelset
from graduate.pipeline.project import Project

EXAMPLE = Path(__file__).parents[1] / "examples" / "mfrc" / "graduate.yaml"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mfrc"
pytestmark = pytest.mark.skipif(not SHARED.exists(), reason="../shared/data is not beside this checkout")


def example_copy(tmp_path: Path) -> Path:
    raw = yaml.safe_load(EXAMPLE.read_text())
    base = EXAMPLE.parent
    for d in raw["data"]:
        d["path"] = str((base / d["path"]).resolve())
    for li in raw.get("label_imports", []):
        li["path"] = str((base / li["path"]).resolve())
    for log in raw["teacher_logs"]:
        log["input"], log["output"] = str((base / log["input"]).resolve()), str((base / log["output"]).resolve())
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return tmp_path


@pytest.fixture(scope="module")
def trained_mfrc(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """examples/mfrc after `graduate run`, once per module (~40 s), and its summary; copy it before
    writing (``mfrc_copy``)."""
    project = example_copy(tmp_path_factory.mktemp("trained") / "mfrc")
    proj = Project.load(project)
    summary = proj.run()
    proj.engine.dispose()  # checkpoints SQLite's WAL, so a copy of the directory holds everything
    return project, summary


@pytest.fixture
def mfrc_copy(trained_mfrc: tuple[Path, dict], tmp_path: Path) -> Path:
    """A private copy of the trained MFRC project, store included."""
    import shutil

    dst = tmp_path / "mfrc"
    shutil.copytree(trained_mfrc[0], dst)
    return dst


def test_mfrc_runs_end_to_end_and_predicts_label_sets(trained_mfrc: tuple[Path, dict], mfrc_copy: Path, tmp_path: Path) -> None:
    project, summary = mfrc_copy, trained_mfrc[1]
    test = summary["test_sets"]["test"]
    assert test["n"] == 564 and test["label_counts"]["non-moral"] == 358
    teacher = test["teacher"]
    # the data README's figures for the recorded teacher, from the raw answers
    assert round(teacher["micro_f1"], 3) == 0.768 and round(teacher["exact_match"], 3) == 0.738 and teacher["unparseable"] == 0
    # the two older teachers' spreadsheet labels (label_imports), against the same gold
    older = test["labellers"]
    assert round(older["import:gpt-3.5-turbo-0301.zero-shot"]["micro_f1"], 3) == 0.209 and round(older["import:gpt-3.5-turbo-0301.few-shot"]["micro_f1"], 3) == 0.678
    assert summary["dataset"]["size"] > 1600 and summary["dataset"]["recipe"]["per_label_counts"]["care"] > 100
    student = test["students"]["tfidf-logreg"]
    assert 0.55 < student["micro_f1"] <= 1 and student["ci"]["micro_f1"][0] <= student["micro_f1"] <= student["ci"]["micro_f1"][1]
    labels = Project.load(project).spec.task.labels
    assert set(student["per_label"]) == set(labels) and labelset.decode(";".join(labels), labels) == set(labels)
    assert summary["best_student"] == "tfidf-logreg"
    # the quality gate (the latency gate depends on the machine's load: not asserted here)
    assert next(g for g in summary["gates"] if g["gate"].startswith("student.micro_f1"))["passed"]
    care = next(g for g in summary["gates"] if g["gate"].startswith("student.f1[care]"))
    assert care["left"] == pytest.approx(student["per_label"]["care"]["f1"]) and care["right"] == pytest.approx(0.75 * teacher["per_label"]["care"]["f1"])
    assert summary["students"]["tfidf-logreg"]["kind"] == "tfidf-logreg"  # takes label sets itself (shared features)

    # error analysis per label: every wrong (item, label) decision counted once, for student and teacher
    analysis = Project.load(project).error_analysis()
    per = analysis.per_label["test"]
    assert sum(e["student_fp"] + e["student_fn"] for e in per.values()) == round(student["hamming_loss"] * 564 * len(per))
    assert sum(e["teacher_fp"] + e["teacher_fn"] for e in per.values()) == round(teacher["hamming_loss"] * 564 * len(per))
    assert all(e["items"] == 564 for e in per.values())
    wrong = analysis.group("distillation_gap")
    assert wrong and all("-" in r["reason"] or "+" in r["reason"] for r in wrong)
    # the confidence the cascade uses: the least sure per-label decision of the chosen set
    assert all(r["student_confidence"] == labelset.confidence(r["student_label"], [r[f"p_{lab}"] for lab in labels], labels) for r in wrong)
    html = (project / ".graduate" / "report.html").read_text(encoding="utf-8")
    assert "Errors per label on test" in html and "student missed" in html

    src = tmp_path / "in.csv"
    src.write_text('id,text\n1,"We must protect the weak and the vulnerable from harm."\n2,\n3,"lol ok"\n', encoding="utf-8")
    out = tmp_path / "out.csv"
    env = {k: v for k, v in os.environ.items() if k != "GRADUATE_STORE_URL"}
    res = subprocess.run(
        [sys.executable, "-m", "graduate", "predict", str(project), "--input", str(src), "--output", str(out)], capture_output=True, text=True, timeout=300, env=env
    )
    assert res.returncode == 0, res.stderr[-2000:]
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert list(rows[0]) == ["id", "text", "labels"] + [f"p_{lab}" for lab in labels]
    assert rows[0]["labels"] and set(rows[0]["labels"].split(";")) <= set(labels)
    assert rows[1]["labels"] == "" and rows[1]["p_care"] == ""  # empty text: left blank

    # served: /v1/classify gives the set and each label's probability, chat answers as the teacher would
    sys.path.insert(0, str(Path(__file__).parent))
    import httpx

    from graduate.formats import answer_format
    from graduate.serve.app import create_app
    from servers.graduate_server import AUTH, KEY, ThreadServer, options

    os.environ["GRADUATE_API_KEYS"] = KEY
    proj = Project.load(project)
    try:
        with ThreadServer(create_app(proj, options(proj))) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
            r = client.post("/v1/classify", json={"texts": ["We must protect the weak and the vulnerable from harm.", "lol ok"]})
            assert r.status_code == 200, r.text
            for item in r.json()["results"]:
                assert item["labels"] and set(item["labels"]) <= set(labels) and set(item["probs"]) == set(labels)
                assert item["label"] == labelset.encode(item["labels"], labels)
            text = "Everyone deserves the same rights and fair treatment."
            messages = [{"role": "system", "content": proj.spec.teacher.system}, {"role": "user", "content": proj.spec.teacher.prompt.replace("{text}", text)}]
            chat = client.post("/v1/chat/completions", json={"model": "graduate", "messages": messages})
            assert chat.status_code == 200, chat.text
            answer = chat.json()["choices"][0]["message"]["content"]
            parsed = answer_format(proj.spec.task.parse, labels).parse(answer)
            assert parsed.label is not None and parsed.label == client.post("/v1/classify", json={"texts": [text]}).json()["results"][0]["label"]
    finally:
        os.environ.pop("GRADUATE_API_KEYS", None)


def test_the_limitations_compare_student_and_teacher_by_micro_f1(trained_mfrc: tuple[Path, dict]) -> None:
    # Label sets have no accuracy: the limitations said only what the student costs, never how it falls short.
    project, summary = trained_mfrc
    student, teacher = summary["test_sets"]["test"]["students"]["tfidf-logreg"], summary["test_sets"]["test"]["teacher"]
    first = Project.load(project).error_analysis().limitations[0]
    points = abs(100 * (student["micro_f1"] - teacher["micro_f1"]))
    assert first.startswith(f"On test (564 items) tfidf-logreg reaches micro-F1 {student['micro_f1']:.3f} (95% interval "), first
    assert f"the teacher (ft:gpt-3.5-turbo-0613:mfrc-tuned) {teacher['micro_f1']:.3f} on the 564 it answered: {points:.1f} points lower than the teacher." in first


def test_a_learning_curve_plots_micro_f1(tmp_path: Path) -> None:
    from graduate.experiments.curve import learning_curve

    proj = Project.load(example_copy(tmp_path / "mfrc"))
    res = learning_curve(proj, kind="tfidf-logreg", fractions=[0.5, 1.0], seeds=[0], metric="micro_f1")
    assert [p.fraction for p in res.points] == [0.5, 1.0] and all(0.5 < p.mean < 0.8 for p in res.points)
    assert res.teacher_score is not None and round(res.teacher_score, 3) == 0.768


def test_label_issues_review_and_balance_work_on_label_sets(tmp_path: Path) -> None:
    """cleanlab's multi-label issues name the labels at fault; a reviewer's corrected sets (and
    "(none)") replace the teacher's in the next build, a bad set is skipped with its line; class
    weights make each item weigh its rarest label."""
    project = example_copy(tmp_path / "mfrc")
    raw = yaml.safe_load((project / "graduate.yaml").read_text())
    raw["clean"] = {"label_issues": {"action": "report", "folds": 2}, "balance": {"strategy": "class_weight"}}
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k != "GRADUATE_STORE_URL"}
    queue = tmp_path / "queue.csv"
    res = subprocess.run(
        [sys.executable, "-m", "graduate", "data", "review", "export", str(project), "--out", str(queue), "--limit", "20"],
        capture_output=True, text=True, timeout=600, env={**env, "COLUMNS": "250"},
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "a set of" in res.stdout and "(none)" in res.stdout
    rows = list(csv.DictReader(queue.open(encoding="utf-8", newline="")))
    labels = Project.load(project).spec.task.labels
    suspects = [r for r in rows if r["group"] == "label_issue"]
    assert len(suspects) == 20
    for r in suspects:
        assert "doubts labels" in r["reason"] and any(f"{sign}{lab}" in r["reason"] for lab in labels for sign in "+-")
        assert labelset.decode(r["teacher_label"], labels) is not None and labelset.decode(r["student_label"], labels) is not None
        assert 0.5 <= float(r["student_confidence"]) <= 1
    rows[0].update(corrected_label="care;equality", reviewer="ana")
    rows[1].update(corrected_label="(none)", reviewer="ana")
    rows[2].update(corrected_label="care;fairness", reviewer="ana")  # not a task label: skipped with its line
    reviewed = tmp_path / "reviewed.csv"
    with reviewed.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    res = subprocess.run([sys.executable, "-m", "graduate", "data", "review", "import", str(project), str(reviewed)], capture_output=True, text=True, timeout=300, env={**env, "COLUMNS": "250"})
    assert res.returncode == 1, res.stderr[-2000:]  # a skipped row: exit 1, the rest stored
    err = " ".join(res.stderr.split())
    assert "reviewed.csv:4: corrected_label 'care;fairness': 'fairness' is not a task label" in err
    assert "new human labels" in res.stdout and " 2 " in next(line for line in res.stdout.splitlines() if "new human labels" in line)

    ds = Project.load(project).build_training_set()
    by_id = {ex.id: lab for ex, lab in zip(ds.examples, ds.labels)}
    assert by_id[int(rows[0]["example_id"])] == "care;equality" and by_id[int(rows[1]["example_id"])] == labelset.NONE
    human = next(s for s in ds.recipe["steps"] if s["step"] == "human_labels")
    assert human["changed"] + human["confirmed"] == 2
    # human labels are never flagged again
    issues = next(s for s in ds.recipe["steps"] if s["step"] == "label_issues")
    assert int(rows[0]["example_id"]) not in {r[0] for r in issues["ranked"]}
    # class weights: a purity item (the rarest label) weighs more than a non-moral-only item; mean 1
    balance = next(s for s in ds.recipe["steps"] if s["step"] == "balance")
    assert balance["class_weights"]["purity"] > balance["class_weights"]["non-moral"]
    w = dict(zip(ds.labels, ds.weights or []))
    assert w["non-moral"] < min(x for lab, x in zip(ds.labels, ds.weights or []) if "purity" in lab.split(";"))
    assert abs(sum(ds.weights or []) - len(ds.labels)) < 1e-6


def test_prior_and_undersample_balance_label_sets(tmp_path: Path) -> None:
    """prior rakes the item weights so each named label is carried by its production share;
    undersample drops items whose every label is more common than the rarest; both in the recipe
    and in `graduate data balance`; a bad multi-label prior is one line naming the field."""
    from collections import Counter

    from graduate.errors import SpecError

    project = example_copy(tmp_path / "mfrc")
    path = project / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    target = {"care": 0.3, "purity": 0.02, "non-moral": 0.5}
    raw["clean"] = {"balance": {"strategy": "prior", "prior": target}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    proj = Project.load(project)
    labels = proj.spec.task.labels
    proj.import_logs()
    proj.load_data()
    ds = proj.build_training_set()
    n = len(ds.labels)
    assert n > 1000
    assert sum(ds.weights or []) == pytest.approx(n)
    for lab, share in target.items():
        got = sum(w for w, s in zip(ds.weights or [], ds.labels) if lab in labelset.decode(s, labels)) / n
        assert got == pytest.approx(share, abs=2e-3)
    step = next(s for s in ds.recipe["steps"] if s["step"] == "balance")
    assert step["prior"] == target and step["weighted_shares"]["care"] == pytest.approx(0.3, abs=2e-3)
    env = {**{k: v for k, v in os.environ.items() if k != "GRADUATE_STORE_URL"}, "COLUMNS": "250"}
    res = subprocess.run([sys.executable, "-m", "graduate", "data", "balance", str(project)], capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "30.0% weighted" in res.stdout and "2.0% weighted" in res.stdout

    raw["clean"] = {"balance": {"strategy": "undersample"}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    proj.engine.dispose()
    proj = Project.load(project)
    under = proj.build_training_set()
    count = lambda sets: Counter(lab for s in sets for lab in (sorted(labelset.decode(s, labels) or []) or [labelset.NONE]))  # noqa: E731
    before, after = count(ds.labels), count(under.labels)
    step = next(s for s in under.recipe["steps"] if s["step"] == "balance")
    assert step["dropped"] == n - len(under.labels) > 0 and len(step["removed"]) == step["dropped"]
    assert min(after.values()) == min(before.values()) and set(after) == set(before)
    assert max(after.values()) < max(before.values())  # the commonest label lost items
    assert Project.load(project).build_training_set().content_hash == under.content_hash  # seeded

    for prior, message in (({"fairness": 0.1}, "names labels not in task.labels"), ({"care": 1.0}, "under 1")):
        raw["clean"] = {"balance": {"strategy": "prior", "prior": prior}}
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        with pytest.raises(SpecError, match=message) as err:
            Project.load(project)
        assert "\n" not in str(err.value) and "clean.balance.prior" in str(err.value)


def test_teacher_audit_scores_each_label_and_flags_a_weak_one(tmp_path: Path) -> None:
    """`graduate teacher audit` on label sets: micro/macro and per-label F1 recomputed from the raw
    answers; a second recorded configuration that never says "care" is flagged weak on it."""
    import numpy as np
    from sklearn.metrics import f1_score

    from graduate.experiments.audit import run_audit

    project = example_copy(tmp_path / "mfrc")
    raw = yaml.safe_load((project / "graduate.yaml").read_text())
    log = raw["teacher_logs"][0]
    # a derived log in tmp: the same requests to another model, whose answers drop "care"
    calls = [json.loads(line) for line in Path(log["input"]).open(encoding="utf-8")]
    answers = [json.loads(line) for line in Path(log["output"]).open(encoding="utf-8")]
    for c in calls:
        c["body"]["model"] = "careless-model"
    for a in answers:
        msg = a["response"]["body"]["choices"][0]["message"]
        kept = [w.strip() for w in msg["content"].split(",") if w.strip() and w.strip() != "care"]
        msg["content"] = ", ".join(kept) or "non-moral"
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps(c) for c in calls) + "\n", encoding="utf-8")
    (tmp_path / "out.jsonl").write_text("\n".join(json.dumps(a) for a in answers) + "\n", encoding="utf-8")
    raw["teacher_logs"].append({"input": str(tmp_path / "in.jsonl"), "output": str(tmp_path / "out.jsonl")})
    raw["audit"] = {"configs": [{"name": "tuned"}, {"name": "careless", "model": "careless-model"}], "ensembles": [{"name": "both", "members": ["tuned", "careless"]}]}
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))

    proj = Project.load(project)
    proj.import_logs()
    proj.load_data()
    audit = run_audit(proj.engine, proj.spec)
    assert audit["metric"] == "micro_f1" and audit["multi_label"]
    by = {c["name"]: c for c in audit["configs"]}
    tuned, careless = by["tuned"]["sets"]["test"], by["careless"]["sets"]["test"]
    labels = proj.spec.task.labels

    # independently of graduate: the raw answers against the gold columns
    rows = {r["id"]: r for r in csv.DictReader((SHARED / "comments.csv").open(encoding="utf-8", newline="")) if r["subsets"] == "test"}
    said = {}
    for c, a in zip((json.loads(x) for x in Path(log["input"]).open()), (json.loads(x) for x in Path(log["output"]).open())):
        item = c["custom_id"].split("/")[1]
        if item in rows:
            words = {w.strip() for w in a["response"]["body"]["choices"][0]["message"]["content"].split(",")}
            said[item] = [int(lab in words) for lab in labels]
    ids = sorted(rows)
    gold = np.array([[int(rows[i][lab]) for lab in labels] for i in ids])
    pred = np.array([said[i] for i in ids])
    assert tuned["micro_f1"] == pytest.approx(f1_score(gold, pred, average="micro"), abs=1e-9)
    assert tuned["macro_f1"] == pytest.approx(f1_score(gold, pred, average="macro", zero_division=0), abs=1e-9)
    for j, lab in enumerate(labels):
        assert tuned["per_label"][lab]["f1"] == pytest.approx(f1_score(gold[:, j], pred[:, j], zero_division=0), abs=1e-9)
        assert tuned["per_label"][lab]["support"] == int(gold[:, j].sum())

    assert careless["per_label"]["care"]["f1"] == 0 and audit["recommended"]["name"] == "tuned"
    weak = [f for f in by["careless"]["flags"] if f["flag"] == "weak_label"]
    assert [f["label"] for f in weak] == ["care"] and "care" in weak[0]["message"]
    assert not [f for f in by["tuned"]["flags"] if f["flag"] == "weak_label"]
    # the ensemble votes per label: with two voters a label needs both, so "care" never wins
    assert by["both"]["sets"]["test"]["per_label"]["care"]["predicted"] == 0
    assert audit["sets"][0]["label_counts"]["care"] == int(gold[:, labels.index("care")].sum())


def test_monitor_names_the_label_whose_share_moved(mfrc_copy: Path) -> None:
    """Served label sets are monitored per label: traffic whose predictions never carry "care"
    fails the label check, naming care."""
    from datetime import datetime, timedelta, timezone

    from graduate.monitor.report import monitor_project, training_reference
    from graduate.store.traffic import write_traffic

    proj = Project.load(mfrc_copy)
    texts, sets, _ = training_reference(proj.engine, None)
    start = datetime.now(timezone.utc) - timedelta(hours=2)

    def rows(predicted: list[str]) -> list[dict]:
        return [
            {
                "request_id": f"q{n}-{i:05d}", "item": 0, "created_at": start + timedelta(seconds=5 * i), "endpoint": "classify", "mode": "student",
                "route": "student", "reason": "test", "status": 200, "text": t, "answer": p, "label": p, "student_label": p, "confidence": 0.9,
                "probs": None, "teacher_label": None, "teacher_call_id": None, "teacher_error": None, "agree": None, "shadow": False,
                "latency_ms": 3.0, "teacher_latency_ms": None, "student": None, "model": None, "client": None,
            }
            for i, (t, p) in enumerate(zip(texts, predicted))
        ]

    n = 0  # request ids: q0-… for the first traffic, q1-… for the second
    write_traffic(proj.engine, rows(sets))
    settings = proj.spec.monitor.model_copy(update={"embedding": "tfidf"})
    same = monitor_project(proj, settings=settings).to_dict()["labels"]
    assert same["psi"] < 0.01 and set(same["per_label_psi"]) == set(proj.spec.task.labels)
    n = 1
    labels = proj.spec.task.labels
    no_care = [labelset.encode((labelset.decode(s, labels) or set()) - {"care"}, labels) for s in sets]
    with proj.engine.begin() as conn:
        from graduate.store.schema import traffic

        conn.execute(traffic.delete())
    write_traffic(proj.engine, rows(no_care))
    result = monitor_project(proj, settings=settings)
    d = result.to_dict()["labels"]
    assert d["worst_label"] == "care" and d["traffic"]["care"] == 0.0 and d["psi"] > 0.2
    failed = {c.name: c.message for c in result.failed}
    assert "label_psi" in failed and "'care'" in failed["label_psi"]


def test_serve_plan_picks_a_cascade_threshold_for_label_sets(mfrc_copy: Path) -> None:
    project = mfrc_copy
    env = {k: v for k, v in os.environ.items() if k != "GRADUATE_STORE_URL"}
    res = subprocess.run(
        [sys.executable, "-m", "graduate", "serve-plan", str(project), "--target", "0.95"], capture_output=True, text=True, timeout=300, env={**env, "COLUMNS": "200"}
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "micro-F1" in res.stdout and "suggested cascade_threshold" in res.stdout
    plan = json.loads((project / ".graduate" / "cascade_plan.json").read_text())["plans"][0]
    assert plan["gold_metric"] == "micro_f1"
    points = plan["points"]
    # all to the teacher: the teacher's own micro-F1 (0.768); all to the student: the student's
    assert round(points[-1]["accuracy"], 3) == 0.768 and points[-1]["teacher_share"] == 1.0
    summary = json.loads((project / ".graduate" / "summary.json").read_text())
    assert points[0]["accuracy"] == pytest.approx(summary["test_sets"]["test"]["students"]["tfidf-logreg"]["micro_f1"])
    suggested = plan["suggested"]
    assert suggested["quality"] >= 0.95 and 0 < suggested["teacher_share"] < 1


def test_an_ensemble_student_on_label_sets_reuses_its_members_runs(mfrc_copy: Path) -> None:
    project = mfrc_copy
    raw = yaml.safe_load((project / "graduate.yaml").read_text())
    raw["students"] = [
        {"kind": "tfidf-logreg"},
        {"kind": "ensemble", "name": "blend", "params": {"members": [{"kind": "tfidf-logreg"}, {"kind": "majority", "weight": 0.25}]}},
    ]
    raw["gates"] = []
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    summary = Project.load(project).run()
    blend = summary["test_sets"]["test"]["students"]["blend"]
    tfidf = summary["test_sets"]["test"]["students"]["tfidf-logreg"]
    assert 0.55 < blend["micro_f1"] <= 1 and set(blend["per_label"]) == set(Project.load(project).spec.task.labels)
    record = json.loads((Path(summary["students"]["blend"]["artifact_dir"]).parent / "run.json").read_text())
    members = record["members"]
    assert [m["kind"] for m in members] == ["tfidf-logreg", "one-vs-rest"]
    assert members[0]["run_id"] == summary["students"]["tfidf-logreg"]["run_id"] and members[0]["reused"]  # not trained twice
    assert abs(blend["micro_f1"] - tfidf["micro_f1"]) < 0.1


def test_any_text_gets_a_valid_label_set_from_the_server(mfrc_copy: Path) -> None:
    """Fuzz: any Unicode text (lone surrogates, control characters, long) on /v1/classify gets 200
    with a set of task labels, a probability per label and the canonical set string, or a defined
    error; chat in the project's prompt answers in the teacher's format, parsing to the same set."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    sys.path.insert(0, str(Path(__file__).parent))
    import httpx

    from graduate.formats import answer_format
    from graduate.serve.app import create_app
    from servers.graduate_server import AUTH, KEY, ThreadServer, options, prompt_messages

    project = mfrc_copy
    os.environ["GRADUATE_API_KEYS"] = KEY
    proj = Project.load(project)
    labels = proj.spec.task.labels
    fmt = answer_format(proj.spec.task.parse, labels)
    chars = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
    texts = st.one_of(st.text(chars, max_size=40), st.text(chars, min_size=300, max_size=1500), st.sampled_from(["care; loyalty", "(none)", "non-moral", "[care]"]))
    try:
        with ThreadServer(create_app(proj, options(proj))) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:

            @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(batch=st.lists(texts, min_size=1, max_size=4))
            def classify(batch: list[str]) -> None:
                body = json.dumps({"texts": batch}, ensure_ascii=False).encode("utf-8", "surrogatepass")
                r = client.post("/v1/classify", content=body, headers={"content-type": "application/json"})
                assert r.status_code in {200, 400, 413, 422}, r.text[:300]
                if r.status_code != 200:
                    return
                for item in r.json()["results"]:
                    assert set(item["labels"]) <= set(labels) and set(item["probs"]) == set(labels)
                    assert all(0.0 <= p <= 1.0 for p in item["probs"].values())
                    assert item["label"] == labelset.encode(item["labels"], labels)

            @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(text=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=200))
            def chat(text: str) -> None:
                r = client.post("/v1/chat/completions", json={"model": "graduate", "messages": prompt_messages(proj, text)})
                assert r.status_code == 200, r.text[:300]
                parsed = fmt.parse(r.json()["choices"][0]["message"]["content"])
                assert parsed.label is not None and labelset.decode(parsed.label, labels) is not None

            classify()
            chat()
            assert client.get("/readyz").status_code == 200
    finally:
        os.environ.pop("GRADUATE_API_KEYS", None)


def test_a_multi_label_project_trains_the_llm_student_and_serves_its_sets(mfrc_copy: Path, tiny_causal_lm: Path) -> None:
    """Wiring on the real MFRC data (../shared): `graduate run` trains lora-llm on label sets (one
    fine-tune, the teacher's prompt and spelling), scores it against gold on test, and the server
    answers chat in the teacher's format with the set the student decided."""
    sys.path.insert(0, str(Path(__file__).parent))
    import httpx

    from graduate.formats import answer_format
    from graduate.serve.app import create_app
    from servers.graduate_server import AUTH, KEY, ThreadServer, options, prompt_messages

    project = mfrc_copy
    raw = yaml.safe_load((project / "graduate.yaml").read_text())
    params = {"base_model": str(tiny_causal_lm), "max_steps": 2, "max_text_tokens": 16, "predict_batch_size": 16, "max_candidates": 8}
    raw["students"], raw["gates"] = [{"kind": "lora-llm", "params": params}], []
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    proj = Project.load(project)
    summary = proj.run()
    figures = summary["test_sets"]["test"]["students"]["lora-llm"]
    labels = proj.spec.task.labels
    assert 0 <= figures["micro_f1"] <= 1 and set(figures["per_label"]) == set(labels)
    student, _ = proj.best_student()
    assert student.multi_label and student.params["answer_parse"]["kind"] == "label_list" and len(student.thresholds) == len(labels)
    assert student.report["multi_label"]["candidate_sets"] >= 8 and student.report["multi_label"]["train_items"] > 1300
    fmt = answer_format(proj.spec.task.parse, labels)
    os.environ["GRADUATE_API_KEYS"] = KEY
    try:
        with ThreadServer(create_app(proj, options(proj))) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
            text = "People should look after each other."
            r = client.post("/v1/chat/completions", json={"model": "graduate", "messages": prompt_messages(proj, text)})
            assert r.status_code == 200, r.text[:300]
            answered = fmt.parse(r.json()["choices"][0]["message"]["content"]).label
            classified = client.post("/v1/classify", json={"texts": [text]}).json()["results"][0]
            assert answered is not None and labelset.decode(answered, labels) == set(classified["labels"])
    finally:
        os.environ.pop("GRADUATE_API_KEYS", None)


def test_the_ladder_climbs_label_sets_on_held_out_pool_items_by_micro_f1(mfrc_copy: Path) -> None:
    from graduate.experiments.ladder import climb_ladder

    result = climb_ladder(Project.load(mfrc_copy), kinds=["majority", "tfidf-logreg"], gates=["student.micro_f1 >= 0.85 * teacher.micro_f1 on test"])
    # MFRC's pool carries gold: the climb is judged on held-out pool items, the test set only reports.
    assert result.judged_on == "validation" and result.metric == "micro_f1" and result.skipped_gates == []
    assert result.validation_items >= 50
    first = result.rungs[0]
    assert first.kind == "majority" and [g.test_set for g in first.gates] == ["validation"]
    assert first.gates[0].left == first.validation["micro_f1"] and 0 < result.validation_teacher["micro_f1"] < 1
    assert "test" in first.tests and first.tests["test"]["micro_f1"] is not None


def test_chat_logprobs_carry_each_labels_probability_in_the_json_booleans_spelling(mfrc_copy: Path) -> None:
    """``logprobs`` on chat for a label set: refused with a pointer in the ``label_list`` spelling
    (a label's absence is no token); in ``json_booleans`` each label's true/false value is a token
    whose alternatives, read back by graduate's own parser, give the student's probability of it
    (the same as /v1/classify's), through the openai SDK."""
    import openai

    sys.path.insert(0, str(Path(__file__).parent))
    import httpx

    from graduate.formats import answer_format
    from graduate.serve.app import create_app
    from servers.graduate_server import AUTH, KEY, ThreadServer, options, prompt_messages

    text = "Everyone deserves the same rights and fair treatment, and we must protect the weak."
    os.environ["GRADUATE_API_KEYS"] = KEY
    try:
        proj = Project.load(mfrc_copy)
        with ThreadServer(create_app(proj, options(proj))) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
            r = client.post("/v1/chat/completions", json={"model": "graduate", "messages": prompt_messages(proj, text), "logprobs": True})
            assert r.status_code == 422 and r.json()["error"]["param"] == "logprobs" and "json_booleans" in r.json()["error"]["message"]
        proj.engine.dispose()

        raw = yaml.safe_load((mfrc_copy / "graduate.yaml").read_text())
        raw["task"]["parse"] = {"kind": "json_booleans", "key": "sentiments"}
        (mfrc_copy / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        proj = Project.load(mfrc_copy)
        labels = proj.spec.task.labels
        fmt = answer_format(proj.spec.task.parse, labels)
        with ThreadServer(create_app(proj, options(proj))) as server:
            client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY)
            probs = httpx.post(server.url + "/v1/classify", json={"texts": [text]}, headers=AUTH, timeout=60).json()["results"][0]["probs"]
            for top in (2, 0):
                reply = client.chat.completions.create(model="graduate", messages=prompt_messages(proj, text), logprobs=True, top_logprobs=top)
                content = reply.choices[0].message.content
                assert content is not None and json.loads(content)["sentiments"].keys() == set(labels)
                tokens = [t.model_dump() for t in reply.choices[0].logprobs.content]
                assert "".join(t["token"] for t in tokens) == content
                back = fmt.label_probabilities(tokens)
                assert back is not None and set(back) == set(labels)
                chosen = labelset.decode(fmt.parse(content).label, labels)
                for lab in labels:
                    # both values among the alternatives: the probability itself; one: the decision
                    assert back[lab] == (pytest.approx(probs[lab], abs=1e-9) if top >= 2 else float(lab in chosen)), (lab, top)
    finally:
        os.environ.pop("GRADUATE_API_KEYS", None)


def test_a_bias_pair_on_label_sets_takes_each_label_in_turn(mfrc_copy: Path, tmp_path: Path) -> None:
    """The identity-term pair for label sets: 80 test comments twice (written to tmp from ../shared),
    one copy signed by a Christian, the other by a Muslim. Each label is in turn the positive class;
    the gates read each figure's worst label; the CLI and the report show a row per label."""
    project = mfrc_copy
    with (SHARED / "comments.csv").open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["subsets"] == "test"][:80]
    for name, who in (("orig", "a Christian"), ("pert", "a Muslim")):
        with (tmp_path / f"{name}.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["id", "text", "labels"])
            w.writerows([r["id"], f"{r['text']} (written by {who})", r["labels"]] for r in rows)
    raw = yaml.safe_load((project / "graduate.yaml").read_text())
    for name in ("orig", "pert"):
        raw["data"].append({"name": f"bias_{name}", "path": str(tmp_path / f"{name}.csv"), "id_column": "id", "gold_column": "labels", "gold_separator": ";"})
        raw["test_sets"].append({"name": f"bias.{name}", "source": f"bias_{name}", "purpose": "bias"})
    raw["evaluation"] = {"bias_pair": {"original": "bias.orig", "perturbed": "bias.pert"}, "identity_terms": ["christian", "muslim"], "min_slice_size": 5}
    raw["students"] = [{"kind": "tfidf-logreg"}]
    raw["gates"] = ["student.bias_max_abs_shift <= 1", "student.bias_fpr_change <= 0.05", "student.bias_mean_abs_shift[care] <= 1"]
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    Project.load(project).run()
    proj = Project.load(project)
    labels, assessment = proj.spec.task.labels, proj.latest_assessment()
    bias = assessment["bias"]
    b = bias["students"]["tfidf-logreg"]
    assert bias["labels"] == labels and bias["teacher"] is None and "only 0 of the pairs" in bias["teacher_note"]
    assert set(b["per_label"]) == set(labels) and b["label"] in labels and b["pairs"] == 80 == b["changed_pairs"]
    for key in ("max_abs_shift", "fpr_change", "fpr_gap"):
        values = [m[key] for m in b["per_label"].values() if m.get(key) is not None]
        assert b["max_over_labels"][key] == max(values) and b["per_label"][b["worst_label_of"][key]][key] == max(values)
    # a label's false positives: predicted sets that hold it where gold lacks it, on the Muslim copy
    care = b["per_label"]["care"]
    assert care["negatives_perturbed"] == sum("care" not in r["labels"].split(";") for r in rows)
    muslim = next(t for t in care["terms"] if t["term"] == "muslim")
    assert muslim["negatives_perturbed"] == care["negatives_perturbed"] and muslim["fpr_perturbed"] == care["fpr_perturbed"]
    gates = {g["gate"]: g for g in assessment["gates"]}
    assert gates["student.bias_max_abs_shift <= 1"]["passed"] and gates["student.bias_max_abs_shift <= 1"]["left"] == b["max_over_labels"]["max_abs_shift"]
    rise = gates["student.bias_fpr_change <= 0.05"]
    assert rise["left"] == b["max_over_labels"]["fpr_change"] and rise["passed"] == (rise["left"] <= 0.05)
    assert gates["student.bias_mean_abs_shift[care] <= 1"]["left"] == care["mean_abs_shift"]  # one label's figure
    html = (project / ".graduate" / "report.html").read_text(encoding="utf-8")
    assert 'id="bias-table"' in html and "each label in turn is the positive class" in html and "tfidf-logreg [care]" in html

    env = {k: v for k, v in os.environ.items() if k != "GRADUATE_STORE_URL"}
    shown = subprocess.run(
        [sys.executable, "-m", "graduate", "evaluate", str(project)], capture_output=True, text=True, env={**env, "COLUMNS": "250"}, timeout=600
    )
    assert "each label as the positive class" in shown.stdout and "tfidf-logreg [care]" in shown.stdout, shown.stdout[-3000:] + shown.stderr[-2000:]


def _middle_app() -> Any:
    """A middle tier that answers label_list sets with logprobs: "care" at 0.97 for a text that says
    "confident"; else "care, loyalty" with care at 0.95 and loyalty at 0.6."""
    import math

    from fastapi import FastAPI, Request

    def tok(text: str, alternatives: list[tuple[str, float]]) -> dict:
        return {"token": text, "logprob": math.log(alternatives[0][1]), "top_logprobs": [{"token": a, "logprob": math.log(q)} for a, q in alternatives]}

    app = FastAPI()

    async def chat(request: Request) -> dict:
        body = await request.json()
        if "confident" in body["messages"][-1]["content"]:
            tokens = [tok("care", [("care", 0.97), ("purity", 0.03)])]
        else:
            tokens = [tok("care", [("care", 0.95), ("purity", 0.05)]), tok(",", [(",", 1.0)]), tok(" loyalty", [(" loyalty", 0.6), (" purity", 0.4)])]
        content = "".join(t["token"] for t in tokens)
        choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop", "logprobs": {"content": tokens}}
        return {"id": "m", "object": "chat.completion", "created": 0, "model": body["model"], "choices": [choice],
                "usage": {"prompt_tokens": 5, "completion_tokens": len(tokens), "total_tokens": 5 + len(tokens)}}

    chat.__annotations__ = {"request": Request, "return": dict}  # this module's annotations are strings
    app.post("/v1/chat/completions")(chat)
    return app


def test_a_label_list_middle_tier_is_taken_only_at_threshold_0_as_one_without_logprobs(mfrc_copy: Path) -> None:
    """A label_list answer's logprobs say which labels might have started where it wrote one, never
    whether it would have added another (graduate.formats.label_starts), so they overstate how sure
    it is of each label it left out: "care" at 0.97 would pass a 0.9 threshold although the answer
    never weighed loyalty. Such a middle tier is judged as one without logprobs: only threshold 0
    keeps its answers, and its chat answers carry no logprobs of its own."""
    import uuid

    import httpx
    from fastapi import FastAPI

    sys.path.insert(0, str(Path(__file__).parent))
    from graduate.serve.app import create_app
    from servers.graduate_server import AUTH, KEY, ThreadServer, options, set_teacher

    with ThreadServer(FastAPI()) as gone:  # the teacher: nothing answers its calls, so unsure items fall back
        set_teacher(mfrc_copy, base_url=gone.url + "/v1", max_retries=0)
    os.environ["GRADUATE_API_KEYS"] = KEY
    os.environ.setdefault("OPENAI_API_KEY", "sk-test")
    try:
        proj = Project.load(mfrc_copy)
        routes = {}
        with ThreadServer(_middle_app()) as mid:
            for threshold in (0.9, 0.0):
                texts = [f"a confident one {uuid.uuid4().hex[:6]}", f"a hesitant one {uuid.uuid4().hex[:6]}"]
                middle = {"teacher": {"base_url": mid.url + "/v1", "max_retries": 0, "logprobs": True, "top_logprobs": 2}, "threshold": threshold}
                opts = options(proj, mode="cascade", cascade_threshold=1.0, middle=middle)
                with ThreadServer(create_app(proj, opts)) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
                    routes[threshold] = [(x["route"], x["labels"]) for x in client.post("/v1/classify", json={"texts": texts}).json()["results"]]
        assert all(route != "middle" for route, _ in routes[0.9]), routes
        assert routes[0.0] == [("middle", ["care"]), ("middle", ["care", "loyalty"])], routes
    finally:
        os.environ.pop("GRADUATE_API_KEYS", None)


def test_counterfactual_labels_and_per_item_pick_items_whose_set_holds_the_label(tmp_path: Path) -> None:
    """augment.counterfactual.labels (and per_item by label) compared a label with the item's whole
    set: under labels [care] an item labelled {care, equality} got no copies, only those whose set
    was {care} alone."""
    from graduate.data.augment import SOURCE

    project = example_copy(tmp_path / "mfrc")
    raw = yaml.safe_load((project / "graduate.yaml").read_text())
    raw["augment"] = {"term_lists": {"people": ["men", "women"]}, "counterfactual": {"terms": "people", "labels": ["care"], "per_item": 1}}
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    proj = Project.load(project)
    proj.import_logs()
    proj.load_data()
    pool = proj.build_training_set()
    sets = [labelset.decode(lab, proj.spec.task.labels) for ex, lab in zip(pool.examples, pool.labels) if ex.source != SOURCE]
    with_care = sum("care" in s for s in sets)
    assert with_care > sum(s == {"care"} for s in sets)  # the data has items of care among other labels
    report = proj.augment()
    assert report.considered == with_care, report
    raw["augment"]["counterfactual"] = {"terms": "people", "per_item": {"care": 1}}
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    assert Project.load(project).augment().considered == with_care
    # the empty set is a set an item can have: "(none)" may be chosen (it was refused as an unknown label)
    raw["augment"]["counterfactual"] = {"terms": "people", "labels": ["care", "(none)"], "per_item": {"(none)": 2, "care": 1}}
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    assert Project.load(project).spec.augment.counterfactual.copies_for("(none)") == 2
