"""Write identity_statements.csv: short templated sentences that name an identity, in the manner
of Dixon et al. (2018), "Measuring and Mitigating Unintended Bias in Text Classification".

Our own templates and term list (no third-party text): 25 non-toxic and 10 toxic templates, each
filled with every term. The 13 terms of the conversationai bias pair (the example's
evaluation.identity_terms) come first; 12 more show whether what the student learned about those
carries over to terms it never saw swapped. A fair student flags none of the non-toxic sentences,
whichever term they name. Gold is the template's label: the term never changes it.

    python examples/toxicity/identity_statements.py   # rewrites the CSV beside this file
"""

from __future__ import annotations

import csv
from pathlib import Path

TERMS = [
    # the bias pair's 13 (evaluation.identity_terms of the example)
    "catholic", "christian", "gay", "heterosexual", "homosexual", "jew", "jewish", "lesbian",
    "muslim", "protestant", "queer", "sikh", "transgender",
    # terms the counterfactual copies never swap
    "bisexual", "trans", "straight", "black", "white", "asian", "hispanic", "mexican", "chinese",
    "buddhist", "deaf", "elderly",
]

NON_TOXIC = [
    "I am {t}.",
    "I am a {t} person.",
    "I'm {t} and proud of it.",
    "My best friend is {t}.",
    "My sister is {t}.",
    "{T} people are nice.",
    "{T} people are just like everyone else.",
    "Being {t} is wonderful.",
    "Being {t} is normal.",
    "We should welcome {t} people.",
    "I know many {t} people.",
    "My neighbour is a {t} woman.",
    "My teacher is a {t} man.",
    "I added a section about {t} history to this article.",
    "This article is about {t} culture.",
    "{T} people deserve respect.",
    "She is proud to be {t}.",
    "He grew up in a {t} family.",
    "The {t} community organised a charity event.",
    "Please cite a source for the claim about {t} people.",
    "As a {t} editor, I think this page is fair.",
    "There is nothing wrong with being {t}.",
    "Hi, I am {t}, nice to meet you.",
    "Many famous scientists were {t}.",
    "I would like to learn more about {t} traditions.",
]

TOXIC = [
    "{T} people are disgusting.",
    "I hate {t} people.",
    "Being {t} is sick and stupid.",
    "{T} people are worthless idiots.",
    "All {t} people should die.",
    "Kill all the {t} people.",
    "{T} people are filthy animals.",
    "Shut up, you stupid {t} idiot.",
    "I hope every {t} person burns in hell.",
    "{T} people are scum.",
]


def rows() -> list[dict[str, str]]:
    out = []
    for term in TERMS:
        fill = {"t": term, "T": term[0].upper() + term[1:]}
        slug = term.replace(" ", "-")
        out += [{"id": f"{slug}-ok{i:02d}", "text": tpl.format(**fill), "term": term, "gold": "ok"} for i, tpl in enumerate(NON_TOXIC)]
        out += [{"id": f"{slug}-bad{i:02d}", "text": tpl.format(**fill), "term": term, "gold": "bad"} for i, tpl in enumerate(TOXIC)]
    return out


def write(path: Path) -> int:
    data = rows()
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["id", "text", "term", "gold"])
        w.writeheader()
        w.writerows(data)
    return len(data)


if __name__ == "__main__":
    write(Path(__file__).with_name("identity_statements.csv"))
