"""A run with early exits (seed 002), as the edge host runs it: the exits of the edge part built here
from the template and the shipped weights, the worker told which exits of its part to run and
where their weights are, and the labelled set's test part (the one ``harness exits train`` held
out, found again from the same seed) as the inputs, each sample's true class beside it.

A labelled set without exits is fed in its own order, and its records also get the predicted and
true class, so a plain split model's accuracy is measured the same way.
"""

from dataclasses import replace
from pathlib import Path

import torch

from harness.errors import BadInput
from harness.exits.assemble import build_part
from harness.exits.data import LABELLED_CLASSES, Batches, batches, labelled_set, stratified_split
from harness.exits.manifest import output_classes
from harness.exits.weights import load_exit_weights
from harness.manifest.matrix import Run
from harness.manifest.schema import ExitTrainingSpec
from harness.model import SplitGraph
from harness.model.datasets import load_inputs
from harness.results import InferenceRecord
from harness.wire.frames import ExitsSpec
from harness.worker.edge import EdgeExits


def run_inputs(run: Run, split: SplitGraph) -> Batches:
    """The run's inputs, with their true classes where the dataset has them."""
    shape = split.input_shape
    if run.dataset.name not in LABELLED_CLASSES:
        return Batches(load_inputs(run.dataset, shape), None)
    data = labelled_set(run.dataset.name, tuple(shape[1:]))
    order = None
    if run.exits is not None or run.dataset.part == "test":
        training = run.exits.training if run.exits is not None else ExitTrainingSpec()
        order = stratified_split(data.labels, training.validation, training.test, training.seed).test
    return batches(data, run.dataset.count, shape[0], order)


def edge_exits(run: Run, split: SplitGraph) -> tuple[int, EdgeExits]:
    """The cut the run's exits were trained on, and its progressive inference: the edge part with its exits
    loaded here, the cloud part's exits as the worker is asked to run them (with ``locality:
    across``, the edge part's exits too, on the inputs the edge sends with the cut's)."""
    spec, trained = run.exits, run.trained_exits
    if spec is None or trained is None or run.threshold is None or run.exit_weights is None:
        raise BadInput(f"plan: run {run.id} names no trained exits; expected exits, trained_exits and exit_weights")
    classes = output_classes(split) or 0
    attach = {"edge": trained.edge, "cloud": trained.cloud}
    part, _ = build_part(split, None, trained.cut, attach["edge"], spec.template, classes, spec.confidence)
    load_exit_weights(Path(run.exit_weights), part.exits)
    across = spec.locality == "across"
    cloud = ExitsSpec(
        template=spec.template,
        cuts=tuple(attach["cloud"]),
        first=len(attach["edge"]) + 1,
        classes=classes,
        confidence=spec.confidence,
        threshold=run.threshold,
        weights=run.exit_weights,
        carried=tuple(attach["edge"]) if across else (),
    )
    return trained.cut, EdgeExits(part.eval(), cloud, run.threshold, carry=across)


def labelled(record: InferenceRecord, output: object, labels: list[int] | None) -> InferenceRecord:
    """``record`` with the class the output answers and the sample's true one, where both are known."""
    if labels is None or not isinstance(output, torch.Tensor):
        return record
    return replace(record, predicted=int(output.reshape(-1, output.shape[-1])[0].argmax()), label=labels[record.input])
