"""POST /v1/feedback: a person's answer for an item the server answered becomes a human label on
the item's text that wins in the next build; bad input is one clear error, never a 500."""

from __future__ import annotations

import csv
import json
import unicodedata
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from graduate.formats import labelset
from graduate.pipeline.project import Project
from graduate.serve.app import create_app
from graduate.store.schema import examples, label_changes, labels
from servers.graduate_server import AUTH, ThreadServer, comments, options


def test_feedback_becomes_a_human_label_that_wins_in_the_next_build(served: Path) -> None:
    proj = Project.load(served)
    pool_text = next(ex.text for ex in proj.build_training_set().examples)
    with ThreadServer(create_app(proj, options(proj))) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        r = client.post("/v1/classify", json={"texts": ["a brand new sentence nobody labelled", pool_text]})
        rid = r.json()["id"]
        first = client.post("/v1/feedback", json={"request_id": rid, "item": 0, "label": "bad", "reviewer": "alice"})
        assert first.status_code == 200, first.text
        assert first.json()["status"] == "added" and first.json()["label"] == "bad"
        assert client.post("/v1/feedback", json={"request_id": rid, "item": 0, "label": "bad", "reviewer": "alice"}).json()["status"] == "unchanged"
        assert client.post("/v1/feedback", json={"request_id": rid, "item": 0, "label": "ok", "reviewer": "alice", "note": "on second thought"}).json()["status"] == "changed"
        teacher_label = proj.build_training_set().labels[0]
        flipped = "ok" if teacher_label == "bad" else "bad"
        on_pool = client.post("/v1/feedback", json={"request_id": rid, "item": 1, "label": flipped, "reviewer": "bob"}).json()
        assert on_pool["status"] == "added" and on_pool["overrides_teacher"] == teacher_label
        metrics = client.get("/metrics").text
        assert 'graduate_feedback_total{status="added"} 2.0' in metrics
        assert 'graduate_requests_total{endpoint="/v1/feedback",status="200"} 4.0' in metrics  # its own endpoint, not "other"
        assert "graduate_agreement_ratio NaN" in metrics  # student mode compares nothing: no figure, not 0
    ds = Project.load(served).build_training_set()
    by_text = {ex.text: (lab, who) for ex, lab, who in zip(ds.examples, ds.labels, ds.producers)}
    assert by_text["a brand new sentence nobody labelled"] == ("ok", "human:alice")  # a new item, added to the pool
    assert by_text[pool_text] == (flipped, "human:bob")  # the person wins over the teacher
    with proj.engine.connect() as conn:
        (change,) = conn.execute(select(label_changes).where(label_changes.c.origin == f"feedback {rid}/0")).all()
    assert (change.old_label, change.new_label) == ("bad", "ok")


