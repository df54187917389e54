"""Serving form of a fine-tuned encoder: ONNX export, int8 dynamic quantisation (ONNX Runtime),
and the check that the quantised model still predicts what the float model does."""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from graduate.errors import StudentError


@dataclass
class QuantisationCheck:
    items: int
    label_agreement: float
    max_prob_diff: float
    min_agreement: float
    accepted: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_onnx(model: Any, input_names: list[str], kind: str) -> bytes:
    """The model (a transformers sequence classifier, eval mode) as ONNX bytes with dynamic batch and length."""
    import torch

    model.eval()
    if hasattr(model, "set_attn_implementation"):
        # Eager attention exports as plain MatMul/Softmax, which ONNX Runtime runs ~10% faster on
        # short texts than the masking ops the SDPA path exports to (same outputs; the encoder's
        # export check compares them with the PyTorch model's).
        try:
            model.set_attn_implementation("eager")
        except (ValueError, ImportError):  # a model without an eager path keeps its own
            pass
    dummy = {name: torch.ones((2, 16), dtype=torch.long) for name in input_names}
    axes = {name: {0: "batch", 1: "length"} for name in input_names}
    axes["logits"] = {0: "batch"}
    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        # The tracer warns about shape-dependent Python branches in transformers' masking code;
        # the axes that matter (batch, length) are declared dynamic and checked by the agreement test.
        warnings.simplefilter("ignore")
        path = Path(d) / "model.onnx"
        try:
            # The TorchScript exporter: no onnxscript dependency, and stable for BERT-style encoders.
            torch.onnx.export(
                model,
                (dict(dummy),),
                str(path),
                input_names=input_names,
                output_names=["logits"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        except Exception as exc:  # torch raises many types here; the message is what matters
            raise StudentError(
                f"ONNX export failed ({type(exc).__name__}: {exc}); this base model's architecture does not export: "
                "pick another params.base_model (BERT-style encoders export)",
                kind=kind,
            ) from None
        return path.read_bytes()


def quantise_int8(onnx_bytes: bytes) -> bytes:
    """Dynamic int8 quantisation of the weights (activations quantised at run time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "fp32.onnx", Path(d) / "int8.onnx"
        src.write_bytes(onnx_bytes)
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True)
        return dst.read_bytes()


def session(onnx_bytes: bytes, threads: int | None = None, *, spin: bool = True) -> Any:
    """An ONNX Runtime CPU session with ``threads`` intra-op threads; ``spin=False``: idle threads
    sleep instead of spinning (for a session that shares the cores with others)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(onnx_bytes, sess_options=opts, providers=["CPUExecutionProvider"])


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def check_agreement(float_probs: np.ndarray, quant_probs: np.ndarray, min_agreement: float, *, multi_label: bool = False) -> QuantisationCheck:
    """Share of texts given the same label (multi-label: the same set at 0.5 per label) by both models."""
    if multi_label:
        agree = float(np.mean(((float_probs >= 0.5) == (quant_probs >= 0.5)).all(axis=1))) if len(float_probs) else 1.0
    else:
        agree = float(np.mean(float_probs.argmax(axis=1) == quant_probs.argmax(axis=1))) if len(float_probs) else 1.0
    diff = float(np.abs(float_probs - quant_probs).max()) if len(float_probs) else 0.0
    return QuantisationCheck(len(float_probs), agree, diff, min_agreement, agree >= min_agreement)


def batches_by_length(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (less padding), in length order."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
