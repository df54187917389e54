"""Soft labels from logprobs, on responses shaped exactly as llama.cpp's server and OpenAI return them."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from graduate.spec import ParseSpec
from graduate.teacher.soft_labels import answer_distribution

LABELS = ["ok", "bad"]
JSON_KEY = ParseSpec(kind="json_key", key="is_bad", values={"0": "ok", "1": "bad"})


def response(tokens: list[tuple[str, float, dict[str, float]]]) -> dict:
    """A chat completion body whose answer is the tokens, each with its top alternatives."""
    return {
        "choices": [
            {
                "message": {"role": "assistant", "content": "".join(t for t, _, _ in tokens)},
                "logprobs": {
                    "content": [
                        {"token": t, "logprob": lp, "top_logprobs": [{"token": a, "logprob": alp} for a, alp in alts.items()]}
                        for t, lp, alts in tokens
                    ]
                },
            }
        ]
    }


def test_json_answer_token_gives_the_distribution():
    # As Qwen answers through llama.cpp: '{"', 'is', '_bad', '":', ' ', '1', '}'
    body = response(
        [
            ('{"', -0.01, {}),
            ("is", -0.01, {}),
            ("_bad", -0.01, {}),
            ('":', -0.01, {}),
            (" ", -0.02, {}),
            ("1", math.log(0.7), {"1": math.log(0.7), "0": math.log(0.2), "2": math.log(0.05)}),
            ("}", -0.01, {}),
        ]
    )
    probs = answer_distribution(body, JSON_KEY, LABELS)
    assert probs is not None
    assert math.isclose(probs["bad"], 0.7 / 0.9) and math.isclose(probs["ok"], 0.2 / 0.9)


def test_answer_token_that_also_holds_syntax():
    # OpenAI tokenizers often merge ': 0' into one token; alternatives share the prefix.
    body = response([('{"is_bad"', -0.01, {}), (": 0", math.log(0.6), {": 0": math.log(0.6), ": 1": math.log(0.3), ":0": math.log(0.1)}), ("}", 0.0, {})])
    probs = answer_distribution(body, JSON_KEY, LABELS)
    assert probs is not None
    assert math.isclose(probs["ok"], 0.7) and math.isclose(probs["bad"], 0.3)  # ':0' counts for ok too


def test_label_words_fold_case_and_partial_tokens():
    spec = ParseSpec(kind="label_words", words={"ok": ["clean"], "bad": ["toxic"]})
    body = response([("The comment is", -0.1, {}), (" tox", math.log(0.55), {" tox": math.log(0.55), " clean": math.log(0.4), " Clean": math.log(0.05)}), ("ic", -0.01, {})])
    probs = answer_distribution(body, spec, LABELS)
    assert probs is not None
    assert math.isclose(probs["bad"], 0.55) and math.isclose(probs["ok"], 0.45)


def test_a_label_that_spells_the_start_of_another_counts_only_when_the_token_held_a_whole_answer():
    spec = ParseSpec(kind="label_words")
    labels = ["ok", "okay", "bad"]
    # "okay" split as "ok" + "ay": the chosen "ok" is the start of the answer, not the label ok
    split = response([("ok", -0.05, {"ok": -0.05, " okay": -4.0, "bad": -3.0}), ("ay", -0.01, {})])
    probs = answer_distribution(split, spec, labels)
    assert probs is not None and probs["ok"] == 0.0
    assert math.isclose(probs["okay"], math.exp(-4.0) / (math.exp(-4.0) + math.exp(-3.0)))
    # "okay" in one token: the alternative "ok" is the whole answer ok
    whole = response([("okay", math.log(0.6), {"okay": math.log(0.6), "ok": math.log(0.3), "bad": math.log(0.1)})])
    probs = answer_distribution(whole, spec, labels)
    assert probs is not None and math.isclose(probs["ok"], 0.3) and math.isclose(probs["okay"], 0.6)


def test_no_logprobs_or_no_answer_gives_none():
    assert answer_distribution({"choices": [{"message": {"content": '{"is_bad": 1}'}}]}, JSON_KEY, LABELS) is None
    assert answer_distribution(None, JSON_KEY, LABELS) is None
    assert answer_distribution(response([("I cannot answer", -0.1, {})]), JSON_KEY, LABELS) is None


@given(p=st.floats(0.01, 0.99), chosen=st.sampled_from(["0", "1"]))
def test_distribution_is_normalised_and_the_chosen_label_is_covered(p: float, chosen: str) -> None:
    other = "1" if chosen == "0" else "0"
    body = response([('{"is_bad": ', -0.01, {}), (chosen, math.log(p), {chosen: math.log(p), other: math.log(1 - p) - 1.0}), ("}", 0.0, {})])
    probs = answer_distribution(body, JSON_KEY, LABELS)
    assert probs is not None
    assert math.isclose(sum(probs.values()), 1.0)
    assert probs[JSON_KEY.values[chosen]] > 0


def test_logprobs_that_are_not_probabilities_are_skipped_not_crashed_on():
    # fp16 overflow in a server gives NaN (the JSON word NaN, which json.loads reads); a broken one
    # anything: NaN spread into every soft label, 1000 overflowed exp, a string or a list raised.
    for bad in (float("nan"), "x", [1], None, True):
        body = response([('{"is_bad": ', -0.01, {}), ("1", math.log(0.7), {"1": math.log(0.7), "0": bad}), ("}", -0.01, {})])
        assert answer_distribution(body, JSON_KEY, LABELS) == {"ok": 0.0, "bad": 1.0}, bad
    body = response([('{"is_bad": ', -0.01, {}), ("1", 1000.0, {"1": 1000.0, "0": math.log(0.25)}), ("}", -0.01, {})])
    assert answer_distribution(body, JSON_KEY, LABELS) == {"ok": 0.2, "bad": 0.8}  # above 0: capped at probability 1
    body = response([('{"is_bad": ', -0.01, {}), ("1", float("nan"), {"1": float("nan"), "0": float("nan")}), ("}", -0.01, {})])
    assert answer_distribution(body, JSON_KEY, LABELS) is None  # nothing to read


def test_json_booleans_skip_a_nan_logprob():
    spec = ParseSpec(kind="json_booleans")
    body = response([('{"ok": ', 0.0, {}), ("true", math.log(0.6), {"true": math.log(0.6), "false": float("nan")}), (', "bad": ', 0.0, {}), ("false", 1000.0, {"false": 1000.0, "true": math.log(0.25)}), ("}", 0.0, {})])
    probs = answer_distribution(body, spec, LABELS)
    assert probs == {"ok": 1.0, "bad": 0.2}
