"""Each student kind's params as a typed model with a description per field: the spec validates
them (``graduate check``), ``graduate students show KIND`` prints them, and the kind's defaults
are the model's. One model per kind, named in the kind's class as ``Params``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from graduate.spec.base import type_name

ClassWeight = Literal["balanced"] | dict[str, float] | None
Device = Literal["auto", "cpu", "cuda"]


def _term_list(terms: list[str], name: str) -> list[str]:
    """A param's term list, stripped; an empty term is an error naming the param."""
    cleaned = [t.strip() for t in terms]
    if any(not t for t in cleaned):
        raise ValueError(f"{name}: give words or phrases, not empty strings")
    return cleaned


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MultiLabelParams(Params):
    """The two params of a kind that takes label sets itself (``takes_multi_label``)."""

    multi_label: bool = Field(False, description="Set by the project for task.kind multi_label: one output per label, each with its own threshold.")
    validation_share: float = Field(0.2, gt=0, lt=1, description="Multi-label: share of the training set held out to tune the thresholds.")
    max_labels: int | None = Field(
        None, ge=1, description="Set by the project from task.parse.max_labels: a predicted set keeps at most this many labels, those furthest past their thresholds."
    )


class FoldedThresholdParams(MultiLabelParams):
    """Kinds cheap to refit tune multi-label thresholds on out-of-fold probabilities of every item."""

    threshold_folds: int = Field(
        5, ge=1, le=20,
        description="Multi-label: tune the thresholds on out-of-fold probabilities from this many folds of the training set (1: one held-out validation_share instead).",
    )
    head: Literal["per_label", "softmax"] = Field(
        "per_label",
        description="Multi-label: per_label: one logistic regression per label (yes or no each); softmax: one multinomial regression over "
        "the labels and none, an item with k labels counted as k rows of weight 1/k, each label's probability still thresholded (for "
        "tasks where most items carry one label).",
    )

    @model_validator(mode="after")
    def _softmax_weights(self) -> "FoldedThresholdParams":
        if self.head == "softmax" and isinstance(getattr(self, "class_weight", None), dict):
            raise ValueError("head softmax takes class_weight balanced or none, not per-label weights")
        return self


class MajorityParams(Params):
    pass


class TfidfLogregParams(FoldedThresholdParams):
    word_ngrams: list[int] = Field([1, 2], min_length=2, max_length=2, description="Word n-gram range [min, max].")
    char_ngrams: list[int] = Field([2, 5], min_length=2, max_length=2, description="Character n-gram range [min, max] (within word boundaries).")
    max_features: int | None = Field(200_000, ge=1, description="Most features per vectoriser (the most frequent kept); none: all.")
    min_df: int | float = Field(1, description="Ignore terms in fewer documents than this (a share when below 1).")
    C: float = Field(20.0, gt=0, description="Inverse regularisation strength of the logistic regression.")
    class_weight: ClassWeight = Field(None, description="balanced, {label: weight}, or none (the dataset's sample weights apply either way).")
    max_iter: int = Field(2000, ge=1, description="Solver iterations.")
    sublinear_tf: bool = Field(True, description="Use 1 + log(tf) instead of raw term counts.")
    masked_terms: list[str] = Field(
        default_factory=list,
        description="Whole words or phrases (any case) replaced by one placeholder before the n-grams are taken, in training and prediction: "
        "the model cannot tell these terms apart, so its score cannot depend on which one a text names (e.g. identity terms; "
        "a bag of n-grams can only learn each as a bias of its own).",
    )
    seed: int = Field(0, description="Random seed.")

    @field_validator("masked_terms")
    @classmethod
    def _terms(cls, terms: list[str]) -> list[str]:
        return _term_list(terms, "masked_terms")


class EmbedLogregParams(FoldedThresholdParams):
    base_model: str = Field(
        "minilm", description="`minilm` (packaged all-MiniLM-L6-v2), `mpnet` (all-mpnet-base-v2, graduate[mpnet]) or a local sentence-transformers / Hugging Face directory."
    )
    more_base_models: list[str] = Field(
        default_factory=list,
        description="Further encoders (same choices as base_model) whose embeddings go beside base_model's, e.g. [minilm] beside mpnet: "
        "each text is embedded by every one of them.",
    )
    tfidf: bool = Field(False, description="Also give the classifier word 1-2-gram TF-IDF features (min_df 2, sublinear) beside the embedding.")
    max_length: int = Field(256, ge=8, description="Tokens per text fed to the encoder (longer texts are cut).")
    batch_size: int = Field(64, ge=1, description="Texts embedded at once.")
    C: float = Field(4.0, gt=0, description="Inverse regularisation strength of the logistic regression.")
    class_weight: ClassWeight = Field(None, description="balanced, {label: weight}, or none.")
    max_iter: int = Field(2000, ge=1, description="Solver iterations.")
    seed: int = Field(0, description="Random seed.")


