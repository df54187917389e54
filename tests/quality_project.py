"""Helpers for the teacher-audit and data-quality tests: the tiny project with its chain-of-thought
logs and the four recorded teacher configurations, and small synthetic projects with known truth."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import yaml

FIXTURES = Path(__file__).parent / "fixtures"
COT_PROMPT = (
    "Given the input text below, please determine if it is toxic. Please format your response in the form of a python dictionary "
    "with the following keys:\n\n1. 'reason_innocent': Provide a reason why the comment might be innocent. For parsing consistency, "
    "do not use any single or double quotes in your response string, even if the your text may be grammatically invalid.\n2. "
    "'reason_toxic': Provide a reason why the comment might be toxic. For parsing consistency, do not use single or double quotes in "
    "your response string, even if the your text may be grammatically invalid.\n3. 'is_bad': Your final judgment on whether the "
    "comment is toxic or not. If the comment is indeed toxic, use set is_bad=1, otherwise set is_bad=0.\n\nInput text: '{text}'\nOutput:"
)
CONFIGS = [
    {"name": "gpt-4 simple", "model": "gpt-4-1106-preview", "prompt_name": "simple"},
    {"name": "gpt-4 cot", "model": "gpt-4-1106-preview", "prompt_name": "cot", "prompt": COT_PROMPT},
    {"name": "gpt-3.5 simple", "model": "gpt-3.5-turbo", "prompt_name": "simple"},
    {"name": "gpt-3.5 simple x4", "model": "gpt-3.5-turbo", "prompt_name": "simple", "n": 4},
    {"name": "gpt-3.5 cot", "model": "gpt-3.5-turbo", "prompt_name": "cot", "prompt": COT_PROMPT},
]


def edit_spec(project: Path, **changes: object) -> dict:
    path = project / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    raw.update(changes)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return raw


def with_audit(project: Path) -> Path:
    """The tiny project plus the cot logs of its 41 test.balanced items and the audit configs."""
    raw = yaml.safe_load((project / "graduate.yaml").read_text())
    for name in ("gpt-4-1106-preview.cot", "gpt-3.5-turbo.cot"):
        for part in ("batch_input", "batch_output"):
            shutil.copy(FIXTURES / "tiny_cot" / f"{name}.{part}.jsonl", project / f"{name}.{part}.jsonl")
        raw["teacher_logs"].append({"input": f"{name}.batch_input.jsonl", "output": f"{name}.batch_output.jsonl"})
    raw["audit"] = {
        "configs": CONFIGS,
        "ensembles": [{"name": "majority of three", "members": ["gpt-4 simple", "gpt-4 cot", "gpt-3.5 simple"]}],
    }
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return project


def write_items(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
