"""What a budget reserves for a prompt is never below what it may cost: at most a token per UTF-8
byte, in any script, and never below the rule-of-thumb estimate."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from graduate.formats.tokens import estimate_prompt_tokens, most_prompt_tokens

messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["system", "user"]), "content": st.text(max_size=200)}), min_size=1, max_size=3)


@given(messages)
def test_the_most_tokens_bound_every_byte_level_count(msgs: list[dict[str, str]]) -> None:
    most = most_prompt_tokens(msgs)
    assert most >= estimate_prompt_tokens(msgs)
    # A byte-level tokenizer's worst case: every byte a token, plus the chat format's overhead.
    assert most == 3 + sum(3 + len(m["content"].encode("utf-8", "surrogatepass")) for m in msgs)


def test_a_chinese_prompt_is_reserved_beyond_the_four_characters_rule() -> None:
    msgs = [{"role": "user", "content": "这是一个评论" * 50}]  # 300 characters, about 300 tokens
    assert estimate_prompt_tokens(msgs) < 100 < 300 < most_prompt_tokens(msgs)
