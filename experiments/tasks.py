"""Example per-input tasks and partitioners, referenced from a manifest as ``experiments.tasks:NAME``.

A task is ``function(output, input_index) -> dict`` of numbers or text: what the model's output
means for this input, recorded beside the timings. A partitioner is
``function(cuts, repeats) -> iterable of (cut, repeat)``: the order in which the sweep runs cuts.
"""

from collections.abc import Iterator, Sequence

import torch


def top1(output: torch.Tensor, input_index: int) -> dict:
    """The predicted class and its softmax probability, for classification models."""
    probabilities = torch.softmax(output.flatten(1), dim=1)[0]
    score, label = probabilities.max(dim=0)
    return {"label": int(label), "probability": round(float(score), 6)}


def interleaved(cuts: Sequence[int], repeats: int) -> Iterator[tuple[int, int]]:
    """Every cut once per round, ``repeats`` rounds: spreads slow drifts (heat, other load) over all cuts."""
    for repeat in range(repeats):
        for cut in cuts:
            yield cut, repeat
