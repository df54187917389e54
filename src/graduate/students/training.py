"""The optimisation loop the neural students share (encoder, lora-llm): AdamW with linear warm-up
and decay, gradient clipping, a fixed number of steps over re-drawn batches, progress per step."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from graduate.errors import StudentError

# (done, total) optimisation steps.
StepProgress = Callable[[int, int], None]


def total_steps(items: int, batch_size: int, epochs: float, max_steps: int | None) -> int:
    """Steps for ``epochs`` passes over ``items`` (at least one), capped by ``max_steps``."""
    total = max(1, math.ceil(epochs * math.ceil(items / batch_size)))
    return min(total, int(max_steps)) if max_steps is not None else total


def optimise(
    parameters: Sequence[Any],
    *,
    total: int,
    learning_rate: float,
    warmup_ratio: float,
    weight_decay: float = 0.0,
    epoch_batches: Callable[[], Iterable[np.ndarray]],
    batch_loss: Callable[[np.ndarray], Any],
    on_progress: StepProgress | None = None,
    kind: str = "student",
) -> list[float]:
    """Run ``total`` steps; ``epoch_batches()`` gives one pass's batches of item indices (called
    again until the steps are done), ``batch_loss(batch)`` the loss tensor to minimise. Returns
    the loss of every step. A loss that is NaN or infinite stops training at once with a
    StudentError (``kind`` names the student): the weights are ruined from there on."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    opt = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=weight_decay)
    sched = get_linear_schedule_with_warmup(opt, int(warmup_ratio * total), total)
    losses: list[float] = []
    while len(losses) < total:
        for batch in epoch_batches():
            if len(losses) >= total:
                break
            loss = batch_loss(batch)
            if not math.isfinite(value := float(loss.detach())):
                raise StudentError(
                    f"training loss is {value} at step {len(losses) + 1} of {total}; nothing is kept. Lower params.learning_rate, "
                    "or train with params.device: cpu to tell the GPU's arithmetic from the data",
                    kind=kind,
                )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(value)
            if on_progress:
                on_progress(len(losses), total)
    return losses
