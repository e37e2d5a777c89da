"""Example per-input tasks and partitioners, referenced from a manifest as ``experiments.tasks:NAME``.

A task is ``function(output, input_index) -> dict`` of numbers or text: what the model's output
means for this input, recorded beside the timings. A partitioner is
``function(cuts, repeats) -> iterable of (cut, repeat)``: the order in which the sweep runs cuts.
"""

import random
from collections.abc import Iterator, Sequence

import torch


def top1(output: torch.Tensor, input_index: int) -> dict:
    """The predicted class and its softmax probability, for classification models."""
    probabilities = torch.softmax(output.flatten(1), dim=1)[0]
    score, label = probabilities.max(dim=0)
    return {"label": int(label), "probability": round(float(score), 6)}


def shuffled(cuts: Sequence[int], repeats: int) -> Iterator[tuple[int, int]]:
    """Every cut once per round, each round in its own seeded order: unlike the built-in
    ``round-robin``, no cut always runs right after the same neighbour, so what one cut leaves behind
    (a cache, a hot core) lands on different cuts each round. The same order on every run."""
    for repeat in range(repeats):
        for cut in random.Random(repeat).sample(list(cuts), len(cuts)):
            yield cut, repeat
