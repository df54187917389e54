"""graduate init DIR: scaffold a project (graduate.yaml and a data folder)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import typer

from rich.markup import escape

from graduate.cli.console import console

TASK_TEMPLATE = """\
# graduate project: {task}. Every field: `graduate spec-help`. Check it: `graduate check {dir}`.
task:
  name: {task}
  text_column: text
  labels: [{labels}]
  parse:
"""

OPENAI_TEACHER = """\
    kind: label_words        # or json_key (with key:) or regex (with pattern:)

teacher:
  base_url: https://api.openai.com/v1   # any OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp)
  model: gpt-4o-mini
  api_key_env: OPENAI_API_KEY
  prompt_name: v1
  prompt: |
    Classify the text below as one of: {label_list}. Answer with the label only.

    Text: {{text}}
  temperature: 0
  max_tokens: 5
  concurrency: 8
  requests_per_minute: 500
  tokens_per_minute: 200000
  budget_usd: 5.0

prices:
  gpt-4o-mini: {{input_per_1m: 0.15, output_per_1m: 0.6}}
"""

# A small local model needs a short prompt, a constrained answer and its logprobs (soft labels).
# It also needs prompt iteration: try wordings on a few gold items with
# `graduate teacher audit --live` (audit.configs) before labelling everything.
LOCAL_TEACHER = """\
    kind: json_key
    key: label

teacher:
  kind: local                # llama.cpp's server on 127.0.0.1, started and stopped by graduate label
  model: {model}        # `graduate teacher models` lists the packaged ones; or a path to a .gguf file
  prompt_name: v1
  prompt: |
    Classify the text into one of these labels: {label_list}.

    Text: {{text}}

    Reply in JSON as {{"label": "..."}}.
  temperature: 0
  max_tokens: 16
  response_format:           # constrained decoding: every answer is one of the labels
    type: json_object
    schema: {{type: object, properties: {{label: {{enum: [{labels}]}}}}, required: [label]}}
  logprobs: true             # the model's probability for each label, kept as soft labels
  top_logprobs: 5
  concurrency: 1             # llama.cpp answers one request at a time on CPU
  budget_usd: 1.0            # spent by paid APIs only; a local model's CPU time is its cost in evaluations
  timeout_s: 300
"""

DATA_TEMPLATE = """\

data:
  - name: items
    path: data/items.csv
    id_column: id
    gold_column: label       # gold labels where a person gave one; leave empty otherwise
    tags_column: split       # e.g. train / test; several tags separated by ;

teacher_logs: []             # recorded calls: {{input: batch_input.jsonl, output: batch_output.jsonl}}

train:
  source: items
  tags: [train]

test_sets:
  - {{name: test, source: items, tags: [test]}}

students:
  - kind: majority
  - kind: tfidf-logreg

seed: 0
"""


def check_scaffold(body: str, spec_path: Path) -> None:
    from graduate.spec import parse_spec
    from graduate.spec.load import read_yaml

    parse_spec(read_yaml(body), path=spec_path)


def init(
    directory: Path = typer.Argument(..., help="Directory to create the project in."),
    task: str = typer.Option("my-task", help="Task name."),
    labels: str = typer.Option("negative,positive", help="Comma-separated labels."),
    teacher: str = typer.Option("openai", help="openai (any OpenAI-compatible API) or local (a packaged small model on this machine, no API key)."),
    model: str = typer.Option("qwen2.5-coder-1.5b", help="--teacher local: the packaged model name or a .gguf path."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing graduate.yaml."),
) -> None:
    """Scaffold a project: graduate.yaml plus data/items.csv to replace with your items."""
    from graduate.errors import SpecError
    from graduate.pipeline.validate import load_checked_spec as load_spec
    from graduate.spec import SPEC_FILENAME

    label_list = [x.strip() for x in labels.split(",") if x.strip()]
    if len(label_list) < 2:
        raise SpecError("give at least two labels, e.g. --labels ok,bad", field="--labels")
    spec_path = directory / SPEC_FILENAME
    if spec_path.exists() and not force:
        raise SpecError("already exists; pass --force to overwrite it", path=spec_path)
    if teacher not in ("openai", "local"):
        raise SpecError(f"--teacher {teacher!r}: use openai or local", field="--teacher")
    if directory.exists() and not directory.is_dir():
        raise SpecError("is a file, not a folder; give a new or existing folder for the project", path=directory)
    # Names go in as quoted YAML scalars (JSON strings are YAML): labels such as yes, no, null,
    # "a: b" or "#bad" stay strings. The prompt is a block scalar and takes them as written.
    quoted = [json.dumps(x, ensure_ascii=False) for x in label_list]
    values = {"task": json.dumps(task, ensure_ascii=False), "dir": directory, "labels": ", ".join(quoted), "label_list": ", ".join(label_list), "model": json.dumps(model, ensure_ascii=False)}
    body = (TASK_TEMPLATE + (LOCAL_TEACHER if teacher == "local" else OPENAI_TEACHER) + DATA_TEMPLATE).format(**values)
    check_scaffold(body, spec_path)  # nothing is written, no folder made, when the options make an invalid spec
    try:
        (directory / "data").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpecError(f"cannot create the project folder here ({exc.strerror}); give a folder you can write to", path=directory) from None
    spec_path.write_text(body, encoding="utf-8")
    items = directory / "data" / "items.csv"
    if not items.exists():
        with items.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["id", "text", "label", "split"])
            # Train and test texts differ: the overlap guard drops training items that are in a test set.
            for i, lab in enumerate(label_list):
                w.writerow([i + 1, f"A training example of the label {lab}.", "", "train"])
            for i, lab in enumerate(label_list):
                w.writerow([len(label_list) + i + 1, f"A test example, gold label {lab}.", lab, "test"])
    load_spec(directory)  # the scaffold must itself be valid
    console.print(escape(f"created {spec_path} and {items}; edit them, then `graduate label {directory} --input FILE` or `graduate run {directory}`"), highlight=False)
    if teacher == "local":
        console.print(
            escape(
                "a small local model needs prompt iteration: list wordings under audit.configs and compare them on a few gold items with "
                f"`graduate teacher audit {directory} --live` before labelling everything (needs `pip install 'graduate[local,local-coder]'`)"
            ),
            highlight=False,
        )
