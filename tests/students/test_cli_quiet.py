"""`graduate` keeps model libraries' own load reports and progress bars off the terminal."""

import os
import subprocess
import sys
from pathlib import Path

import yaml


def test_graduate_run_with_an_encoder_prints_only_our_output(tiny_project, tiny_encoder):
    spec = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
    params = {"base_model": str(tiny_encoder), "max_steps": 2, "max_length": 32, "batch_size": 16, "agreement_items": 16, "save_float": False}
    spec["students"] = [{"kind": "encoder", "params": params}]
    (tiny_project / "graduate.yaml").write_text(yaml.safe_dump(spec))
    env = {k: v for k, v in os.environ.items() if k not in ("TRANSFORMERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS")}
    graduate = Path(sys.executable).parent / "graduate"
    done = subprocess.run([str(graduate), "run", str(tiny_project)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout + done.stderr
    assert "encoder" in done.stdout  # our results table
    # The tiny encoder has no classifier head, so transformers would print its load report here.
    assert "LOAD REPORT" not in out and "Loading weights" not in out
    assert "pre-processing before quantization" not in out  # onnxruntime's advice on the root logger