class EncoderParams(MultiLabelParams):
    base_model: str = Field("minilm", description="`minilm` (packaged all-MiniLM-L6-v2) or a local Hugging Face encoder directory.")
    max_length: int = Field(128, ge=8, description="Tokens per text in training and serving (longer texts are cut).")
    epochs: Annotated[float, Field(gt=0)] | Literal["auto"] = Field(
        "auto", description="Passes over the training set (fractions allowed), or auto: at least 500 steps within 2-10 epochs (2 on 8,000 items, 10 on 400)."
    )
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimisation steps (overrides epochs when smaller).")
    batch_size: int = Field(32, ge=1, description="Texts per optimisation step.")
    learning_rate: float = Field(1e-4, gt=0, description="Peak learning rate (AdamW, linear warm-up and decay).")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    warmup_ratio: float = Field(0.06, ge=0, le=1, description="Share of the steps spent warming up.")
    train_word_embeddings: bool = Field(
        True,
        description="Fine-tune the word-embedding matrix too; false keeps it as pre-trained: its dense gradient and AdamW update over the "
        "whole vocabulary are about a quarter of a CPU step with MiniLM-L6.",
    )
    layers: int | None = Field(
        None,
        ge=1,
        description="Keep only the bottom N transformer layers of the base model (layer dropping: each step and each prediction costs "
        "about N/total of the full stack); none: all of them.",
    )
    frozen_layers: int = Field(0, ge=0, description="Bottom transformer layers kept as pre-trained (no gradients: faster steps, less memory); at most the model's layers minus one.")
    soft_weight: float = Field(0.5, ge=0, le=1, description="With the teacher's distributions: loss = w * soft CE + (1 - w) * hard CE (multi-label: BCE against w * p + (1 - w) * 0/1).")
    head: Literal["per_label", "softmax"] = Field(
        "per_label",
        description="Multi-label: per_label: a sigmoid per label (binary cross-entropy); softmax: one softmax over the labels and none, "
        "an item with k labels a target of 1/k on each (cross-entropy), each label's probability still thresholded (for tasks where "
        "most items carry one label). Single-label tasks ignore it.",
    )
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 where the CPU/GPU computes it natively, else fp32.")
    device: Device = Field("auto", description="auto: cuda when available.")
    quantise: bool = Field(True, description="Serve the int8 ONNX model when it agrees with the float one.")
    min_agreement: float = Field(0.98, ge=0, le=1, description="The least label agreement (int8 vs float) for int8 to serve.")
    agreement_items: int = Field(1000, ge=1, description="How many training texts the agreement check uses.")
    predict_batch_size: int = Field(16, ge=1, description="Texts per ONNX Runtime batch when serving.")
    threads: int | None = Field(None, ge=1, description="Parallel single-thread ONNX Runtime workers; default: all cores.")
    spin: bool = Field(
        True,
        description="A lone item runs on one session with every core inside each op; true: its idle threads spin-wait between ops "
        "(a 96-token item: 9.6 instead of 12-14 ms on 2 cores), false: they sleep (for several server workers sharing the cores).",
    )
    save_float: bool = Field(True, description="Also save the float PyTorch weights (for further tuning; not needed to serve).")
    pairing_terms: list[str] = Field(
        default_factory=list,
        description="Counterfactual logit pairing (Garg et al. 2019): in each batch, up to pairing_per_batch items that name one of these "
        "whole words or phrases (any case) are also read with another term of the list in its place, and the loss adds pairing_weight "
        "times the mean absolute difference of the two readings' centred logits: the score should not depend on which term a text names "
        "(e.g. identity terms).",
    )
    pairing_weight: float = Field(0.0, ge=0, description="Weight of the counterfactual logit pairing loss (0: off).")
    pairing_per_batch: int = Field(8, ge=1, description="At most this many items per batch get a counterfactual reading (each costs a forward and backward pass).")
    pairing_labels: list[str] = Field(
        default_factory=list,
        description="Pair only items with these labels (multi-label: whose labels are all among these, an item with none too), "
        "e.g. [ok]: naming another identity must not make a harmless text look toxic, while a toxic one may be toxic for the term itself; empty: every item.",
    )
    seed: int = Field(0, description="Random seed.")

    @field_validator("pairing_terms")
    @classmethod
    def _pairing_terms(cls, terms: list[str]) -> list[str]:
        cleaned = _term_list(terms, "pairing_terms")
        if cleaned and len({t.lower() for t in cleaned}) < 2:
            raise ValueError("pairing_terms: give two or more different terms to swap between")
        return cleaned

    @model_validator(mode="after")
    def _pairing(self) -> "EncoderParams":
        if self.pairing_weight > 0 and not self.pairing_terms:
            raise ValueError("pairing_weight is above 0 but pairing_terms is empty: list the terms to swap, or set pairing_weight: 0")
        return self


