"""A LoRA adapter (peft) on a small causal LM that answers in the teacher's own format.

The student is prompted the way the teacher was (its prompt template, as a chat turn when the
tokenizer has a chat template) and learns to answer exactly what the teacher answers for each label
(e.g. ``{"is_bad": 1}``); loss is on the answer tokens only. ``predict_proba`` scores each label's
answer by the model's log-likelihood and normalises over labels, so it never needs to parse free
text. The adapter is saved in peft's standard layout (``adapter/adapter_config.json`` +
``adapter_model.safetensors``), which vLLM (``--lora-modules``) and LoRAX load beside the base.

Label sets (``multi_label``, set for ``task.kind: multi_label``): the student learns the teacher's
answer for each item's set (``care, equality`` in the teacher's own spelling, from ``task.parse``).
``predict_proba`` scores the answers of the ``max_candidates`` most frequent training sets (plus a
one-label set for any label they miss), softmaxes over them, and gives each label the probability
mass of the sets that hold it; per-label thresholds are tuned on a held-out share of the training
set and saved with the adapter. Scoring costs one sequence per candidate set per text, so the
candidate list is short by design (32 sets cover 99.5% of MFRC's pool).

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

import inspect
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
    takes_multi_label = True  # params multi_label: candidate label sets scored in the teacher's format
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
        self.multi_label = bool(p["multi_label"])
        self.answer_spec = self._answer_spec() if self.multi_label else None
        self.candidates: list[str] = []  # multi-label: the label sets scored per text (canonical strings)
        self.thresholds: list[float] = []
        self.at_least_one = False
        self.tokenizer: Any = None
        self.model: Any = None
        self.report: dict[str, Any] = {}
        self.on_progress: StepProgress | None = None

    @classmethod
    def defaults_from_spec(cls, spec: Any) -> dict[str, Any]:
        """The teacher's prompt and answer format, so the student answers as the teacher does."""
        prompt = spec.teacher.prompt if not spec.teacher.system else f"{spec.teacher.system}\n\n{spec.teacher.prompt}"
        if spec.task.multi_label:
            return {"prompt": prompt, "answer_parse": spec.task.parse.model_dump(mode="json")}
        answers = {lab: teacher_answer(spec.task.parse, spec.task.labels, lab) for lab in spec.task.labels}
        return {"prompt": prompt, "answers": answers}

    def check_models(self) -> None:
        """The base model is there: a packaged GGUF joined or installed, a GGUF file, or a causal
        LM's Hugging Face directory (nothing loaded)."""
        from graduate.models.base_models import check_causal_lm

        check_causal_lm(self.params["base_model"], self.kind)

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

    def _answer_ids(self, answers: Sequence[str] | None = None) -> list[list[int]]:
        """Token ids (EOS-terminated) of each answer; default: each label's answer, in label order."""
        tok = self.tokenizer
        eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
        texts = [self.answers[lab] for lab in self.labels] if answers is None else answers
        return [tok(a, add_special_tokens=False)["input_ids"] + eos for a in texts]

    def _answer_spec(self) -> Any:
        """The task's answer format for label sets (``answer_parse``; default: comma-separated label words)."""
        from graduate.spec import ParseSpec

        given = self.params["answer_parse"] or {"kind": "label_list"}
        try:
            parse = ParseSpec(**given)
        except (TypeError, ValueError) as exc:
            first = str(exc).splitlines()[-1].strip() if str(exc) else type(exc).__name__
            raise StudentError(f"params.answer_parse is not a task.parse ({first}); copy task.parse from graduate.yaml", kind=self.kind) from None
        if not parse.multi_label:
            raise StudentError(f"params.answer_parse.kind {parse.kind} gives one label; label sets need label_list, json_list or json_booleans", kind=self.kind)
        return parse

    def _set_answer(self, value: str) -> str:
        """What the teacher answers for the label set ``value`` (its canonical string)."""
        return teacher_answer(self.answer_spec, self.labels, value)

    def _choose_candidates(self, sets: Sequence[str]) -> list[str]:
        """The most frequent training sets (ties: first seen), then a one-label set for every label
        none of them holds, so every label can be predicted."""
        from collections import Counter

        from graduate.formats import labelset

        chosen = [v for v, _ in Counter(sets).most_common(self.params["max_candidates"])]
        held = set().union(*(labelset.decode(v, self.labels) or () for v in chosen)) if chosen else set()
        return chosen + [labelset.encode([lab], self.labels) for lab in self.labels if lab not in held]

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

        p = self.params
        if self.multi_label:
            from graduate.formats import labelset
            from graduate.students import thresholds

            y_sets = thresholds.training_sets(self.kind, texts, labels, self.labels)
            canonical = [labelset.encode([lab for j, lab in enumerate(self.labels) if row[j]], self.labels) for row in y_sets]
            train_idx, val_idx = thresholds.split(len(texts), p["validation_share"], p["seed"])
            val_texts = [texts[i] for i in val_idx]
            texts, labels = [texts[i] for i in train_idx], [canonical[i] for i in train_idx]
            sample_weight = None if sample_weight is None else [sample_weight[i] for i in train_idx]
            rationales = None if rationales is None else [rationales[i] for i in train_idx]
            self.candidates = self._choose_candidates(labels)
            targets = sorted(set(labels) | set(self.candidates))
        else:
            check_fit_input(self.kind, texts, labels, self.labels)
            targets = list(self.labels)
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
        answer_of = dict(zip(targets, self._answer_ids([self._set_answer(v) for v in targets] if self.multi_label else None)))
        seqs = [(pr, answer_of[lab]) for pr, lab in zip(prompts, labels)]
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
            kind=self.kind,
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
        if device == "cuda":  # what a GPU needs to train it (weights, activations, optimiser state)
            self.report["gpu_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        if self.multi_label:
            from graduate.students import thresholds

            val_probs = self.predict_proba(val_texts)
            self.thresholds, self.at_least_one, decisions = thresholds.fit_decisions(y_sets, val_idx, val_probs, self.labels, max_labels=self.params["max_labels"])
            self.report["multi_label"] = {"train_items": len(train_idx), "candidate_sets": len(self.candidates), **decisions}

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
        """Per text, each label's answer log-likelihood under the model, softmaxed over labels.
        Multi-label: the softmax is over the candidate sets' answers, and each label gets the
        probability of the sets that hold it."""
        if self.model is None:
            raise StudentError("not trained; call fit or load first", kind=self.kind)
        if not self.multi_label:
            return self._answer_probs(texts, self._answer_ids())
        from graduate.formats import labelset

        probs = self._answer_probs(texts, self._answer_ids([self._set_answer(v) for v in self.candidates]))
        holds = np.array([[lab in (labelset.decode(v, self.labels) or ()) for lab in self.labels] for v in self.candidates], dtype=float)
        return np.clip(probs @ holds, 0.0, 1.0)

    def _answer_probs(self, texts: Sequence[str], answers: list[list[int]]) -> np.ndarray:
        """(texts, answers): each answer's log-likelihood after the text's prompt, softmaxed per text."""
        scores = self._answer_scores(self._prompt_ids(texts), answers)
        broken = int((~np.isfinite(scores)).any(axis=1).sum())
        if broken:
            raise StudentError(
                f"{broken} of {len(scores)} texts got answer scores that are not finite (NaN); the model's weights or the "
                "device's arithmetic are broken: retrain it, or score with params.device: cpu",
                kind=self.kind,
            )
        z = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def _answer_scores(self, prompts: list[list[int]], answers: list[list[int]]) -> np.ndarray:
        """(prompts, answers) log-likelihoods, each prompt run once: its key/value cache is repeated
        for every answer, so scoring C answers costs one prompt pass plus C short answer passes (not
        C full sequences; the prompt dominates, a label set's answer is a few tokens)."""
        import torch

        device = next(self.model.parameters()).device.type
        # transformers 5 names the cache argument `cache`; 4.x `past_key_values`
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        forward = inspect.signature(base.forward).parameters
        cache_arg = "cache" if "cache" in forward else "past_key_values"
        pad = self.tokenizer.pad_token_id
        n_ans, k = len(answers), max(len(a) for a in answers)
        ans_ids = torch.full((n_ans, k), pad, dtype=torch.long)
        ans_mask = torch.zeros((n_ans, k), dtype=torch.long)
        for j, a in enumerate(answers):
            ans_ids[j, : len(a)] = torch.tensor(a)
            ans_mask[j, : len(a)] = 1
        scores = np.zeros((len(prompts), n_ans))
        order = np.argsort([len(pr) for pr in prompts], kind="stable")
        bs = self.params["predict_batch_size"]
        with torch.no_grad():
            for start in range(0, len(order), bs):
                batch = order[start : start + bs]
                width = max(len(prompts[i]) for i in batch)
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                attn = torch.zeros((len(batch), width), dtype=torch.long)
                for r, i in enumerate(batch):
                    ids[r, width - len(prompts[i]) :] = torch.tensor(prompts[i])
                    attn[r, width - len(prompts[i]) :] = 1
                positions = (attn.cumsum(1) - 1).clamp(min=0)
                out = self.model(
                    input_ids=ids.to(device), attention_mask=attn.to(device), position_ids=positions.to(device), use_cache=True, logits_to_keep=1
                )
                first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # (b, vocab): each answer's first token
                cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
                cache.batch_repeat_interleave(n_ans)
                b = len(batch)
                rep_attn = torch.cat([attn.repeat_interleave(n_ans, 0), ans_mask.repeat(b, 1)], dim=1)
                rep_pos = attn.sum(1, keepdim=True).repeat_interleave(n_ans, 0) + torch.arange(k)
                rest = self.model(
                    input_ids=ans_ids.repeat(b, 1).to(device),
                    attention_mask=rep_attn.to(device),
                    position_ids=rep_pos.to(device),
                    use_cache=True,
                    **{cache_arg: cache},
                ).logits.float()
                logp = torch.log_softmax(rest[:, :-1], dim=-1)  # token t+1 given the answer up to t
                tgt = ans_ids[:, 1:].repeat(b, 1).to(device)
                later = (logp.gather(2, tgt.unsqueeze(2)).squeeze(2) * ans_mask[:, 1:].repeat(b, 1).to(device)).sum(1)
                head = first.gather(1, ans_ids[:, 0].to(device).repeat(b).view(b, n_ans))
                scores[batch] = (head + later.view(b, n_ans)).double().cpu().numpy()
        return scores

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
            json.dumps(
                {
                    "labels": self.labels,
                    "params": self.params,
                    "answers": self.answers,
                    "candidates": self.candidates,
                    "thresholds": [float(t) for t in self.thresholds],
                    "at_least_one": self.at_least_one,
                    "report": self.report,
                },
                indent=2,
            )
        )

    @classmethod
    def load(cls, directory: Path) -> "LoraLlmStudent":
        from peft import PeftModel

        meta = json.loads((directory / "student.json").read_text())
        obj = cls(meta["labels"], **meta["params"])
        obj.report = meta.get("report", {})
        obj.candidates = list(meta.get("candidates", []))
        obj.thresholds = [float(t) for t in meta.get("thresholds", [])]
        obj.at_least_one = bool(meta.get("at_least_one", False))
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
