"""The PostgreSQL work lock's key per schema (no server needed): any schema name gives an int4,
never public's key unless it is public, and the same name always the same key."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from graduate.store.advisory import WORK, work_key


@given(st.text(min_size=1, max_size=63))
def test_any_schema_name_gets_a_stable_int4_key_of_its_own(schema: str) -> None:
    key = work_key(schema)
    assert -(2**31) <= key < 2**31 and key == work_key(schema)
    assert (key == WORK) == (schema == "public")


def test_public_and_no_schema_keep_the_key_stores_used_before() -> None:
    assert work_key("public") == work_key(None) == WORK == 1
    assert work_key("team_a") != work_key("team_b")


@given(st.text(max_size=80))
def test_a_holder_name_is_what_postgres_keeps_and_reads_back_as_written(step: str) -> None:
    """PostgreSQL keeps only printable ASCII of an application_name, at most 63 bytes: the name is
    that, and decodes to a prefix of what the holder wrote, cut between whole characters only."""
    import os
    import socket

    from graduate.store.advisory import APP_NAME_MAX, holder_name, holder_text

    name = holder_name(step)
    assert len(name) <= APP_NAME_MAX and all(" " <= c <= "~" for c in name), name
    written = f"graduate pid {os.getpid()} on {socket.gethostname()}: {step}"
    assert written.startswith(holder_text(name)), (name, written)
    assert len(holder_text(name)) >= min(len(written), 20)  # pid and host come first and survive
