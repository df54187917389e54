"""Answer formats by ``task.parse.kind``: one line each (see ``graduate.formats.base``)."""

from __future__ import annotations

from typing import Callable

from graduate.formats.base import AnswerFormat
from graduate.formats.json_key import JsonKeyFormat
from graduate.formats.label_words import LabelWordsFormat
from graduate.formats.multi_label import MultiLabelFormat
from graduate.formats.regex import RegexFormat
from graduate.spec import ParseSpec

FORMATS: dict[str, Callable[[ParseSpec, list[str]], AnswerFormat]] = {
    "json_key": JsonKeyFormat,
    "regex": RegexFormat,
    "label_words": LabelWordsFormat,
    "label_list": MultiLabelFormat,
    "json_list": MultiLabelFormat,
    "json_booleans": MultiLabelFormat,
}


def answer_format(spec: ParseSpec, labels: list[str]) -> AnswerFormat:
    return FORMATS[spec.kind](spec, labels)
