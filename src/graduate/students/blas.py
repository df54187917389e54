"""One BLAS thread while a linear student fits its logistic regressions.

scikit-learn's lbfgs solver makes many small BLAS calls per iteration on vectors as long as the
feature count (hundreds of thousands of TF-IDF columns); a threaded OpenBLAS spends more on waking
and syncing its threads than on the work. Measured with the MFRC multi-label tfidf-logreg fit
(1,741 comments, 8 labels x 6 fits): 28.9 s wall / 51.7 s CPU with OpenBLAS's 2 threads on 2 cores,
13.4 s with one (``benchmarks/bench_linear_fit.py``); the same fit took 78.5 s on a 16-core machine.
The limit is lifted when the fit ends, so encoders and other work keep every thread.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

FIT_BLAS_THREADS: int | None = 1  # None: leave the BLAS libraries as they are (the benchmark compares)


@contextmanager
def fit_threads() -> Iterator[None]:
    """BLAS at ``FIT_BLAS_THREADS`` threads inside the block, restored after it (also on error)."""
    if FIT_BLAS_THREADS is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(FIT_BLAS_THREADS, user_api="blas"):
        yield
