"""Fine-tune a transformer encoder with a classification head (MiniLM-L6 by default), then serve it
as int8 ONNX.

Training is a short plain PyTorch loop over transformers' ``AutoModelForSequenceClassification``:
AdamW with linear warm-up/decay, batches of similar length, hard labels (cross-entropy) or the
teacher's label distributions where the dataset has them (soft cross-entropy, i.e. KL to the
teacher up to a constant, mixed with the hard loss by ``soft_weight``; multi-label: binary
cross-entropy per label against the teacher's per-label probability mixed with the hard 0/1 the
same way; with ``head: softmax`` one softmax over the labels and "none" instead, an item with k
labels a target of 1/k on each, the labels' columns thresholded). After training the model is
exported to ONNX and quantised to int8 with ONNX Runtime; the int8 model serves only if its labels
agree with the float model's on ``agreement_items`` texts at least ``min_agreement`` of the time,
else the float ONNX serves. The check is stored in ``student.json`` (``quantisation``).

Serving tokenises once, groups texts of similar length into small batches and runs them on
parallel ONNX Runtime workers of one thread each: on short texts most of the time goes to small
ops (layer norm, GELU, softmax), which one session spreading each op over all cores does poorly.
Training autocasts to bf16 where the hardware computes it natively (GPUs, CPUs with AVX512-BF16/AMX:
about 1.6x faster than fp32 on 2 Sapphire Rapids cores); ``precision: fp32`` turns that off.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from graduate.errors import StudentError
from graduate.hardware import bf16_pays_off, cpu_count
from graduate.students import thresholds
from graduate.students.base import StudentBase, check_fit_input, params_with_defaults
from graduate.students.params import EncoderParams
from graduate.models.base_models import MINILM, encoder_dir
from graduate.students.training import StepProgress, optimise, total_steps
from graduate.students.onnx_export import batches_by_length, check_agreement, export_onnx, quantise_int8, session, softmax

AUTO_MIN_STEPS = 500
AUTO_EPOCHS = (2, 10)


def auto_epochs(items: int, batch_size: int) -> int:
    """Epochs for ``epochs: auto``: at least AUTO_MIN_STEPS steps, within AUTO_EPOCHS."""
    import math

    per_epoch = max(1, math.ceil(items / batch_size))
    return int(min(max(math.ceil(AUTO_MIN_STEPS / per_epoch), AUTO_EPOCHS[0]), AUTO_EPOCHS[1]))


class EncoderStudent(StudentBase):
    kind = "encoder"
    soft_labels = True  # fit accepts soft_labels (the teacher's label distributions)
    takes_multi_label = True  # params multi_label: a sigmoid per label, thresholds tuned on a held-out share
    Params = EncoderParams  # every param: type, default, meaning (graduate students show)
    DEFAULTS: dict[str, Any] = EncoderParams().model_dump()

    def __init__(self, labels: list[str], **params: Any):
        self.labels = list(labels)
        self.params = params_with_defaults(self.kind, params, self.DEFAULTS, self.Params)
        # Types and ranges (precision, device, epochs, soft_weight ...) are EncoderParams' to check.
        self.tokenizer: Any = None
        self.model: Any = None  # the float PyTorch model (after fit; not kept by load)
        self.onnx: bytes | None = None  # the serving model
        self.report: dict[str, Any] = {}
        self._session: Any = None
        self._session_one: Any = None  # a request that fits one batch: all the cores inside each op
        self.on_progress: StepProgress | None = None
        self.multi_label = bool(self.params["multi_label"])
        # head softmax (multi-label): one more output, "none", and a softmax over all of them
        self.softmax_head = self.multi_label and self.params["head"] == "softmax"
        self.thresholds: list[float] = [0.5] * len(self.labels)
        self.at_least_one = False

    def check_models(self) -> None:
        """The base model exists and has at least ``layers`` layers, and more than ``frozen_layers``
        of those kept (read from its config, nothing loaded)."""
        base = encoder_dir(self.params["base_model"], self.kind)
        layers, frozen = self.params["layers"], self.params["frozen_layers"]
        kept = _layer_count(base, layers, self.kind).get("num_hidden_layers") if layers is not None else _layer_total(base, self.kind)
        if frozen and kept is not None and frozen >= kept:
            raise StudentError(_too_many_frozen(frozen, kept), kind=self.kind)

    # -- training ------------------------------------------------------------------------------
    def _device(self) -> str:
        import torch

        want = self.params["device"]
        if want == "cuda" and not torch.cuda.is_available():
            raise StudentError("params.device is cuda but no GPU is visible; use auto or cpu", kind=self.kind)
        return "cuda" if want == "cuda" or (want == "auto" and torch.cuda.is_available()) else "cpu"

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        sample_weight: Sequence[float] | None = None,
        soft_labels: np.ndarray | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        p = self.params
        multi = self.multi_label
        if multi:
            y_sets = thresholds.training_sets(self.kind, texts, labels, self.labels)
            train_idx, val_idx = thresholds.split(len(texts), p["validation_share"], p["seed"])
            val_texts = [texts[i] for i in val_idx]
            texts = [texts[i] for i in train_idx]
            labels = [labels[i] for i in train_idx]
            sample_weight = None if sample_weight is None else [sample_weight[i] for i in train_idx]
            # the teacher's per-label probabilities (json_booleans logprobs): soft BCE targets
            soft_labels = None if soft_labels is None else np.asarray(soft_labels, dtype=np.float32)[train_idx]
        else:
            check_fit_input(self.kind, texts, labels, self.labels)
        base = encoder_dir(p["base_model"], self.kind)
        torch.manual_seed(p["seed"])
        rng = np.random.default_rng(p["seed"])
        device = self._device()
        bf16 = p["precision"] == "bf16" or (p["precision"] == "auto" and bf16_pays_off(device))
        self.tokenizer = AutoTokenizer.from_pretrained(base)
        outputs = self.labels + ([NONE_OUTPUT] if self.softmax_head else [])
        model = AutoModelForSequenceClassification.from_pretrained(
            base,
            **_layer_count(base, p["layers"], self.kind),
            num_labels=len(outputs),
            id2label=dict(enumerate(outputs)),
            label2id={lab: i for i, lab in enumerate(outputs)},
        ).to(device)
        trainable = _freeze(model, train_word_embeddings=p["train_word_embeddings"], frozen_layers=p["frozen_layers"], kind=self.kind)

        enc = self.tokenizer(list(texts), truncation=True, max_length=p["max_length"])
        ids = enc["input_ids"]
        y = torch.tensor(y_sets[train_idx], dtype=torch.float32) if multi else torch.tensor([self.labels.index(lab) for lab in labels])
        w = torch.ones(len(ids)) if sample_weight is None else torch.tensor(np.asarray(sample_weight, dtype=np.float32))
        soft = None
        if soft_labels is not None:
            soft_np = np.asarray(soft_labels, dtype=np.float32)
            if soft_np.shape != (len(ids), len(self.labels)):
                raise StudentError(f"soft_labels has shape {soft_np.shape}, expected {(len(ids), len(self.labels))}", kind=self.kind)
            missing = np.isnan(soft_np).any(axis=1)
            soft_np[missing] = y.numpy()[missing] if multi else np.eye(len(self.labels), dtype=np.float32)[y.numpy()[missing]]
            soft = torch.tensor(soft_np)
        if self.softmax_head:  # targets over the labels and "none": 1/k on each of an item's k labels
            y = _share_targets(y)
            soft = None if soft is None else _share_targets(soft)

        epochs = auto_epochs(len(ids), p["batch_size"]) if p["epochs"] == "auto" else p["epochs"]
        total = total_steps(len(ids), p["batch_size"], epochs, p["max_steps"])
        pad = self.tokenizer.pad_token_id or 0
        lengths = [len(x) for x in ids]

        def forward(rows: list[list[int]]) -> Any:
            inputs = _pad(rows, pad, device)
            if "token_type_ids" in enc:
                inputs["token_type_ids"] = torch.zeros_like(inputs["input_ids"])
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
                return model(**inputs).logits.float()

        pairing = _Pairing(list(texts), p, self.tokenizer, _pairable(labels, p["pairing_labels"], self.labels, multi)) if p["pairing_weight"] > 0 else None

        def batch_loss(batch: np.ndarray) -> Any:
            logits = forward([ids[i] for i in batch])
            return fit_loss(batch, logits) + (pairing.loss(batch, logits, forward, centred=not multi or self.softmax_head) if pairing else 0.0)

        def fit_loss(batch: np.ndarray, logits: Any) -> Any:
            bt = torch.as_tensor(batch)
            if multi:  # targets: 0/1 per label (a sigmoid each) or 1/k shares (softmax head); the teacher's probabilities mixed in
                target = y[bt].to(device)
                if soft is not None:
                    target = p["soft_weight"] * soft[bt].to(device) + (1 - p["soft_weight"]) * target
                if self.softmax_head:
                    per_item = -(target * torch.log_softmax(logits, dim=-1)).sum(-1)
                else:
                    per_item = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(-1)
            else:
                logp = torch.log_softmax(logits, dim=-1)
                per_item = -logp.gather(1, y[bt].to(device).unsqueeze(1)).squeeze(1)
                if soft is not None:
                    per_item = p["soft_weight"] * -(soft[bt].to(device) * logp).sum(-1) + (1 - p["soft_weight"]) * per_item
            wb = w[bt].to(device)
            return (per_item * wb).sum() / wb.sum()

        model.train()
        losses = optimise(
            trainable,
            total=total,
            learning_rate=p["learning_rate"],
            warmup_ratio=p["warmup_ratio"],
            weight_decay=p["weight_decay"],
            epoch_batches=lambda: self._train_batches(lengths, rng),
            batch_loss=batch_loss,
            on_progress=self.on_progress,
            kind=self.kind,
        )
        model.eval()
        self.model = model.to("cpu").float()
        self.report = {
            "base_model": str(p["base_model"]),
            "steps": total,
            "epochs": epochs,
            "epochs_chosen": f"auto: {epochs} epochs for {len(ids)} items (at least {AUTO_MIN_STEPS} steps, {AUTO_EPOCHS[0]}-{AUTO_EPOCHS[1]} epochs)"
            if p["epochs"] == "auto"
            else f"set: {epochs} epochs",
            "device": device,
            "precision": "bf16" if bf16 else "fp32",
            "final_loss": float(np.mean(losses[-20:])),
            "soft_labels": soft is not None,
            **({"head": p["head"]} if multi else {}),
            "trainable_parameters": sum(t.numel() for t in trainable),
        }
        if pairing:
            self.report["pairing"] = pairing.summary()
        self._make_serving(list(texts), rng)
        if multi:
            val_probs = self.predict_proba(val_texts)
            self.thresholds, self.at_least_one, decisions = thresholds.fit_decisions(y_sets, val_idx, val_probs, self.labels, max_labels=self.params["max_labels"])
            self.report["multi_label"] = {"train_items": len(train_idx), **decisions}

    def _train_batches(self, lengths: list[int], rng: np.random.Generator) -> list[np.ndarray]:
        """Shuffled batches of similar length: shuffle, sort within chunks of 50 batches, shuffle batches."""
        bs = self.params["batch_size"]
        order = rng.permutation(len(lengths))
        chunk = bs * 50
        batches = []
        for start in range(0, len(order), chunk):
            part = order[start : start + chunk]
            part = part[np.argsort([lengths[i] for i in part], kind="stable")]
            batches += [part[i : i + bs] for i in range(0, len(part), bs)]
        rng.shuffle(batches)  # type: ignore[arg-type]
        return batches

    def _make_serving(self, texts: list[str], rng: np.random.Generator) -> None:
        """Export to ONNX, check it against the PyTorch model, quantise, check int8 against float."""
        p = self.params
        sample = [texts[i] for i in rng.permutation(len(texts))[: p["agreement_items"]]]
        torch_probs = self._torch_proba(sample)
        float_onnx = export_onnx(self.model, self._input_names(), self.kind)
        self.onnx, self._session, self._session_one = float_onnx, None, None
        export = check_agreement(torch_probs, self.predict_proba(sample), 0.99, multi_label=self.multi_label)
        self.report["export_check"] = export.as_dict()
        if not export.accepted:
            raise StudentError(
                f"the ONNX export disagrees with the PyTorch model on {1 - export.label_agreement:.1%} of {export.items} texts; "
                "report this with the base model's name",
                kind=self.kind,
            )
        self.report["serving"] = "onnx-fp32"
        if not p["quantise"]:
            return
        self.onnx, self._session, self._session_one = quantise_int8(float_onnx), None, None
        check = check_agreement(torch_probs, self.predict_proba(sample), p["min_agreement"], multi_label=self.multi_label)
        self.report["quantisation"] = check.as_dict()
        if check.accepted:
            self.report["serving"] = "onnx-int8"
        else:
            self.onnx, self._session, self._session_one = float_onnx, None, None

    def _torch_proba(self, texts: list[str]) -> np.ndarray:
        import torch

        out = np.zeros((len(texts), len(self.labels)))
        ids = self.tokenizer(texts, truncation=True, max_length=self.params["max_length"])["input_ids"]
        with torch.no_grad():
            for batch in batches_by_length([len(x) for x in ids], self.params["predict_batch_size"]):
                inputs = _pad([ids[i] for i in batch], self.tokenizer.pad_token_id or 0, "cpu")
                out[batch] = self._probabilities(self.model(**inputs).logits.double().numpy())
        return out

    def _probabilities(self, logits: np.ndarray) -> np.ndarray:
        """The labels' probabilities from the model's outputs: a sigmoid each (multi-label, per_label),
        the labels' columns of a softmax over the labels and "none" (softmax head), or a softmax."""
        if self.softmax_head:
            return softmax(logits)[:, : len(self.labels)]
        return 1.0 / (1.0 + np.exp(-logits)) if self.multi_label else softmax(logits)

    def _input_names(self) -> list[str]:
        names = ["input_ids", "attention_mask"]
        if "token_type_ids" in self.tokenizer.model_input_names:
            names.append("token_type_ids")
        return names

    # -- serving -------------------------------------------------------------------------------
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.onnx is None or self.tokenizer is None:
            raise StudentError("not trained; call fit or load first", kind=self.kind)
        if self._session is None:
            self._session = session(self.onnx, 1)
        out = np.zeros((len(texts), len(self.labels)))
        if not len(texts):
            return out
        ids = token_ids(self.tokenizer, texts, self.params["max_length"])
        names = {i.name for i in self._session.get_inputs()}
        pad = self.tokenizer.pad_token_id or 0

        def run(batch: np.ndarray, sess: Any = None) -> None:
            width = max(len(ids[i]) for i in batch)
            input_ids = np.full((len(batch), width), pad, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for r, i in enumerate(batch):
                input_ids[r, : len(ids[i])] = ids[i]
                mask[r, : len(ids[i])] = 1
            feed = {"input_ids": input_ids, "attention_mask": mask}
            if "token_type_ids" in names:
                feed["token_type_ids"] = np.zeros_like(input_ids)
            logits = (sess or self._session).run(["logits"], feed)[0].astype(np.float64)
            out[batch] = self._probabilities(logits)

        batches = batches_by_length([len(x) for x in ids], self.params["predict_batch_size"])
        cores = self.params["threads"] or cpu_count()
        workers = min(len(batches), cores)
        if len(batches) == 1 and cores > 1:
            # One batch (a single item, the latency that serving sees): split each op over the cores
            # instead of leaving all but one idle; params.spin: idle threads spin-wait between ops
            # (lowest latency) or sleep (several server workers sharing the cores).
            if self._session_one is None:
                self._session_one = session(self.onnx, cores, spin=self.params["spin"])
            run(batches[0], self._session_one)
        elif workers <= 1:
            for batch in batches:
                run(batch)
        else:
            # ONNX Runtime releases the GIL in run(); one session serves concurrent calls.
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(run, batches))
        return out

    def save(self, directory: Path) -> None:
        if self.onnx is None:
            raise StudentError("not trained; nothing to save", kind=self.kind)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "model.onnx").write_bytes(self.onnx)
        self.tokenizer.save_pretrained(directory / "tokenizer")
        if self.model is not None and self.params["save_float"]:
            # The float weights, for further fine-tuning or another export (not needed to serve).
            self.model.save_pretrained(directory / "float")
        meta = {"labels": self.labels, "params": self.params, "report": self.report}
        if self.multi_label:
            meta.update(thresholds=self.thresholds, at_least_one=self.at_least_one)
        (directory / "student.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path) -> "EncoderStudent":
        from transformers import AutoTokenizer

        meta = json.loads((directory / "student.json").read_text())
        obj = cls(meta["labels"], **meta["params"])
        obj.report = meta.get("report", {})
        if obj.multi_label:
            obj.thresholds, obj.at_least_one = list(meta["thresholds"]), bool(meta["at_least_one"])
        obj.tokenizer = AutoTokenizer.from_pretrained(directory / "tokenizer")
        obj.onnx = (directory / "model.onnx").read_bytes()
        return obj


NONE_OUTPUT = "(none)"  # the softmax head's extra output: no label applies


def _share_targets(y: Any) -> Any:
    """Label sets (0/1) or the teacher's per-label probabilities as distributions over the labels
    and "none": "none" gets the chance that no label applies, prod(1 - p) (1 for an empty set, 0
    otherwise), and the labels share the rest in proportion to p (1/k on each of k labels)."""
    import torch

    none = torch.prod(1 - y, dim=-1, keepdim=True)
    total = y.sum(-1, keepdim=True)
    shares = torch.where(total > 0, (1 - none) * y / total.clamp_min(1e-12), torch.zeros_like(y))
    return torch.cat([shares, none], dim=-1)


def _pairable(labels: Sequence[Any], only: list[str], known: list[str], multi: bool) -> np.ndarray:
    """Which training items counterfactual logit pairing may pair (params.pairing_labels)."""
    if not only:
        return np.ones(len(labels), dtype=bool)
    unknown = sorted(set(only) - set(known))
    if unknown:
        raise StudentError(f"params.pairing_labels {unknown} are not labels of this task {known}", kind="encoder")
    if multi:
        from graduate.formats import labelset

        return np.array([set(labelset.decode(lab, known)) <= set(only) for lab in labels], dtype=bool)
    return np.array([lab in only for lab in labels], dtype=bool)


class _Pairing:
    """Counterfactual logit pairing (Garg et al., "Counterfactual Fairness in Text Classification
    through Robustness", 2019): the items of a batch that name a term of ``pairing_terms`` (at
    most ``pairing_per_batch``) are also read with another term of the list in their place, drawn
    afresh each time, and the loss adds ``pairing_weight`` times the mean absolute difference of
    the two readings' logits (centred per item for one label per item, where only differences
    between logits count). Gradients flow through both readings."""

    def __init__(self, texts: list[str], params: dict[str, Any], tokenizer: Any, pairable: np.ndarray):
        import random

        from graduate.spec.terms import term_pattern

        self.texts, self.tokenizer = texts, tokenizer
        self.terms, self.weight, self.per_batch = list(params["pairing_terms"]), float(params["pairing_weight"]), int(params["pairing_per_batch"])
        self.max_length = params["max_length"]
        self.pattern = term_pattern(self.terms)
        self.naming = np.array([ok and self.pattern.search(t) is not None for t, ok in zip(texts, pairable)], dtype=bool)
        self.rng = random.Random(params["seed"])
        self.pairs = 0
        self.steps_paired = 0
        self.last_gaps: list[float] = []

    def loss(self, batch: np.ndarray, logits: Any, forward: Any, *, centred: bool) -> Any:
        from graduate.spec.terms import swaps

        # A text that names every term of the list has no other term to put in: no pair.
        copies = [(r, swaps(self.texts[i], self.terms, 1, self.rng, pattern=self.pattern)) for r, i in enumerate(batch) if self.naming[i]]
        rows = [r for r, out in copies if out][: self.per_batch]
        swapped = [out[0][0] for _, out in copies if out][: self.per_batch]
        if not rows:
            return 0.0
        other = forward(self.tokenizer(swapped, truncation=True, max_length=self.max_length)["input_ids"])
        mine = logits[rows]
        if centred:
            mine, other = mine - mine.mean(-1, keepdim=True), other - other.mean(-1, keepdim=True)
        gap = (mine - other).abs().mean(-1)
        self.pairs += len(rows)
        self.steps_paired += 1
        self.last_gaps = (self.last_gaps + [float(gap.mean().detach())])[-50:]
        return self.weight * gap.mean()

    def summary(self) -> dict[str, Any]:
        return {
            "terms": len(self.terms),
            "weight": self.weight,
            "items_naming_a_term": int(self.naming.sum()),
            "pairs_read": self.pairs,
            "steps_with_pairs": self.steps_paired,
            "mean_gap_last_50_steps": float(np.mean(self.last_gaps)) if self.last_gaps else None,
        }


# Texts longer than this many characters per kept token are cut at a space before tokenising.
CHARS_PER_TOKEN_CUT = 16


def token_ids(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """``tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]``, without tokenising
    all of a long text (a 5,000-character comment took ~2 ms for the 96 tokens kept): a text longer
    than ``CHARS_PER_TOKEN_CUT * max_length`` characters is tokenised up to its last whitespace
    before that; the pre-tokenisers of BERT, SentencePiece and byte-level BPE models split at
    whitespace, so the words before the cut give the same tokens as in the whole text. A cut text
    that does not fill ``max_length`` tokens is tokenised whole."""
    cap = CHARS_PER_TOKEN_CUT * max_length
    cut: list[str] = []
    for t in texts:
        if len(t) > cap:
            k = max(t.rfind(c, 0, cap) for c in (" ", "\n", "\t", "\r"))
            t = t[:k] if k > 0 else t
        cut.append(t)
    ids = tokenizer(cut, truncation=True, max_length=max_length)["input_ids"]
    redo = [i for i, (a, b) in enumerate(zip(cut, texts)) if len(a) < len(b) and len(ids[i]) < max_length]
    if redo:
        again = tokenizer([texts[i] for i in redo], truncation=True, max_length=max_length)["input_ids"]
        for i, row in zip(redo, again):
            ids[i] = row
    return list(ids)


def _layer_count(base: Path, layers: int | None, kind: str) -> dict[str, int]:
    """``from_pretrained`` arguments keeping the bottom ``layers`` of the base model's stack (none: all)."""
    if layers is None:
        return {}
    n = _layer_total(base, kind)
    if n is None:
        raise StudentError(_NO_LAYER_COUNT, kind=kind)
    if layers > n:
        raise StudentError(_too_many_layers(layers, n), kind=kind)
    return {"num_hidden_layers": layers}


def _layer_total(base: Path, kind: str) -> int | None:
    """The base model's transformer layer count from its config (none when it names none)."""
    from transformers import AutoConfig

    try:
        n = getattr(AutoConfig.from_pretrained(base), "num_hidden_layers", None)
    except (OSError, ValueError) as exc:
        raise StudentError(f"params.base_model {str(base)!r}: its config.json is unreadable ({exc})", kind=kind) from None
    return n if isinstance(n, int) else None


_NO_LAYER_COUNT = "params.layers: this base model does not name its layer count (num_hidden_layers); leave layers unset"


def _too_many_layers(layers: int, n: int) -> str:
    return f"params.layers is {layers} but the base model has {n} layers; give at most {n}"


def _too_many_frozen(frozen: int, n: int) -> str:
    return f"params.frozen_layers is {frozen} but the model has {n} layers (params.layers, else the base model's); give at most {n - 1}"


def _freeze(model: Any, *, train_word_embeddings: bool, frozen_layers: int, kind: str) -> list[Any]:
    """Keep the word embeddings and/or the bottom ``frozen_layers`` transformer layers as
    pre-trained; returns the parameters left to train."""
    import torch

    if not train_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    if frozen_layers:
        n = getattr(model.config, "num_hidden_layers", None)
        stacks = [m for m in model.base_model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == n]
        if not stacks:
            raise StudentError("params.frozen_layers: this base model's layer stack was not found; leave frozen_layers at 0", kind=kind)
        if frozen_layers >= n:
            raise StudentError(_too_many_frozen(frozen_layers, n), kind=kind)
        embeddings = getattr(model.base_model, "embeddings", None)
        for module in ([embeddings] if embeddings is not None else []) + list(stacks[0][:frozen_layers]):
            for t in module.parameters():
                t.requires_grad_(False)
    return [t for t in model.parameters() if t.requires_grad]


def _pad(rows: list[list[int]], pad: int, device: str) -> dict[str, Any]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
