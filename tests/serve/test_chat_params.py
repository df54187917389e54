"""/v1/chat/completions beyond one plain answer, through the openai SDK against a real server:
``n`` choices, ``logprobs`` that graduate's own parser reads back as the student's probabilities,
streaming of several choices, and tools refused (a student calls none) unless the teacher may take
them."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from graduate.formats.logprobs import answer_distribution
from graduate.pipeline.project import Project
from graduate.serve.app import create_app
from graduate.serve.chat import answer_logprobs, answerer
from graduate.spec import TaskSpec
from servers.graduate_server import AUTH, KEY, ThreadServer, comments, options, prompt_messages

TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]


def test_n_choices_and_logprobs_through_the_openai_sdk_read_back_as_the_students_probabilities(served):
    import openai

    proj = Project.load(served)
    texts = comments(served, 6)
    with ThreadServer(create_app(proj, options(proj))) as server:
        probs = httpx.post(f"{server.url}/v1/classify", headers=AUTH, json={"texts": texts}, timeout=30).json()["results"]
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
        for text, expected in zip(texts, probs):
            reply = client.chat.completions.create(model="gpt-4-1106-preview", messages=prompt_messages(proj, text), n=3, logprobs=True, top_logprobs=2)
            assert [c.index for c in reply.choices] == [0, 1, 2]
            contents = {c.message.content for c in reply.choices}
            assert contents == {'{"is_bad": 1}' if expected["label"] == "bad" else '{"is_bad": 0}'}
            tokens = reply.choices[0].logprobs.content
            assert "".join(t.token for t in tokens) == reply.choices[0].message.content
            dist = answer_distribution(reply.model_dump(), proj.spec.task.parse, ["ok", "bad"])
            assert dist is not None and abs(dist["bad"] - expected["probs"]["bad"]) < 1e-6
            assert reply.usage.completion_tokens == 3 * client.chat.completions.create(model="m", messages=prompt_messages(proj, text)).usage.completion_tokens
        plain = client.chat.completions.create(model="gpt-4-1106-preview", messages=prompt_messages(proj, texts[0]))
        assert len(plain.choices) == 1 and plain.choices[0].logprobs is None
        # a stream of two choices: each choice's content once, then [DONE]
        stream = client.chat.completions.create(model="gpt-4-1106-preview", messages=prompt_messages(proj, texts[0]), n=2, stream=True)
        got: dict[int, str] = {}
        for chunk in stream:
            for c in chunk.choices:
                got[c.index] = got.get(c.index, "") + (c.delta.content or "")
        assert got == {0: plain.choices[0].message.content, 1: plain.choices[0].message.content}


def test_tools_and_out_of_range_params_are_refused_naming_the_param(served):
    proj = Project.load(served)
    msgs = prompt_messages(proj, "you are a fool")
    with ThreadServer(create_app(proj, options(proj))) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        r = client.post("/v1/chat/completions", json={"model": "m", "messages": msgs, "tools": TOOLS})
        assert r.status_code == 422 and r.json()["error"]["code"] == "unsupported_parameter" and r.json()["error"]["param"] == "tools"
        assert "serve.fallback_to_teacher" in r.json()["error"]["message"]
        assert client.post("/v1/chat/completions", json={"model": "m", "messages": msgs, "tools": TOOLS, "tool_choice": "none"}).status_code == 200
        for bad in ({"n": 0}, {"n": 129}, {"top_logprobs": 21}, {"n": "two"}):
            r = client.post("/v1/chat/completions", json={"model": "m", "messages": msgs, **bad})
            assert r.status_code == 422 and next(iter(bad)) in r.text, (bad, r.text)


LABEL_SETS = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8), min_size=2, max_size=5, unique=True)


@settings(max_examples=60, deadline=None)
@given(labels=LABEL_SETS, raw=st.lists(st.floats(0, 1), min_size=5, max_size=5), top=st.integers(0, 6), kind=st.sampled_from(["json_key", "label_words"]))
# one label's whole answer is the start of another's ("_" of "_a"): the whole answer wins (CI, session 23)
@example(labels=["_", "_a"], raw=[0.0, 1.0, 0.0, 0.0, 0.0], top=2, kind="label_words")
@example(labels=["_", "__"], raw=[0.0, 0.0, 0.0, 0.0, 0.0], top=0, kind="label_words")
def test_answer_logprobs_read_back_as_the_probabilities_they_were_made_from(labels, raw, top, kind):
    parse = {"kind": "json_key", "key": "label", "values": {f"v{i}": lab for i, lab in enumerate(labels)}} if kind == "json_key" else {"kind": "label_words"}
    task = TaskSpec.model_validate({"name": "t", "labels": labels, "parse": parse})
    weights = np.asarray(raw[: len(labels)]) + 1e-3
    probs = dict(zip(labels, (weights / weights.sum()).tolist()))
    answer_for = answerer(task)
    chosen = max(probs, key=probs.get)
    lp = answer_logprobs(task, answer_for, chosen, probs, top)
    response = {"choices": [{"message": {"content": answer_for(chosen)}, "logprobs": json.loads(json.dumps(lp))}]}
    assert "".join(t["token"] for t in lp["content"]) == answer_for(chosen)
    dist = answer_distribution(response, task.parse, labels)
    assert dist is not None
    kept = {lab for lab in labels if dist.get(lab, 0) > 0}
    assert chosen in kept and len(kept) == min(len(labels), max(1, top))
    # the alternatives kept, renormalised, are the student's probabilities
    total = sum(probs[lab] for lab in kept)
    for lab in kept:
        assert dist[lab] == pytest.approx(probs[lab] / total, rel=1e-6)


LABEL_WORDS = st.lists(st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_categories=("Cs", "Cc")), min_size=1, max_size=8).filter(lambda w: w.strip() == w and w and ";" not in w and w != "(none)"), min_size=2, max_size=6, unique_by=lambda w: w.strip().lower())


@settings(max_examples=150, deadline=None)
@given(labels=LABEL_WORDS, raw=st.lists(st.floats(0, 1) | st.sampled_from([0.0, 1.0, 1e-300]), min_size=6, max_size=6), picks=st.lists(st.booleans(), min_size=6, max_size=6),
       top=st.integers(0, 6), key=st.none() | st.sampled_from(["tags", "é \"x\""]))  # fmt: skip
def test_label_set_logprobs_read_back_as_each_labels_probability(labels, raw, picks, top, key):
    from graduate.formats import answer_format, labelset
    from graduate.serve.chat import label_set_logprobs

    parse = {"kind": "json_booleans", **({"key": key} if key is not None else {})}
    task = TaskSpec.model_validate({"name": "t", "kind": "multi_label", "labels": labels, "parse": parse})
    if top < 2:  # one alternative, the value answered: it needs some probability to be read
        raw = [min(max(p, 1e-6), 1 - 1e-6) for p in raw]
    probs = dict(zip(labels, raw))
    label = labelset.encode([lab for lab, pick in zip(labels, picks) if pick], labels)
    fmt = answer_format(task.parse, labels)
    lp = label_set_logprobs(task, label, probs, top)
    assert lp is not None
    content = answerer(task)(label)
    assert "".join(t["token"] for t in lp["content"]) == content
    tokens = json.loads(json.dumps(lp))["content"]
    assert fmt.parse(content).label == label
    back = fmt.label_probabilities(tokens)
    assert back is not None
    chosen = labelset.decode(label, labels)
    for lab in labels:
        assert back[lab] == (pytest.approx(probs[lab], rel=1e-6, abs=1e-12) if top >= 2 else float(lab in chosen)), lab


def test_label_set_logprobs_are_none_where_a_labels_absence_is_no_token():
    from graduate.serve.chat import label_set_logprobs

    task = TaskSpec.model_validate({"name": "t", "kind": "multi_label", "labels": ["a", "b"], "parse": {"kind": "label_list"}})
    assert label_set_logprobs(task, "a", {"a": 0.9, "b": 0.1}, 2) is None
