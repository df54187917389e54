"""graduate.evaluate.before_after: a retrained student's change by slice and identity term, read
from the assessments evaluation runs store (oldest first)."""

from __future__ import annotations

import pytest

from graduate.evaluate.before_after import slice_changes


def assessment(runs: dict[str, str], slices: dict[str, list[tuple[str, int, float]]], terms: dict[str, dict[str, tuple[int, float]]] | None = None, shift=None):
    students = {name: {"run_id": rid} for name, rid in runs.items()}
    sets = {"test.balanced": {"purpose": "quality", "students": {
        name: {"slices": [{"kind": k, "name": n, "n": size, "accuracy": acc} for (k, n), size, acc in [((s[0].split(":")[0], s[0].split(":")[1]), s[1], s[2]) for s in rows]]}
        for name, rows in slices.items()}}}  # fmt: skip
    out = {"students": students, "test_sets": sets}
    if terms is not None:
        out["bias"] = {"perturbed": "bias.fuzzed", "students": {
            name: {"mean_abs_shift": (shift or {}).get(name), "terms": [{"term": t, "negatives_perturbed": n, "fpr_perturbed": f} for t, (n, f) in ts.items()]}
            for name, ts in terms.items()}}  # fmt: skip
    return out


def test_the_latest_training_is_compared_with_the_one_before_by_slice_and_term():
    first = assessment({"enc": "r1"}, {"enc": [("label:gold = ok", 200, 0.90), ("length:<100 chars", 15, 0.5)]},
                       {"enc": {"homosexual": (52, 0.19), "sikh": (10, 0.3)}}, {"enc": 0.046})  # fmt: skip
    again = assessment({"enc": "r1"}, {"enc": [("label:gold = ok", 200, 0.91), ("length:<100 chars", 15, 0.5)]},
                       {"enc": {"homosexual": (52, 0.18), "sikh": (10, 0.3)}}, {"enc": 0.045})  # re-assessed: r1's latest figures  # fmt: skip
    second = assessment({"enc": "r2"}, {"enc": [("label:gold = ok", 200, 0.95), ("length:<100 chars", 15, 0.9)]},
                        {"enc": {"homosexual": (52, 0.08), "sikh": (10, 0.0)}}, {"enc": 0.02})  # fmt: skip
    rows = slice_changes([first, again, second], min_size=20)
    by = {(r["test_set"], r["slice"]): r for r in rows}
    assert set(by) == {("test.balanced", "label: gold = ok"), ("bias.fuzzed", "identity: homosexual"), ("bias.fuzzed", "all pairs")}  # small ones left out
    assert by[("test.balanced", "label: gold = ok")]["before"] == 0.91 and by[("test.balanced", "label: gold = ok")]["change"] == pytest.approx(0.04)
    assert by[("bias.fuzzed", "identity: homosexual")]["change"] == pytest.approx(-0.10)
    assert by[("bias.fuzzed", "all pairs")]["metric"] == "mean |score shift|" and by[("bias.fuzzed", "all pairs")]["after"] == 0.02
    assert [r["slice"] for r in rows][0] == "identity: homosexual"  # largest change first


def test_a_student_trained_once_or_a_slice_missing_before_gives_no_row():
    one = assessment({"enc": "r1", "tfidf": "t1"}, {"enc": [("label:gold = ok", 100, 0.9)], "tfidf": [("label:gold = ok", 100, 0.8)]})
    two = assessment({"enc": "r1", "tfidf": "t2"}, {"enc": [("label:gold = ok", 100, 0.9)], "tfidf": [("label:gold = bad", 100, 0.7)]})
    assert slice_changes([one, two]) == []
    assert slice_changes([]) == []