def test_bad_feedback_is_one_clear_error(served: Path) -> None:
    proj = Project.load(served)
    with ThreadServer(create_app(proj, options(proj))) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        rid = client.post("/v1/classify", json={"texts": comments(served, 1)}).json()["id"]
        bad_label = client.post("/v1/feedback", json={"request_id": rid, "label": "toxic", "reviewer": "a"})
        assert bad_label.status_code == 422 and "['toxic'] is not one of ['ok', 'bad']" in bad_label.json()["error"]["message"]
        listed = client.post("/v1/feedback", json={"request_id": rid, "label": ["ok"], "reviewer": "a"})
        assert listed.status_code == 422 and "give one label as a string, one of ['ok', 'bad'] (a list is for multi-label tasks)" in listed.json()["error"]["message"]
        missing = client.post("/v1/feedback", json={"request_id": "0" * 32, "label": "ok", "reviewer": "a"})
        assert missing.status_code == 404 and "x-request-id" in missing.json()["error"]["message"]
        nobody = client.post("/v1/feedback", json={"request_id": rid, "label": "ok", "reviewer": "   "})
        assert nobody.status_code == 422 and nobody.json()["error"]["param"] == "reviewer"
        blank = client.post("/v1/classify", json={"texts": ["  ", "fine"]}).json()["id"]
        empty = client.post("/v1/feedback", json={"request_id": blank, "item": 0, "label": "ok", "reviewer": "a"})
        assert empty.status_code == 422 and empty.json()["error"]["code"] == "empty_text" and "nothing to learn from" in empty.json()["error"]["message"]
        assert client.post("/v1/feedback", json={"request_id": blank, "item": 1, "label": "ok", "reviewer": "a"}).status_code == 200
        assert "  " not in [ex.text for ex in Project.load(served).build_training_set().examples]
        # Only invisible characters (zero-width space, word joiner, BOM, bidi marks, a Hangul filler)
        # pass strip() but show nothing: the same error as an empty text, nothing stored.
        invisible = ["\u200b", "\u2060\ufeff", " \u200b\u200e\t\u2060 ", "\u3164\u00a0", "\U000e0041\u2800"]
        answered = client.post("/v1/classify", json={"texts": invisible})  # answered as any text, as the README says
        assert answered.status_code == 200 and len(answered.json()["results"]) == len(invisible), answered.text
        for k in range(len(invisible)):
            empty = client.post("/v1/feedback", json={"request_id": answered.json()["id"], "item": k, "label": "ok", "reviewer": "a"})
            assert empty.status_code == 422 and empty.json()["error"]["code"] == "empty_text", (invisible[k], empty.text)
        with proj.engine.connect() as conn:
            assert not set(invisible) & set(conn.execute(select(examples.c.text)).scalars())
        unauth = httpx.post(f"{server.url}/v1/feedback", json={"request_id": rid, "label": "ok", "reviewer": "a"}, timeout=60)
        assert unauth.status_code == 401
        # A name is stored as labeller human:NAME and printed in maintainers' terminals later: control
        # characters (an ESC sequence that retitles or clears the terminal, a newline) and bidi
        # overrides are refused, as is a name the labeller column cannot hold; ordinary names are kept.
        for name in ("ev\x1b]0;owned\x07il", "\x1b[2J", "a\u202eb", "two\nlines", "nul\x00", "\x9bc1", "x" * 295, "\u200b\u200b", "\ufeff \u2060"):  # invisible only: human: plus nothing
            refused = client.post("/v1/feedback", json={"request_id": rid, "label": "ok", "reviewer": name})
            assert refused.status_code == 422 and refused.json()["error"]["param"] == "reviewer", (name, refused.text)
            message = refused.json()["error"]["message"]
            assert message.startswith("reviewer: ") and message.isprintable(), message
        for name in ("José", "李雷", "  Zoë  ", "ﾊﾙ\u200cカ", "x" * 294):
            kept = client.post("/v1/feedback", json={"request_id": rid, "label": "ok", "reviewer": name})
            assert kept.status_code == 200, (name, kept.text)
        with proj.engine.connect() as conn:
            stored = set(conn.execute(select(labels.c.labeller).where(labels.c.kind == "human")).scalars())
        assert {"human:José", "human:李雷", "human:Zoë", "human:ﾊﾙ\u200cカ", "human:" + "x" * 294} <= stored

        chars = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
        field = st.one_of(st.text(chars, max_size=80), st.integers(), st.none(), st.lists(st.text(chars, max_size=5), max_size=3))

        @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(body=st.fixed_dictionaries({"request_id": st.one_of(st.just(rid), field), "label": field, "reviewer": field}, optional={"item": st.one_of(st.integers(-5, 5), field), "note": field}))
        def fuzz(body: dict) -> None:
            raw = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
            r = client.post("/v1/feedback", content=raw, headers={"content-type": "application/json"})
            assert r.status_code in {200, 400, 404, 409, 422}, r.text[:300]

        fuzz()
    with proj.engine.connect() as conn:  # whatever the fuzz sent, every name stored is one printable line
        stored = list(conn.execute(select(labels.c.labeller).where(labels.c.kind == "human")).scalars())
    terminal = [who for who in stored if len(who) > 300 or any(unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069" for c in who)]
    assert not terminal, terminal


def test_served_disagreements_go_to_the_review_queue_and_come_back_as_labels(trained_copy: Path) -> None:
    """Items the teacher answered beside the student with another label (shadow, cascade) are listed
    by `graduate data review export`; a reviewer's answer is imported and wins in the next build."""
    import csv
    import subprocess
    import sys

    from graduate.store.db import now
    from graduate.store.traffic import write_traffic
    from teacher.live_teacher import cli_env

    proj = Project.load(trained_copy)
    base = {"created_at": now(), "endpoint": "classify", "mode": "shadow", "route": "student", "reason": "student", "status": 200, "latency_ms": 1.0, "shadow": True}
    write_traffic(
        proj.engine,
        [
            {**base, "request_id": "a" * 32, "text": "served text the two saw differently", "label": "ok", "student_label": "ok", "teacher_label": "bad", "agree": False, "confidence": 0.6},
            {**base, "request_id": "b" * 32, "text": "served text they agreed on", "label": "ok", "student_label": "ok", "teacher_label": "ok", "agree": True, "confidence": 0.9},
        ],
    )
    proj.engine.dispose()
    out = trained_copy / "queue.csv"
    export = subprocess.run([sys.executable, "-m", "graduate", "data", "review", "export", str(trained_copy), "--out", str(out)], capture_output=True, text=True, timeout=300, env=cli_env())
    assert export.returncode == 0, export.stderr
    assert "1 served items where the teacher disagreed" in " ".join(export.stdout.split())
    rows = list(csv.DictReader(out.open(newline="", encoding="utf-8")))
    (served,) = [r for r in rows if r["group"] == "served_disagreement"]
    assert served["text"] == "served text the two saw differently" and (served["student_label"], served["teacher_label"]) == ("ok", "bad")
    served.update(corrected_label="bad", reviewer="carol")
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerow(served)
    imported = subprocess.run([sys.executable, "-m", "graduate", "data", "review", "import", str(trained_copy), str(out)], capture_output=True, text=True, timeout=300, env=cli_env())
    assert imported.returncode == 0, imported.stderr
    ds = Project.load(trained_copy).build_training_set()
    by_text = {ex.text: (lab, who) for ex, lab, who in zip(ds.examples, ds.labels, ds.producers)}
    assert by_text["served text the two saw differently"] == ("bad", "human:carol")
    assert "served text they agreed on" not in by_text


def test_feedback_on_a_shadow_item_is_taken_while_its_teacher_comparison_runs(served: Path) -> None:
    """In shadow mode an item's traffic row is written with the answer and its teacher side filled
    in when the background call settles: feedback sent right after the answer finds the row (it
    once got 404 "no item" for a valid id), without waiting for the teacher."""
    import time

    from graduate.store.traffic import find_traffic
    from servers import fake_openai_server
    from servers.graduate_server import set_teacher

    with fake_openai_server(latency=5.0) as slow_teacher:  # slower than classify + feedback on a loaded machine
        set_teacher(served, base_url=slow_teacher.base_url)
        proj = Project.load(served)
        with ThreadServer(create_app(proj, options(proj, mode="shadow", shadow_rate=1.0))) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            rid = client.post("/v1/classify", json={"texts": ["a shadowed sentence about the weather"]}).json()["id"]
            r = client.post("/v1/feedback", json={"request_id": rid, "item": 0, "label": "ok", "reviewer": "alice"})
            assert r.status_code == 200 and r.json()["status"] == "added", r.text
            assert slow_teacher.stats()["ok"] == 0  # still comparing: the row was there before the teacher answered
            pending = find_traffic(proj.engine, rid, 0)
            assert pending.shadow and pending.teacher_label is None and pending.agree is None  # pending, not a disagreement
            deadline = time.monotonic() + 60
            while (row := find_traffic(proj.engine, rid, 0)).teacher_label is None:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert row.teacher_label == "ok" and row.agree == (row.student_label == "ok") and slow_teacher.stats()["ok"] == 1


def multi_label_project(root: Path, labels: list[str] | None = None, **parse: object) -> Path:
    """A trained three-label project (tests/test_multilabel_edges.py's synthetic items), tfidf-logreg
    only; ``parse``: more of the answer format's fields (``max_labels``)."""
    import yaml

    from test_multilabel_edges import make_project

    project = make_project(root, labels or ["care", "equality", "loyalty"], {"kind": "label_list", "none": "none", **parse})
    raw = yaml.safe_load((project / "graduate.yaml").read_text())
    raw["students"] = [{"kind": "tfidf-logreg"}]
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw))
    Project.load(project).run()
    return project