class EnsembleParams(MultiLabelParams):
    # Checked by the ensemble itself, member by member, with messages naming members[i] and the fix.
    members: Any = Field(
        default_factory=lambda: [{"kind": "encoder"}, {"kind": "tfidf-logreg", "use_weights": False}],
        description="Members: {kind, params, weight, use_weights}; probabilities are averaged by weight. use_weights: false trains on the raw class shares.",
    )
    seed: int = Field(0, description="Given to every member that takes a seed and names none.")
    member_defaults: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Per kind, params derived from the spec (filled by the project).")


class LoraLlmParams(MultiLabelParams):
    base_model: str = Field("qwen2.5-0.5b", description="A packaged GGUF name, a .gguf file or a local Hugging Face causal-LM directory.")
    prompt: str | None = Field(None, description="Template with {text}; default: the teacher's prompt (filled from graduate.yaml).")
    answers: dict[str, str] | None = Field(None, description="{label: answer text}; default: what the teacher answers for each label (from task.parse).")
    chat_template: bool = Field(True, description="Wrap the prompt as a user turn when the tokenizer has a chat template.")
    max_text_tokens: int = Field(192, ge=1, description="The text is cut to this many tokens before it goes into the prompt.")
    lora_r: int = Field(8, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(16, ge=1, description="LoRA scaling.")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout.")
    target_modules: list[str] | str = Field(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        description="Module names (what vLLM and LoRAX expect for Qwen2/Llama), or all-linear.",
    )
    epochs: float = Field(1.0, gt=0, description="Passes over the training set (fractions allowed).")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimisation steps (overrides epochs when smaller).")
    batch_size: int = Field(4, ge=1, description="Sequences per optimisation step.")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate.")
    warmup_ratio: float = Field(0.05, ge=0, le=1, description="Share of the steps spent warming up.")
    device: Device = Field("auto", description="auto: cuda when available.")
    predict_batch_size: int = Field(8, ge=1, description="Texts scored at once.")
    rationale_weight: float = Field(0.0, ge=0, le=10, description="Loss weight of the teacher's reasons as a second task (0: off).")
    rationale_instruction: str = Field("Give only your reasons, not the answer.", description="The instruction that asks for reasons.")
    max_rationale_tokens: int = Field(128, ge=1, description="Tokens of the teacher's reasons that are learnt.")
    seed: int = Field(0, description="Random seed.")
    answer_parse: dict[str, Any] | None = Field(None, description="Multi-label: the task's answer format (task.parse), to write a label set as the teacher does; filled from graduate.yaml.")
    max_candidates: int = Field(32, ge=1, le=512, description="Multi-label: the most frequent training label sets scored per text (plus one single-label set for any label they miss).")


def check_params(kind: str, model: type[Params], given: dict[str, Any]) -> None:
    """Raise StudentError naming every bad param (unknown, wrong type, out of range)."""
    from graduate.errors import StudentError

    try:
        model.model_validate(given)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            msg = "unknown param" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {msg}" if where else msg)  # a check across params names them itself
        allowed = sorted(model.model_fields)
        raise StudentError(f"params {'; '.join(problems)}; allowed: {allowed}", kind=kind) from None


def describe(model: type[Params]) -> list[tuple[str, str, Any, str]]:
    """(name, type, default, description) per param, as `graduate students show` prints them."""
    out = []
    for name, f in model.model_fields.items():
        ann = f.annotation
        kind = type_name(ann)
        default = f.default_factory() if f.default_factory is not None else f.default  # type: ignore[call-arg]
        out.append((name, kind, default, f.description or ""))
    return out


class OneVsRestParams(Params):
    base: str = Field("tfidf-logreg", description="The student kind trained once per label (yes/no); the spec's student kind when the task is multi-label.")
    base_params: dict[str, Any] = Field(default_factory=dict, description="That kind's params (see `graduate students show KIND`).")
    validation_share: float = Field(0.2, gt=0, lt=1, description="Share of the training set held out to tune each label's decision threshold (then all of it trains).")
    at_least_one: Literal["auto"] | bool = Field(
        "auto", description="Predict at least the most likely label when none passes its threshold; auto: when every training item has a label."
    )
    max_labels: int | None = Field(
        None, ge=1, description="Set by the project from task.parse.max_labels: a predicted set keeps at most this many labels, those furthest past their thresholds."
    )
    seed: int = Field(0, description="Random seed (the validation split, and the members' own seed).")
