"""Model files for the local teacher: joining packaged parts once with the sha256 checked, and
refusing non-GGUF or truncated files with a clear error before any server starts."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from graduate.errors import LocalTeacherError
from graduate.models import gguf as local_models
from graduate.models.gguf import MODELS, PackagedModel, check_gguf, ensure_joined, resolve_model
from graduate.teacher.local_server import LocalServer


def make_parts(root: Path, dist: str, chunks: list[bytes]) -> None:
    """Part packages laid out as the real ones install: <module>/data/partNN.bin."""
    for i, chunk in enumerate(chunks, 1):
        data = root / f"{dist.replace('-', '_')}{i}" / "data"
        data.mkdir(parents=True)
        (data.parent / "__init__.py").write_text("")
        (data / f"part{i:02d}.bin").write_bytes(chunk)


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PackagedModel:
    chunks = [b"GGUF" + os.urandom(1000), os.urandom(1000), os.urandom(17)]
    blob = b"".join(chunks)
    make_parts(tmp_path / "site", "graduate-test-model-part", chunks)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("GRADUATE_CACHE", str(tmp_path / "cache"))
    return PackagedModel(
        name="test-model",
        description="three parts",
        filename="test-model.gguf",
        distribution="graduate-test-model-part",
        version="1.0",
        parts=3,
        sha256=hashlib.sha256(blob).hexdigest(),
        size=len(blob),
        extra="local-test",
    )


def test_parts_are_joined_once_and_verified(fake_model: PackagedModel, tmp_path: Path) -> None:
    path = ensure_joined(fake_model)
    assert path == tmp_path / "cache" / "models" / "test-model.gguf"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fake_model.sha256
    mtime = path.stat().st_mtime_ns
    assert ensure_joined(fake_model) == path and path.stat().st_mtime_ns == mtime  # not joined again
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part")]

    # A joined file damaged in the cache is detected (the stamp no longer matches) and re-joined.
    with path.open("r+b") as f:
        f.seek(10)
        f.write(b"XXXX")
    assert hashlib.sha256(ensure_joined(fake_model).read_bytes()).hexdigest() == fake_model.sha256


def test_wrong_parts_are_a_clear_error(fake_model: PackagedModel, tmp_path: Path) -> None:
    bad_sha = PackagedModel(**{**fake_model.__dict__, "sha256": "0" * 64})
    with pytest.raises(LocalTeacherError, match=r"sha256 of the joined parts is .* expected 0{64}.*force-reinstall"):
        ensure_joined(bad_sha)
    truncated = PackagedModel(**{**fake_model.__dict__, "size": fake_model.size + 5})
    with pytest.raises(LocalTeacherError, match=r"installed parts hold 2021 bytes, expected 2026"):
        ensure_joined(truncated)
    missing = PackagedModel(**{**fake_model.__dict__, "parts": 4})
    with pytest.raises(LocalTeacherError, match=r"not installed \(1 of 4 parts missing, e.g. graduate-test-model-part4==1.0\); run `pip install 'graduate\[local-test\]'`"):
        ensure_joined(missing)
    assert not (tmp_path / "cache" / "models" / "test-model.gguf").exists()


def test_paths_must_be_complete_gguf_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    with pytest.raises(LocalTeacherError, match=r"notes.txt: not a GGUF model \(starts with b'not '"):
        resolve_model(str(text))
    with pytest.raises(LocalTeacherError, match=r"neither a packaged model \(qwen2.5-0.5b, qwen2.5-coder-1.5b\) nor an existing GGUF file"):
        resolve_model(str(tmp_path / "missing.gguf"))
    with pytest.raises(LocalTeacherError, match="is a directory"):
        check_gguf(tmp_path)


def test_truncated_gguf_is_a_clear_error_not_a_loader_crash(tmp_path: Path) -> None:
    # The real 0.5B model (installed by `make test`), cut short: the header reads, the tensors do not fit.
    real = resolve_model("qwen2.5-0.5b")
    cut = tmp_path / "cut.gguf"
    with real.open("rb") as src, cut.open("wb") as dst:
        dst.write(src.read(50_000_000))
    server = LocalServer(resolve_model(str(cut)), alias="cut", startup_timeout_s=120)
    with pytest.raises(
        LocalTeacherError,
        match=r"server for cut.gguf exited with code \d+ while starting: llama_model_load: error loading model: "
        r"tensor '[\w.]+' data is not within the file bounds, model is corrupted or incomplete \(full log: ",
    ):
        server.start()
    assert not server.running()


def test_packaged_models_name_their_install_command() -> None:
    assert set(MODELS) == {"qwen2.5-coder-1.5b", "qwen2.5-0.5b"}
    assert MODELS[local_models.DEFAULT_MODEL].pip_install() == "pip install 'graduate[local-coder]'"
    assert [len(m.part_names()) for m in MODELS.values()] == [22, 6]