def test_multi_label_feedback_with_a_string_naming_no_known_label_is_a_422(tmp_path: Path, monkeypatch) -> None:
    """A string label on a multi-label server was decoded with a ValueError left uncaught (500), and
    "" or ";" were stored as the empty set; the empty set is asked for by name ("(none)" or [])."""
    from servers.graduate_server import KEY

    monkeypatch.setenv("GRADUATE_API_KEYS", KEY)
    proj = Project.load(multi_label_project(tmp_path / "ml"))
    labels = proj.spec.task.labels
    with ThreadServer(create_app(proj, options(proj))) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        rid = client.post("/v1/classify", json={"texts": ["w0a w0b a text to label"]}).json()["id"]

        def send(label: object) -> httpx.Response:
            return client.post("/v1/feedback", json={"request_id": rid, "item": 0, "label": label, "reviewer": "r"})

        for bad in ["care;bogus", "nonsense", "care, equality", ["care", "bogus"]]:
            r = send(bad)
            assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_label" and r.json()["error"]["param"] == "label", (bad, r.text)
        assert "'bogus' is not a task label ['care', 'equality', 'loyalty']" in send("care;bogus").json()["error"]["message"]
        for blank in ["", ";", "  ", " ; "]:
            r = send(blank)
            assert r.status_code == 422 and "names no label" in r.json()["error"]["message"] and "(none)" in r.json()["error"]["message"], (blank, r.text)
        assert send("(none)").json()["label"] == "(none)" and send([]).json()["label"] == "(none)"
        assert send("equality;care").json()["label"] == "care;equality"
        assert send("equality; care").json()["label"] == "care;equality"  # spaces around a label, as people type them
        # A list is read as the string is: its labels stripped, ["(none)"] the empty set (both were 422).
        assert send([" equality", "care "]).json()["label"] == "care;equality"
        assert send(["(none)"]).json()["label"] == "(none)"
        mixed = send(["(none)", "care"])
        assert mixed.status_code == 422 and "stands for the empty set, so it cannot go with labels" in mixed.json()["error"]["message"], mixed.text

        @settings(max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(parts=st.lists(st.sampled_from([*labels, "", " ", "(none)", "bogus", ", "]) | st.text(max_size=8), max_size=4), sep=st.sampled_from([";", ", ", ","]))
        def any_string(parts: list[str], sep: str) -> None:
            value = sep.join(parts)
            r = send(value)
            assert r.status_code in {200, 422}, (value, r.text[:300])
            try:  # a review file's or a label import's cell reads the same (graduate.formats.labelset.read_cell)
                want = labelset.read_cell(value, labels, none_word="none")
            except labelset.CellError:
                want = None
            assert (r.status_code == 200) == (want is not None), (value, r.text[:300])
            assert want is None or r.json()["label"] == want

        any_string()


def test_feedback_takes_the_chat_completions_id_as_an_openai_sdk_shows_it(served: Path) -> None:
    """completion.id is "chatcmpl-" + the request id; feedback matched the bare id only, so what an
    OpenAI SDK user holds always got 404."""
    import openai

    from servers.graduate_server import KEY, prompt_messages

    proj = Project.load(served)
    with ThreadServer(create_app(proj, options(proj))) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        sdk = openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0)
        completion = sdk.chat.completions.create(model="m", messages=prompt_messages(proj, "a chat reply someone corrects"))
        streamed = [c.id for c in sdk.chat.completions.create(model="m", messages=prompt_messages(proj, "a streamed chat reply"), stream=True)]
        assert completion.id.startswith("chatcmpl-") and len(set(streamed)) == 1
        for rid in (completion.id, streamed[0]):
            r = client.post("/v1/feedback", json={"request_id": rid, "item": 0, "label": "bad", "reviewer": "alice"})
            assert r.status_code == 200 and r.json()["status"] == "added", r.text
        bare = completion.id.removeprefix("chatcmpl-")  # x-request-id: the same item
        assert client.post("/v1/feedback", json={"request_id": bare, "item": 0, "label": "bad", "reviewer": "alice"}).json()["status"] == "unchanged"
        assert client.post("/v1/feedback", json={"request_id": "chatcmpl-" + "0" * 32, "label": "ok", "reviewer": "a"}).status_code == 404


