"""A text holding a lone UTF-16 surrogate (a Python string may, UTF-8 may not) is refused in one
line naming the item, before anything is keyed, stored or sent; never a UnicodeEncodeError."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import fake_openai_server
from teacher.live_teacher import point_teacher

from graduate.errors import InputDataError
from graduate.pipeline.project import Project

FIXTURES = Path(__file__).parents[1] / "fixtures"
surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, object]]:
    dst = tmp_path_factory.mktemp("surrogates") / "tiny"
    shutil.copytree(FIXTURES / "tiny", dst, ignore=shutil.ignore_patterns(".graduate"))
    with fake_openai_server() as server:
        point_teacher(dst, server.base_url)
        yield Project.load(dst), server


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    before=st.lists(st.text(st.characters(blacklist_categories=["Cs"]), max_size=20), max_size=3),
    head=st.text(st.characters(blacklist_categories=["Cs"]), max_size=10),
    bad=surrogates,
    tail=st.text(max_size=10),
)
def test_a_lone_surrogate_is_one_line_naming_the_item(served, before: list[str], head: str, bad: str, tail: str) -> None:
    project, server = served
    with pytest.raises(InputDataError) as caught:
        project.label([*before, head + bad + tail])
    message = str(caught.value)
    assert message.startswith(f"texts[{len(before)}]: holds a lone UTF-16 surrogate ({ascii(bad)} at character {len(head)})"), message
    assert "\n" not in message and "replace it" in message
    assert server.stats()["requests"] == 0


@pytest.mark.parametrize("item", [None, 3, b"bytes"])
def test_an_item_that_is_no_string_is_one_line_naming_it(served, item: object) -> None:
    project, server = served
    with pytest.raises(InputDataError) as caught:
        project.label(["fine", item])  # type: ignore[list-item]
    assert str(caught.value) == f"texts[1]: is {type(item).__name__}, not text, so nothing was sent; pass strings (e.g. str(value))"
    assert server.stats()["requests"] == 0
