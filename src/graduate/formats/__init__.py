"""Task answer formats: parse, locate, render (see ``graduate.formats.base``)."""

from graduate.formats.base import AnswerFormat, ParsedAnswer
from graduate.formats.registry import FORMATS, answer_format

__all__ = ["AnswerFormat", "FORMATS", "ParsedAnswer", "answer_format"]