def test_feedback_on_an_unknown_id_is_a_404_at_once_while_other_comparisons_are_pending(served: Path) -> None:
    """The route waited on every pending background teacher call, so while any shadow comparison
    hung, a mistyped id waited 0.8 x request_timeout_s and got 503 "retry" instead of its 404."""
    import time

    from servers import fake_openai_server
    from servers.graduate_server import set_teacher

    with fake_openai_server(phang=1.0, hang_s=60) as hanging:
        set_teacher(served, base_url=hanging.base_url, timeout_s=60)
        proj = Project.load(served)
        app = create_app(proj, options(proj, mode="shadow", shadow_rate=1.0, request_timeout_s=10, shutdown_timeout_s=1))
        with ThreadServer(app, graceful_s=1) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            rid = client.post("/v1/classify", json={"texts": ["a shadowed text the teacher never answers"]}).json()["id"]
            started = time.monotonic()
            r = client.post("/v1/feedback", json={"request_id": "f" * 32, "item": 0, "label": "ok", "reviewer": "alice"})
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
            assert client.post("/v1/feedback", json={"request_id": rid, "item": 5, "label": "ok", "reviewer": "alice"}).status_code == 404  # no such item
            assert time.monotonic() - started < 5.0  # not 0.8 x request_timeout_s (8 s); slack for a loaded machine
            assert client.post("/v1/feedback", json={"request_id": rid, "item": 0, "label": "ok", "reviewer": "alice"}).status_code == 200


