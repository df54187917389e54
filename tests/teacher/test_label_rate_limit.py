"""Issue 12, defect 4: a client set to exactly the provider's requests-per-minute must use nearly
all of it without 429s, even when the provider enforces its limit per second and counts refused
requests (retries that skipped the limiter made a 600 rpm client get 47.6% 429s)."""

from __future__ import annotations

from pathlib import Path

from servers import fake_openai_server
from teacher.live_teacher import comments, point_teacher

from graduate.pipeline.project import Project

RPM = 600
N = 120


def test_client_at_the_providers_limit_gets_no_429s(tiny_project: Path) -> None:
    texts = comments(tiny_project, N)
    # 10 requests per sliding second, refused requests counted: the strictest common enforcement.
    with fake_openai_server(rpm=RPM, window_s=1.0, count_refused=True, latency=0.05, jitter=0.05, seed=3) as server:
        point_teacher(tiny_project, server.base_url, concurrency=32, requests_per_minute=RPM, tokens_per_minute=10_000_000, max_retries=6)
        _, stats = Project.load(tiny_project).label(texts)
        served = server.stats()

    assert (stats.sent, stats.failed, stats.not_sent) == (N, 0, 0), stats.errors
    # at most a few stray 429s (2.5%; the defect refused 47.6%): a send that a loaded machine delays by
    # a few tens of milliseconds puts 11 arrivals in one sliding second
    assert served["status_429_rpm"] <= 3, served
    rate = (served["ok"] - 1) / (served["last_ok_at"] - served["first_ok_at"]) * 60
    assert rate >= 0.85 * RPM, f"{rate:.0f} rpm of {RPM}"  # the benchmark measures >= 95% on an idle machine


def test_a_429_pauses_every_request_and_retries_wait_for_the_limiter(tiny_project: Path) -> None:
    texts = comments(tiny_project, 40)
    # Every 429 asks for 1 s; with a per-second window the client must never pile retries on top.
    with fake_openai_server(p429=0.1, retry_after=1.0, rpm=RPM, window_s=1.0, count_refused=True, seed=11) as server:
        point_teacher(tiny_project, server.base_url, concurrency=32, requests_per_minute=RPM, tokens_per_minute=10_000_000, max_retries=8)
        _, stats = Project.load(tiny_project).label(texts)
        served = server.stats()
    assert (stats.sent, stats.failed) == (40, 0), stats.errors
    assert served["status_429"] >= 2, served  # injected ones were met ...
    # ... and their retries never piled onto the real limit (one stray 429 allowed: a loaded machine
    # delays a send by the few tens of milliseconds that put 11 arrivals in one sliding second)
    assert served["status_429_rpm"] <= 1, served


def test_tokens_per_minute_counts_a_chinese_character_as_a_token_and_english_is_not_slowed(tiny_project: Path) -> None:
    """The limiter estimated 4 characters a token in any script: 8 Chinese prompts of ~280 tokens
    each were counted as ~140 and sent at once, past a 6,000 tokens-a-minute limit (its 10-second
    bucket holds 970). Counted a token a character they wait for the bucket; English ones of the
    same length fit it and go at once."""
    chinese = [f"{i} " + "这是一个非常长的评论，" * 20 for i in range(8)]  # 200 characters, ~200 tokens
    english = [f"{i} " + "this is a rather long comment " * 7 for i in range(8)]  # 212 characters, ~53 tokens
    spans = {}
    for name, texts in (("english", english), ("chinese", chinese)):
        with fake_openai_server() as server:
            point_teacher(tiny_project, server.base_url, concurrency=8, requests_per_minute=60_000, tokens_per_minute=6_000, max_tokens=5)
            _, stats = Project.load(tiny_project).label(texts)
            served = server.stats()
        assert (stats.sent, stats.failed) == (8, 0), stats.errors
        spans[name] = served["last_ok_at"] - served["first_ok_at"]
    assert spans["english"] < 2.0 and spans["chinese"] > 4.0, spans
