"""Soft labels from the answer token's logprobs: see ``graduate.formats.logprobs`` (the reading
depends only on the task's answer format)."""

from graduate.formats.logprobs import answer_distribution, answer_tokens

__all__ = ["answer_distribution", "answer_tokens"]
