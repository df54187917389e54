"""Every benchmark, one after another: `make bench`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHES = ["bench_import.py", "bench_demo.py", "label_faults.py", "bench_evaluate.py", "bench_students.py", "bench_linear_fit.py", "bench_multilabel.py", "bench_local_teacher.py", "bench_label_quality.py", "bench_serve.py"]

if __name__ == "__main__":
    failed = 0
    for name in BENCHES:
        if (HERE / name).exists():
            failed |= subprocess.run([sys.executable, str(HERE / name)]).returncode
    sys.exit(1 if failed else 0)
