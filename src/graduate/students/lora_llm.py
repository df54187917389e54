"""A LoRA adapter (peft) on a small causal LM that answers in the teacher's own format.

The student is prompted the way the teacher was (its prompt template, as a chat turn when the
tokenizer has a chat template) and learns to answer exactly what the teacher answers for each label
(e.g. ``{"is_bad": 1}``); loss is on the answer tokens only. ``predict_proba`` scores each label's
answer by the model's log-likelihood and normalises over labels, so it never needs to parse free
text. The adapter is saved in peft's standard layout (``adapter/adapter_config.json`` +
``adapter_model.safetensors``), which vLLM (``--lora-modules``) and LoRAX load beside the base.

Rationales (optional, "distilling step-by-step", Hsieh et al. 2023): with ``rationale_weight`` > 0
and a dataset whose teacher answers carry reasons (a chain-of-thought prompt's ``reason_*``
fields), every item with reasons is also a second training example: the same prompt with
``rationale_instruction`` appended, answered with the teacher's reasons. The two tasks share the
adapter; predicting labels stays one cheap forward pass (no reasons are generated first), and
``explain`` generates the student's reasons on demand.

The base model is a packaged GGUF (``qwen2.5-0.5b``, dequantised by transformers with ``gguf``), a
``.gguf`` file or a local Hugging Face directory. Training and scoring use a GPU when one is
visible (bf16), else the CPU (fp32).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from graduate.errors import StudentError
from graduate.students.base import StudentBase, check_fit_input, params_with_defaults
from graduate.students.params import LoraLlmParams
from graduate.models.base_models import QWEN_05B, load_causal_lm
from graduate.students.training import StepProgress, optimise, total_steps

DEFAULT_PROMPT = "Classify the text.\n\nText: {text}\n\nAnswer:"


class LoraLlmStudent(StudentBase):
    kind = "lora-llm"
    needs_accelerator = True  # a full epoch over 8,078 items took ~4.8 h on 2 CPU cores
    Params = LoraLlmParams  # every param: type, default, meaning (graduate students show)
    DEFAULTS: dict[str, Any] = LoraLlmParams().model_dump()

    @staticmethod
    def wants_rationales(params: dict[str, Any]) -> bool:
        """Whether fit should get the teacher's reasons per item (the rationale task is on)."""
        return bool(params.get("rationale_weight"))

    def __init__(self, labels: list[str], **params: Any):
        self.labels = list(labels)
        self.params = params_with_defaults(self.kind, params, self.DEFAULTS, self.Params)
        p = self.params
        if p["prompt"] is not None and str(p["prompt"]).count("{text}") != 1:
            raise StudentError("params.prompt must contain {text} exactly once", kind=self.kind)
        answers = p["answers"] or {lab: lab for lab in self.labels}
        if sorted(answers) != sorted(self.labels):
            raise StudentError(f"params.answers must give one answer per label {self.labels}, got {sorted(answers)}", kind=self.kind)
        if len(set(answers.values())) != len(answers):
            raise StudentError(f"params.answers must differ between labels, got {answers}", kind=self.kind)
        self.answers: dict[str, str] = {lab: str(answers[lab]) for lab in self.labels}
        self.tokenizer: Any = None
        self.model: Any = None
        self.report: dict[str, Any] = {}
        self.on_progress: StepProgress | None = None

    @classmethod
    def defaults_from_spec(cls, spec: Any) -> dict[str, Any]:
        """The teacher's prompt and answer format, so the student answers as the teacher does."""
        answers = {lab: teacher_answer(spec.task.parse, spec.task.labels, lab) for lab in spec.task.labels}
        prompt = spec.teacher.prompt if not spec.teacher.system else f"{spec.teacher.system}\n\n{spec.teacher.prompt}"
        return {"prompt": prompt, "answers": answers}

    # -- model ---------------------------------------------------------------------------------
    def _device(self) -> str:
        import torch

        want = self.params["device"]
        if want == "cuda" and not torch.cuda.is_available():
            raise StudentError("params.device is cuda but no GPU is visible; use auto or cpu", kind=self.kind)
        return "cuda" if want == "cuda" or (want == "auto" and torch.cuda.is_available()) else "cpu"

    def _load_base(self) -> tuple[Any, Any, str]:
        import torch

        device = self._device()
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        tokenizer, model, source = load_causal_lm(self.params["base_model"], self.kind, dtype=dtype)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        self.report["base_model_dir"] = str(source)
        return tokenizer, model.to(device), device

    def _prompt_ids(self, texts: Sequence[str], *, rationale: bool = False) -> list[list[int]]:
        """The prompt per text; ``rationale``: the variant that asks for the reasons instead."""
        tok = self.tokenizer
        template = self.params["prompt"] or DEFAULT_PROMPT
        if rationale:
            template = f"{template}\n\n{self.params['rationale_instruction']}"
        cut = tok(list(texts), add_special_tokens=False, truncation=True, max_length=self.params["max_text_tokens"])["input_ids"]
        out = []
        for ids in cut:
            prompt = template.replace("{text}", tok.decode(ids))
            if self.params["chat_template"] and getattr(tok, "chat_template", None):
                prompt = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
            out.append(tok(prompt, add_special_tokens=False)["input_ids"])
        return out

    def _answer_ids(self) -> list[list[int]]:
        tok = self.tokenizer
        eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
        return [tok(self.answers[lab], add_special_tokens=False)["input_ids"] + eos for lab in self.labels]

    # -- training ------------------------------------------------------------------------------
    def _rationale_ids(self, rationale: dict[str, Any]) -> list[int]:
        tok = self.tokenizer
        ids = tok(rationale_text(rationale), add_special_tokens=False, truncation=True, max_length=self.params["max_rationale_tokens"])["input_ids"]
        return ids + ([tok.eos_token_id] if tok.eos_token_id is not None else [])

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        sample_weight: Sequence[float] | None = None,
        rationales: Sequence[dict[str, Any] | None] | None = None,
    ) -> None:
        import torch
        from peft import LoraConfig, get_peft_model

        check_fit_input(self.kind, texts, labels, self.labels)
        p = self.params
        torch.manual_seed(p["seed"])
        rng = np.random.default_rng(p["seed"])
        self.tokenizer, base, device = self._load_base()
        config = LoraConfig(
            task_type="CAUSAL_LM",
            r=p["lora_r"],
            lora_alpha=p["lora_alpha"],
            lora_dropout=p["lora_dropout"],
            target_modules=p["target_modules"],
        )
        try:
            model = get_peft_model(base, config)
        except ValueError as exc:
            raise StudentError(f"params.target_modules {p['target_modules']!r} does not fit this model: {exc}", kind=self.kind) from None
        prompts = self._prompt_ids(texts)
        answers = self._answer_ids()
        seqs = [(pr, answers[self.labels.index(lab)]) for pr, lab in zip(prompts, labels)]
        w = np.ones(len(seqs)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        with_reasons = 0
        if rationales is not None and p["rationale_weight"] > 0:
            if len(rationales) != len(texts):
                raise StudentError(f"{len(texts)} texts but {len(rationales)} rationales", kind=self.kind)
            keep = [i for i, r in enumerate(rationales) if r and rationale_text(r)]
            if keep:
                asks = self._prompt_ids([texts[i] for i in keep], rationale=True)
                seqs += [(ask, self._rationale_ids(rationales[i] or {})) for ask, i in zip(asks, keep)]
                w = np.concatenate([w, p["rationale_weight"] * w[keep]])
                with_reasons = len(keep)

        total = total_steps(len(seqs), p["batch_size"], p["epochs"], p["max_steps"])
        trainable = [q for q in model.parameters() if q.requires_grad]

        def epoch_batches() -> list[np.ndarray]:
            order = rng.permutation(len(seqs))
            return [order[i : i + p["batch_size"]] for i in range(0, len(order), p["batch_size"])]

        def batch_loss(batch: np.ndarray) -> Any:
            token_lp, mask = self._answer_logprobs(model, [seqs[i] for i in batch], device)
            per_item = -token_lp.sum(1) / mask.sum(1).clamp(min=1)
            wb = torch.tensor(w[batch], dtype=per_item.dtype, device=device)
            return (per_item * wb).sum() / wb.sum()

        model.train()
        losses = optimise(
            trainable,
            total=total,
            learning_rate=p["learning_rate"],
            warmup_ratio=p["warmup_ratio"],
            epoch_batches=epoch_batches,
            batch_loss=batch_loss,
            on_progress=self.on_progress,
        )
        model.eval()
        self.model = model
        self.report.update(
            steps=total,
            device=device,
            final_loss=float(np.mean(losses[-20:])),
            trainable_params=int(sum(q.numel() for q in trainable)),
            rationale_items=with_reasons,
        )

    def _batch(self, pairs: list[tuple[list[int], list[int]]], device: str) -> tuple[dict[str, Any], Any, Any]:
        """Left-padded prompt+answer sequences, so every answer ends at the last position and only
        the last few positions need logits (the vocabulary projection dominates the cost).

        Returns the model inputs, the target ids of the last K positions and a mask of which of
        those are answer tokens (K = the longest answer)."""
        import torch

        k = max(len(b) for _, b in pairs)
        width = max(len(a) + len(b) for a, b in pairs)
        ids = torch.full((len(pairs), width), self.tokenizer.pad_token_id, dtype=torch.long)
        attn = torch.zeros((len(pairs), width), dtype=torch.long)
        mask = torch.zeros((len(pairs), k))
        for i, (prompt, answer) in enumerate(pairs):
            seq = prompt + answer
            ids[i, width - len(seq) :] = torch.tensor(seq)
            attn[i, width - len(seq) :] = 1
            mask[i, k - len(answer) :] = 1
        positions = (attn.cumsum(1) - 1).clamp(min=0)
        inputs = {"input_ids": ids.to(device), "attention_mask": attn.to(device), "position_ids": positions.to(device), "logits_to_keep": k + 1}
        return inputs, ids[:, width - k :].to(device), mask.to(device)

    def _answer_logprobs(self, model: Any, pairs: list[tuple[list[int], list[int]]], device: str) -> tuple[Any, Any]:
        """Per sequence: the log-probabilities of its answer tokens (K columns) and their mask."""
        import torch

        inputs, targets, mask = self._batch(pairs, device)
        logits = model(**inputs).logits[:, :-1]
        logp = torch.log_softmax(logits.float(), dim=-1)
        return logp.gather(2, targets.unsqueeze(2)).squeeze(2) * mask, mask

    # -- serving -------------------------------------------------------------------------------
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Per text, each label's answer log-likelihood under the model, softmaxed over labels."""
        import torch

        if self.model is None:
            raise StudentError("not trained; call fit or load first", kind=self.kind)
        device = next(self.model.parameters()).device.type
        prompts = self._prompt_ids(texts)
        answers = self._answer_ids()
        pairs = [(pr, ans) for pr in prompts for ans in answers]
        scores = np.zeros(len(pairs))
        order = np.argsort([len(a) + len(b) for a, b in pairs], kind="stable")
        bs = self.params["predict_batch_size"] * len(answers)
        with torch.no_grad():
            for start in range(0, len(order), bs):
                batch = order[start : start + bs]
                token_lp, _ = self._answer_logprobs(self.model, [pairs[i] for i in batch], device)
                scores[batch] = token_lp.sum(1).double().cpu().numpy()
        scores = scores.reshape(len(texts), len(answers))
        z = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def explain(self, texts: Sequence[str], *, max_new_tokens: int | None = None) -> list[str]:
        """The student's reasons per text (greedy decoding of the rationale task); meaningful
        after training with rationales."""
        import torch

        if self.model is None:
            raise StudentError("not trained; call fit or load first", kind=self.kind)
        device = next(self.model.parameters()).device.type
        tok = self.tokenizer
        limit = max_new_tokens or self.params["max_rationale_tokens"]
        out: list[str] = []
        with torch.no_grad():
            for prompt in self._prompt_ids(texts, rationale=True):
                ids = torch.tensor([prompt], device=device)
                gen = self.model.generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=limit, do_sample=False, pad_token_id=tok.pad_token_id
                )
                out.append(tok.decode(gen[0, len(prompt) :], skip_special_tokens=True).strip())
        return out

    @property
    def base_model_bytes(self) -> int:
        """The base model it needs beside the adapter (the GGUF file, or the Hugging Face directory)."""
        from graduate.models.base_models import causal_lm_source, dir_size

        directory, gguf = causal_lm_source(self.params["base_model"], self.kind)
        return (directory / gguf).stat().st_size if gguf else dir_size(directory)

    def save(self, directory: Path) -> None:
        if self.model is None:
            raise StudentError("not trained; nothing to save", kind=self.kind)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory / "adapter")
        (directory / "student.json").write_text(
            json.dumps({"labels": self.labels, "params": self.params, "answers": self.answers, "report": self.report}, indent=2)
        )

    @classmethod
    def load(cls, directory: Path) -> "LoraLlmStudent":
        from peft import PeftModel

        meta = json.loads((directory / "student.json").read_text())
        obj = cls(meta["labels"], **meta["params"])
        obj.report = meta.get("report", {})
        obj.tokenizer, base, _ = obj._load_base()
        obj.model = PeftModel.from_pretrained(base, directory / "adapter")
        obj.model.eval()
        return obj


def rationale_text(rationale: dict[str, Any]) -> str:
    """The teacher's reasons as the text the student learns: one ``field: value`` line each, in the
    teacher's order (empty values left out)."""
    return "\n".join(f"{k}: {v}" for k, v in rationale.items() if v not in (None, ""))


def teacher_answer(parse: Any, labels: list[str], label: str) -> str:
    """What the teacher answers for ``label`` under the task's answer format, e.g. ``{"is_bad": 1}``;
    the first rendering that parses back to it (the label name itself when none does)."""
    from graduate.formats import answer_format

    fmt = answer_format(parse, labels)
    return next((a for a in fmt.render(label) if fmt.parse(a).label == label), label)
