"""Write reviews/identity-slice.csv: the training pool's comments that name an identity term,
each with a reviewer's label, which `graduate run` imports as human labels (``reviews:`` in
graduate.yaml) that win over GPT-4's.

The slice is the one `graduate errors` and the bias pair point at: GPT-4 flags 21% of the pool's
non-toxic comments that name one of evaluation.identity_terms, against 5% of the others. Here the
reviewer is simulated: the label is the data's own gold (``is_bad``), as a person checking those
comments would give it. The file holds ids and labels only, no comment text; rows name their item
by data source and id, so it can be read into any copy of the project's store. A pool with other
ids (another copy of the data) only skips the rows it does not hold.

    python examples/toxicity/identity_review.py   # rewrites the CSV beside this file
"""

from __future__ import annotations

import csv
from fnmatch import fnmatchcase
from pathlib import Path

from graduate.evaluate.slices import identity_pattern
from graduate.spec import load_spec

HERE = Path(__file__).parent
REVIEWER = "gold-simulated"


def slice_rows() -> list[dict[str, str]]:
    spec, _ = load_spec(HERE)
    src = next(d for d in spec.data if d.name == spec.train.source)
    patterns = [identity_pattern(t) for t in spec.evaluation.identity_terms]
    text_column = src.text_column or spec.task.text_column
    rows = []
    with src.path.open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            tags = [t for t in (r[src.tags_column] or "").split(src.tag_separator) if t]
            if not any(fnmatchcase(t, pat) for t in tags for pat in spec.train.tags):
                continue
            if not any(p.search(r[text_column]) for p in patterns):
                continue
            rows.append(
                {
                    "source": src.name,
                    "external_id": r[src.id_column],
                    "corrected_label": src.gold_values.get(r[src.gold_column], r[src.gold_column]),
                    "reviewer": REVIEWER,
                    "note": "names an identity term; label: the data's gold (simulated review)",
                }
            )
    return rows


def main() -> None:
    rows = slice_rows()
    out = HERE / "reviews" / "identity-slice.csv"
    out.parent.mkdir(exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {out}: {len(rows)} reviewed comments")


if __name__ == "__main__":
    main()
