"""The promotion's judgement of a stage (graduate.serve.promotion), fed request by request as the
server feeds it: agreement with what was served, then the monitor's label-share check. The server
path itself is tested against a real process in test_promote.py."""

from __future__ import annotations

import random

import pytest

from graduate.serve.promotion import Candidate, Promotion
from graduate.spec import PromoteSpec


def promotion(max_label_psi: float | None, *, labels=("ok", "bad"), multi_label: bool = False, **spec) -> Promotion:
    cand = Candidate("tfidf-logreg:new", "new", predictor=None, decide=None)
    return Promotion(cand, PromoteSpec(**{"min_items": 100, "min_agreement": 0.9, **spec}), replaces="tfidf-logreg:old",
                     labels=list(labels), multi_label=multi_label, max_label_psi=max_label_psi)  # fmt: skip


def feed(p: Promotion, served: list[str], candidate: list[str], per_request: int = 4) -> list[str | None]:
    out = []
    for i in range(0, len(served), per_request):
        out.append(p.observe(served[i : i + per_request], candidate[i : i + per_request], latency_ms=3.0))
    return out


def test_a_candidate_that_agrees_often_enough_but_drops_the_rare_label_fails_the_label_check():
    # 10% of the served answers are "bad"; the candidate says "bad" for only 2%: agreement 0.92 passes 0.9.
    served = ["bad"] * 10 + ["ok"] * 90
    candidate = ["bad"] * 2 + ["ok"] * 98
    p = promotion(max_label_psi=0.1)
    assert feed(p, served, candidate)[-1] == "rollback"
    assert p.outcome == "rolled_back" and "label shares drift" in p.reason and "PSI 0.1" in p.reason
    h = p.history[-1]
    assert h["agreement"] == pytest.approx(0.92) and h["label_psi"] > 0.1
    assert h["served_shares"] == {"ok": 0.9, "bad": 0.1} and h["candidate_shares"] == {"ok": 0.98, "bad": 0.02}

    # The same answers without the monitor's check pass the stage on agreement alone.
    q = promotion(max_label_psi=None)
    assert feed(q, served, candidate)[-1] == "next" and q.stage == "canary" and q.history[-1]["label_psi"] is not None


def test_a_candidate_whose_disagreements_cancel_out_passes_both_stages_and_is_promoted():
    rng = random.Random(0)
    served = [rng.choice(["ok"] * 9 + ["bad"]) for _ in range(200)]
    candidate = list(served)
    for i in range(0, 200, 25):  # 8 swaps each way in 200: agreement 0.92, shares unchanged
        j = next(k for k in range(i, 200) if candidate[k] == "ok")
        candidate[j] = "bad"
        k = next(k for k in range(i, 200) if served[k] == "bad" and candidate[k] == "bad" and k != j)
        candidate[k] = "ok"
    p = promotion(max_label_psi=0.1)
    results = feed(p, served[:100], candidate[:100]) + feed(p, served[100:], candidate[100:])
    assert results.count("next") == 1 and results[-1] == "promote", p.as_dict()
    assert p.outcome == "promoted" and [h["stage"] for h in p.history] == ["shadow", "canary"]
    assert all(h["label_psi"] < 0.1 for h in p.history)


def test_multi_label_judges_the_worst_label():
    labels = ["care", "loyalty", "non-moral"]
    served = ["care"] * 30 + ["loyalty"] * 10 + ["non-moral"] * 60
    candidate = ["care"] * 30 + ["non-moral"] * 10 + ["non-moral"] * 60  # never says loyalty: agreement 0.9
    p = promotion(max_label_psi=0.2, labels=labels, multi_label=True)
    assert feed(p, served, candidate)[-1] == "rollback"
    assert "'loyalty'" in p.reason


def test_stage_counts_restart_after_a_passed_stage():
    p = promotion(max_label_psi=0.2)
    feed(p, ["ok"] * 100, ["ok"] * 100)
    assert p.stage == "canary" and p.compared == 0 and p.served_labels == [] and p.candidate_labels == []


def test_a_candidate_failure_after_the_stage_was_judged_changes_nothing():
    """Two requests score the candidate at once: one's comparison promotes it (it is now the served
    student), the other's prediction fails a moment later. That late failure turned the outcome into
    rolled_back, and the server then closed the candidate's predictor, which was serving."""
    p = promotion(max_label_psi=None, min_items=4, min_agreement=0.5)
    assert feed(p, ["ok"] * 8, ["ok"] * 8) == ["next", "promote"]
    p.failed("BrokenPipeError: the worker's stream broke")
    assert p.outcome == "promoted" and p.reason is None and p.errors == 0
    assert [h["stage"] for h in p.history] == ["shadow", "canary"]

    q = promotion(max_label_psi=None, min_items=4)
    q.failed("first")
    q.failed("second")  # a second request's failure: the rollback is reported once, with its first reason
    assert q.outcome == "rolled_back" and q.reason.endswith("first") and len(q.history) == 1