def test_multi_label_feedback_past_parse_max_labels_is_a_422(tmp_path: Path, monkeypatch) -> None:
    """A person's set with more labels than parse.max_labels was stored and trained on; a teacher's
    answer with as many is a parse failure."""
    from servers.graduate_server import KEY

    monkeypatch.setenv("GRADUATE_API_KEYS", KEY)
    proj = Project.load(multi_label_project(tmp_path / "ml", max_labels=2))
    with ThreadServer(create_app(proj, options(proj))) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        rid = client.post("/v1/classify", json={"texts": ["w0a w0b a text to label"]}).json()["id"]
        r = client.post("/v1/feedback", json={"request_id": rid, "item": 0, "label": ["loyalty", "care", "equality"], "reviewer": "r"})
        assert r.status_code == 422 and r.json()["error"]["param"] == "label", r.text
        assert r.json()["error"]["message"] == "label: 'care;equality;loyalty' has 3 labels, more than parse.max_labels 2 allows; give at most 2"
        ok = client.post("/v1/feedback", json={"request_id": rid, "item": 0, "label": "care;loyalty", "reviewer": "r"})
        assert ok.status_code == 200 and ok.json()["label"] == "care;loyalty", ok.text


def test_multi_label_feedback_with_a_huge_label_is_a_short_422(tmp_path: Path, monkeypatch) -> None:
    """A label of most of a megabyte (unknown words, only separators, only spaces, a list of many)
    was echoed whole in the 422's message; it names its start and length."""
    from servers.graduate_server import KEY

    monkeypatch.setenv("GRADUATE_API_KEYS", KEY)
    proj = Project.load(multi_label_project(tmp_path / "ml"))
    with ThreadServer(create_app(proj, options(proj))) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        rid = client.post("/v1/classify", json={"texts": ["w0a w0b a text to label"]}).json()["id"]
        for label, said in [
            ("fairness " * 100_000, f"{('fairness ' * 7)[:60]!r}… (899,999 characters) is not a task label"),
            ("care;" + "x" * 900_000, f"{('care;' + 'x' * 55)!r}… (900,005 characters): {'x' * 60!r}… (900,000 characters) is not a task label"),
            ("; " * 400_000, f"{('; ' * 30)[:60]!r}… (799,999 characters) names no label"),
            (" " * 900_000, "label: '' names no label"),
            (["care"] * 10 + ["x" * 500_000], "… (11 items): 'xxxx"),
        ]:
            r = client.post("/v1/feedback", json={"request_id": rid, "item": 0, "label": label, "reviewer": "r"})
            message = r.json()["error"]["message"]
            assert r.status_code == 422 and len(message) < 600 and said in message, (r.status_code, len(message), message[:300])


