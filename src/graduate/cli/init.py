"""graduate init DIR: scaffold a project (graduate.yaml and a data folder)."""

from __future__ import annotations

import csv
from pathlib import Path

import typer

from graduate.cli.console import console

SPEC_TEMPLATE = """\
# graduate project: {task}. Every field: `graduate spec-help`. Check it: `graduate check {dir}`.
task:
  name: {task}
  text_column: text
  labels: [{labels}]
  parse:
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


def init(
    directory: Path = typer.Argument(..., help="Directory to create the project in."),
    task: str = typer.Option("my-task", help="Task name."),
    labels: str = typer.Option("negative,positive", help="Comma-separated labels."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing graduate.yaml."),
) -> None:
    """Scaffold a project: graduate.yaml plus data/items.csv to replace with your items."""
    from graduate.errors import SpecError
    from graduate.spec import SPEC_FILENAME, load_spec

    label_list = [x.strip() for x in labels.split(",") if x.strip()]
    if len(label_list) < 2:
        raise SpecError("give at least two labels, e.g. --labels ok,bad", field="--labels")
    spec_path = directory / SPEC_FILENAME
    if spec_path.exists() and not force:
        raise SpecError("already exists; pass --force to overwrite it", path=spec_path)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    spec_path.write_text(
        SPEC_TEMPLATE.format(task=task, dir=directory, labels=", ".join(label_list), label_list=", ".join(label_list)),
        encoding="utf-8",
    )
    items = directory / "data" / "items.csv"
    if not items.exists():
        with items.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["id", "text", "label", "split"])
            for i, lab in enumerate(label_list * 2):
                w.writerow([i + 1, f"An example text that is {lab}.", lab if i >= len(label_list) else "", "train" if i < len(label_list) else "test"])
    load_spec(directory)  # the scaffold must itself be valid
    console.print(f"created {spec_path} and {items}; edit them, then `graduate label {directory} --input FILE` or `graduate run {directory}`")
