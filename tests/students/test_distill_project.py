"""Project.train hands the teacher's label distributions to students that distil (encoder)."""

import json
from pathlib import Path

from graduate.pipeline.project import Project
from graduate.spec import StudentSpec

FAST = {"max_steps": 2, "max_length": 32, "batch_size": 16, "agreement_items": 16, "save_float": False}


def test_soft_labels_reach_the_encoder_and_are_recorded(tiny_project, tiny_encoder):
    FAST["base_model"] = str(tiny_encoder)
    proj = Project.load(tiny_project)
    proj.import_logs()
    proj.load_data()
    dataset = proj.build_training_set()
    assert dataset.soft_labels is None  # recorded GPT-4 calls carry no logprobs
    hard = proj.train(StudentSpec(kind="encoder", params=FAST), dataset)
    assert hard.student.report["soft_labels"] is False
    # As a teacher with logprobs would give them: a distribution per item, one item without.
    dataset.soft_labels = [{"ok": 0.2, "bad": 0.8} if lab == "bad" else {"ok": 0.9, "bad": 0.1} for lab in dataset.labels]
    dataset.soft_labels[0] = None
    soft = proj.train(StudentSpec(kind="encoder", params=FAST), dataset)
    assert soft.run_id != hard.run_id and not soft.reused  # soft labels are part of the run's fingerprint
    assert soft.student.report["soft_labels"] is True
    run = json.loads((Path(soft.directory).parent / "run.json").read_text())
    assert run["soft_labels"] is True and run["params"]["max_steps"] == 2 and run["size_bytes"] > 0
    # tfidf-logreg does not distil: it trains on the hard labels and its run says so.
    tfidf = proj.train(StudentSpec(kind="tfidf-logreg"), dataset)
    assert json.loads((Path(tfidf.directory).parent / "run.json").read_text())["soft_labels"] is False
