"""What a budget reserves for a prompt is never below what it may cost: at most a token per UTF-8
byte, in any script, and never below the rule-of-thumb estimate."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from graduate.formats.tokens import estimate_prompt_tokens, estimate_text_tokens, most_prompt_tokens

messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["system", "user"]), "content": st.text(max_size=200)}), min_size=1, max_size=3)


@given(messages)
def test_the_most_tokens_bound_every_byte_level_count(msgs: list[dict[str, str]]) -> None:
    most = most_prompt_tokens(msgs)
    assert most >= estimate_prompt_tokens(msgs)
    # A byte-level tokenizer's worst case: every byte a token, plus the chat format's overhead.
    assert most == 3 + sum(3 + len(m["content"].encode("utf-8", "surrogatepass")) for m in msgs)


def test_a_chinese_prompt_is_reserved_beyond_the_four_characters_rule() -> None:
    msgs = [{"role": "user", "content": "这是一个评论" * 50}]  # 300 characters, about 300 tokens
    assert 300 <= estimate_prompt_tokens(msgs) < 320 < most_prompt_tokens(msgs)


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=400), st.text(alphabet=st.characters(min_codepoint=128), max_size=100))
def test_ascii_keeps_the_four_characters_rule_and_other_scripts_count_a_token_a_character(ascii_text: str, other: str) -> None:
    """The estimate counted 4 characters a token in any script, a quarter of a Chinese text's
    tokens (the tokens_per_minute limiter sent about 4 times the limit); English must not be slowed."""
    assert estimate_text_tokens(ascii_text) == (max(1, math.ceil(len(ascii_text) / 4)) if ascii_text else 0)
    assert estimate_text_tokens(ascii_text + other) == (max(1, math.ceil(len(ascii_text) / 4) + len(other)) if ascii_text + other else 0)
