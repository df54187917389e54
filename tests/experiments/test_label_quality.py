"""The label-quality comparison's paired difference: accuracy minus the baseline's on the same items."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graduate.experiments.label_quality import paired_difference


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=0, max_size=60))
def test_the_difference_is_the_mean_of_paired_flips_and_its_interval_brackets_it(pairs):
    a = np.array([float(x) for x, _ in pairs])
    b = np.array([float(y) for _, y in pairs])
    out = paired_difference(a, b, resamples=300)
    if len(pairs) < 2:  # nothing to resample: scipy refused one item and a test set of one crashed the command
        assert out["ci95"] is None and out["difference"] == (float(a[0] - b[0]) if pairs else None)
        return
    assert out["difference"] == pytest.approx(float(np.mean(a - b)))
    low, high = out["ci95"]
    assert -1.0 <= low <= high <= 1.0
    if np.all(a - b == (a - b)[0]):
        assert low == high == pytest.approx(float((a - b)[0]))
