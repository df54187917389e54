"""The shared optimisation loop: step counts, re-drawn passes, progress, and that it learns."""

import numpy as np
import torch

from graduate.students.training import optimise, total_steps


def test_total_steps_counts_partial_batches_and_respects_the_cap():
    assert total_steps(100, 32, 1, None) == 4
    assert total_steps(100, 32, 2.5, None) == 10
    assert total_steps(100, 32, 0.01, None) == 1
    assert total_steps(100, 32, 3, 5) == 5


def test_optimise_runs_exactly_total_steps_over_several_passes_and_learns():
    torch.manual_seed(0)
    x = torch.randn(40, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    model = torch.nn.Linear(3, 1)
    passes, seen = [], []

    def epoch_batches():
        passes.append(1)
        return [np.arange(i, i + 8) for i in range(0, 40, 8)]

    def batch_loss(batch):
        return ((model(x[batch]).squeeze(1) - y[batch]) ** 2).mean()

    losses = optimise(
        list(model.parameters()), total=60, learning_rate=0.05, warmup_ratio=0.1,
        epoch_batches=epoch_batches, batch_loss=batch_loss, on_progress=lambda done, total: seen.append((done, total)),
    )
    assert len(losses) == 60 and len(passes) == 12  # 5 batches a pass
    assert seen[0] == (1, 60) and seen[-1] == (60, 60)
    assert np.mean(losses[-5:]) < 0.1 * np.mean(losses[:5])