def test_concurrent_feedback_for_one_item_keeps_one_label_never_an_integrity_error(served: Path) -> None:
    """The same reviewer's feedback for one text arriving at once (a retrying client, two tabs; the
    server records each in its own thread): every call is answered and the store holds one human
    label for that reviewer, not a UNIQUE-constraint 500 for the losers."""
    import threading

    from graduate.data.review import record_feedback
    from graduate.store.schema import labels as labels_table

    proj = Project.load(served)
    errors: list[str] = []
    statuses: list[str] = []
    for n in range(4):
        barrier = threading.Barrier(8)

        def send(i: int, n: int = n, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                statuses.append(record_feedback(proj.engine, f"a text reviewed twice at once {n}", ("ok", "bad")[i % 2], "carol", origin=f"feedback r{n}/0")[0])
            except Exception as exc:  # noqa: BLE001 - the failure under test
                errors.append(repr(exc)[:200])

        threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert errors == []
    assert statuses.count("added") == 4
    with proj.engine.connect() as conn:
        humans = conn.execute(select(labels_table.c.example_id).where(labels_table.c.labeller == "human:carol")).all()
    assert len(humans) == 4


# One table of label-set cells for every entry point a person writes a set through: POST /v1/feedback,
# a review file's corrected_label, an earlier labeller's label_imports cell. Each case: the cell and
# the canonical set stored, the reason it is refused (CellError.code), or None for no answer.
CELL_LABELS = ["care", "équité", "loyalty"]  # équité composed (NFC)
CELL_CASES = [
    ("care", "care"),
    ("équité;care", "care;équité"),
    (" équité ; care ", "care;équité"),
    ("care;", "care"),  # an empty piece is ignored, wherever it is
    ("care; ;équité", "care;équité"),
    (";care", "care"),
    ("Care", "care"),  # any case
    ("CARE;ÉQUITÉ", "care;équité"),
    ("e\u0301quite\u0301", "équité"),  # decomposed
    ("care\u200b", "care"),  # a zero-width space at its edge
    ("(none)", "(none)"),
    (" (none) ", "(none)"),
    ("(NONE)", "(none)"),
    ("(none);", "(none)"),
    ("none", "(none)"),  # the task's parse.none word
    ("(none);care", "none_with_labels"),
    ("none;care", "none_with_labels"),
    (";", "no_label"),
    (" ; ; ", "no_label"),
    ("care;bogus", "unknown_label"),
    ("care, équité", "unknown_label"),
    ("care;équité;loyalty", "too_many_labels"),  # parse.max_labels 2
    ("", None),
    ("   ", None),
    ("\u200b", None),
]


@pytest.fixture(scope="module")
def cell_entry_points(tmp_path_factory: pytest.TempPathFactory):
    """A trained project whose task has parse.none and max_labels 2, served; the request id of one item."""
    from servers.graduate_server import KEY

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADUATE_API_KEYS", KEY)
        proj = Project.load(multi_label_project(tmp_path_factory.mktemp("cells") / "ml", CELL_LABELS, max_labels=2))
        with ThreadServer(create_app(proj, options(proj))) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            rid = client.post("/v1/classify", json={"texts": ["w0a w0b a text a person corrects"]}).json()["id"]
            yield proj, client, rid


@pytest.mark.parametrize(("cell", "expected"), CELL_CASES, ids=[repr(c) for c, _ in CELL_CASES])
def test_a_label_set_cell_reads_the_same_through_feedback_a_review_file_and_a_label_import(cell_entry_points, tmp_path: Path, cell: str, expected: str | None) -> None:
    """Feedback refused "care;" and "care; ;équité" (422) where a review file and a label import
    ignored the empty piece; "Care" or a decomposed "équité" was refused everywhere, and the task's
    parse.none word was the empty set only in the teacher's answers. One reader now: the same set,
    or the same reason, on every path."""
    from graduate.data.import_labels import import_labels
    from graduate.data.review import import_review
    from graduate.spec import LabelImportSpec

    proj, client, rid = cell_entry_points
    n = CELL_CASES.index((cell, expected))
    with proj.engine.connect() as conn:
        ex_id = conn.execute(select(examples.c.id).where(examples.c.source == "items", examples.c.external_id == "i1")).scalar_one()

    fed = client.post("/v1/feedback", json={"request_id": rid, "item": 0, "label": cell, "reviewer": f"fb{n}"})
    reviewed = tmp_path / "reviewed.csv"
    with reviewed.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["example_id", "corrected_label", "reviewer"], [ex_id, cell, f"rv{n}"]])
    review = import_review(proj.engine, reviewed, CELL_LABELS, multi_label=True, max_labels=2, none_word="none")
    old = tmp_path / "old.csv"
    with old.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", f"c{n}"], ["i1", cell]])
    imported = import_labels(proj.engine, LabelImportSpec(path=old, source="items", id_column="id", columns=[f"c{n}"], separator=";"), proj.spec.task)
    with proj.engine.connect() as conn:
        stored = dict(conn.execute(select(labels.c.labeller, labels.c.label).where(labels.c.labeller.in_([f"human:rv{n}", f"import:c{n}"]))).all())

    if expected is None:  # an empty cell: no answer (feedback must give one)
        assert fed.status_code == 422 and "names no label" in fed.json()["error"]["message"], fed.text
        assert review.not_reviewed == 1 and imported.empty == 1 and stored == {}
        assert review.skipped == [] and imported.skipped == []
    elif expected in {"no_label", "unknown_label", "none_with_labels", "too_many_labels"}:
        assert fed.status_code == 422 and fed.json()["error"]["param"] == "label", fed.text
        assert fed.json()["error"]["code"] == ("too_many_labels" if expected == "too_many_labels" else "unknown_label")
        assert stored == {} and len(review.skipped) == 1 and len(imported.skipped) == 1
        said = review.skipped[0].removeprefix(f"{reviewed}:2: corrected_label ")
        assert said == imported.skipped[0].removeprefix(f"{old}:2: column 'c{n}': ")  # the same reason, word for word
        problem = fed.json()["error"]["message"].removeprefix("label: ")
        if expected == "too_many_labels":  # a client cannot raise parse.max_labels: its own fix
            assert problem.endswith("give at most 2") and said.endswith("keep at most 2 or raise parse.max_labels")
            assert problem.split(" allows")[0] == said.split(" allows")[0] == "'care;équité;loyalty' has 3 labels, more than parse.max_labels 2"
        else:
            assert problem == said
    else:
        assert fed.status_code == 200 and fed.json()["label"] == expected, fed.text
        assert stored == {f"human:rv{n}": expected, f"import:c{n}": expected}, (review.skipped, imported.skipped)
