"""``harness exits train MANIFEST``: each model of a manifest trained for its exits, and the files a
sweep ships to the hosts.

Per model, a folder ``OUT/<model>/`` holds what a sweep with ``exits.trained: OUT`` ships to every
host and runs there: ``backbone.pt``, the network's state dict (hosts read it with
``weights_only``: tensors, nothing executable), and a folder per placement (``linear/``) with

- ``exits.pt``: the exits' state dict, keys ``exit<N>.<parameter>``;
- ``exit<N>.py``: the Python each exit was built from (or the factory's name);
- ``training.json``: the dataset and its stratified split (the indices of each part), seeds, epochs,
  losses, the exit plan, the backbone's digest before and after exit training, and the accuracy of
  every exit and of the final classifier on the validation and test parts, as if every sample
  reached it.

The backbone trains first where the manifest gives no weights; the exits of each placement then
train on it frozen.
"""

import copy
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from harness.errors import BadInput, HarnessError
from harness.exits.assemble import assemble
from harness.exits.data import LABELLED_CLASSES, LabelledSet, Split, labelled_set, stratified_split
from harness.exits.manifest import listed_cut, needs_profiles, output_classes, placed, plan_for
from harness.exits.present import exit_plan_record
from harness.exits.resolve import folder_profiles
from harness.exits.thresholds import Selection, select_thresholds
from harness.exits.trained import BACKBONE, EXITS, trained_folder
from harness.exits.training import backbone_digest, exit_logits, train_backbone, train_exits, train_joint
from harness.exits.weights import exit_state
from harness.manifest import LoadedManifest
from harness.manifest.schema import Cuts, ExitsSpec, ModelSpec
from harness.manifest.validate import field_line
from harness.model import Granularity, SplitGraph, build_split_graph, load_model
from harness.model.sources.weights import is_none

PARTS = ("validation", "test")


@dataclass(frozen=True)
class TrainedModel:
    model: str
    placement: str
    folder: Path
    dataset: str
    exits: tuple[str, ...]
    """Each exit's name (``exit1 after layer1``), in plan order."""
    accuracy: dict[str, list[float]]
    """Per part of the split: every exit's top-1 accuracy, then the final classifier's."""
    selection: Selection | None
    """The thresholds picked on the validation part, where the manifest asks for them."""
    seconds: float
    """Training the backbone and these exits (the backbone counted with the first placement)."""


@dataclass(frozen=True)
class Profiles:
    """Where the latency rule reads per-layer profiles: a sweep's results folder (and its run of the
    model, where it has several), and the link's rate for ``include_transfer``."""

    folder: Path
    run: str | None = None
    rate: float | None = None

    def of(self, split: SplitGraph) -> tuple[list[float], list[float]]:
        return folder_profiles(self.folder, split, self.run)


def train_manifest(
    loaded: LoadedManifest,
    out: Path,
    say: Callable[[str], None] = lambda _: None,
    profiles: Profiles | None = None,
) -> list[TrainedModel]:
    """Train every model of ``loaded`` for its exits and write its folder under ``out``; under the
    latency rule, the split comes from ``profiles``."""
    manifest = loaded.manifest
    if manifest.exits is None:
        raise BadInput(f"{loaded.rendered.path}: no field exits: expected the exits to train")
    dataset = next((spec.name for spec in manifest.dataset if spec.name in LABELLED_CLASSES), None)
    if dataset is None:
        line, field = field_line(loaded.rendered, ("dataset",))
        raise BadInput(
            f"{loaded.rendered.path}:{line}: field {field}: expected a labelled dataset to train exits on "
            f"({', '.join(LABELLED_CLASSES)})"
        )
    if needs_profiles(manifest.exits) and profiles is None:
        time_axis = manifest.exits.axis == "time"
        line, field = field_line(loaded.rendered, ("exits", "axis") if time_axis else ("exits", "split", "by"))
        raise BadInput(
            f"{loaded.rendered.path}:{line}: field {field}: the "
            f"{'time axis places exits' if time_axis else 'latency rule splits'} on measured per-layer "
            "profiles: expected --profile DIR, the results folder of a sweep that profiled the model"
        )
    if profiles is not None:
        profiles = replace(profiles, rate=manifest.link[0].rate_bytes)
    return [
        trained
        for model in manifest.model
        for trained in _train_model(model, manifest.exits, manifest.cuts, dataset, out, say, profiles)
    ]


def _train_model(
    model: ModelSpec,
    spec: ExitsSpec,
    cuts: Cuts,
    dataset: str,
    out: Path,
    say: Callable[[str], None],
    profiles: Profiles | None,
) -> list[TrainedModel]:
    """The backbone once, then the exits of each placement on it, frozen."""
    started = time.monotonic()
    training = spec.training
    loaded = load_model(model.name, model.weights, model.classes)
    shape = tuple(model.input_shape) if model.input_shape else loaded.input_shape
    data = labelled_set(dataset, shape[1:])
    parts = stratified_split(data.labels, training.validation, training.test, training.seed)
    backbone_losses: list[float] = []
    if is_none(model.weights) and training.backbone_epochs:
        say(f"{model.name}: training the backbone on {len(parts.train)} samples, {training.backbone_epochs} epochs")
        backbone_losses = train_backbone(
            loaded.module,
            data.inputs[parts.train],
            data.labels[parts.train],
            training.backbone_epochs,
            training.batch,
            training.learning_rate,
            training.seed,
            _epochs(say, "backbone", training.backbone_epochs),
        )
    folder = trained_folder(out, model.name)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(loaded.module.state_dict(), folder / BACKBONE)
    split = build_split_graph(loaded, Granularity.parse(model.granularity), shape)
    record = {
        "model": model.name,
        "granularity": model.granularity,
        "input_shape": list(shape),
        "weights": model.weights,
        "dataset": dataset,
        "classes": data.classes,
        "training": training.model_dump(),
        "template": spec.template,
        "confidence": spec.confidence,
        "backbone_losses": backbone_losses,
        "split": parts.record(),
    }
    trained = []
    joint = training.mode == "joint"
    for one in placed(spec):
        placement_folder = folder / one.placement[0]
        own = copy.deepcopy(loaded) if joint else loaded
        own_split = build_split_graph(own, Granularity.parse(model.granularity), shape) if joint else split
        result = _train_exits(own_split, one, cuts, data, parts, record, placement_folder, say, profiles)
        if joint:
            torch.save(own.module.state_dict(), placement_folder / BACKBONE)
        trained.append(replace(result, seconds=time.monotonic() - started))
        started = time.monotonic()
    return trained


def _train_exits(
    split: SplitGraph,
    spec: ExitsSpec,
    cuts: Cuts,
    data: LabelledSet,
    parts: Split,
    record: dict,
    folder: Path,
    say: Callable[[str], None],
    profiles: Profiles | None = None,
) -> TrainedModel:
    """The exits of one placement on the frozen backbone of ``split`` (or with it, jointly), written
    into ``folder``."""
    training = spec.training
    measured = profiles.of(split) if profiles is not None and needs_profiles(spec) else None
    plan = plan_for(split, spec, measured, listed_cut(cuts), profiles.rate if profiles else None)
    progressive = assemble(split, plan, spec.template, output_classes(split) or data.classes, spec.confidence)
    before = backbone_digest(progressive)
    joint = training.mode == "joint"
    say(
        f"{record['model']}: training {len(progressive.heads)} {spec.placement[0]} exits "
        f"{'with the backbone, jointly' if joint else 'on the frozen backbone'}, {training.exit_epochs} epochs"
    )
    train_inputs, train_labels = data.inputs[parts.train], data.labels[parts.train]
    on_epoch = _epochs(say, "exits", training.exit_epochs)
    if joint:
        weights = training.loss_weights or [1.0] * (len(progressive.heads) + 1)
        exit_losses = train_joint(
            progressive,
            train_inputs,
            train_labels,
            training.exit_epochs,
            weights,
            training.batch,
            training.learning_rate,
            training.seed,
            on_epoch,
        )
    else:
        exit_losses = train_exits(
            progressive,
            train_inputs,
            train_labels,
            training.exit_epochs,
            training.batch,
            training.learning_rate,
            training.seed,
            on_epoch,
        )
    after = backbone_digest(progressive)
    if after != before and not joint:
        raise HarnessError(f"{record['model']}: exit training changed the backbone (digest {before} became {after})")
    logits = {part: exit_logits(progressive, data.inputs[getattr(parts, part)]) for part in PARTS}
    labels = {part: data.labels[getattr(parts, part)] for part in PARTS}
    accuracy = {part: _accuracies(logits[part], labels[part]) for part in PARTS}
    selection = None
    if spec.select is not None:
        validation, test = ((logits[part], labels[part]) for part in PARTS)
        selection = select_thresholds(validation, test, spec.select.max_accuracy_drop, spec.confidence)
    names = tuple(f"exit{number} after {item.after}" for number, item in enumerate(plan.exits, start=1))
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(exit_state(progressive), folder / EXITS)
    for number, head in enumerate(progressive.heads, start=1):
        (folder / f"exit{number}.py").write_text(head.source if head.source.endswith("\n") else head.source + "\n")
    record = record | {
        "placement": spec.placement[0],
        "plan": exit_plan_record(plan, progressive.memory()),
        "exit_losses": exit_losses,
        "backbone_digest": {"before_exits": before, "after_exits": after},
        "accuracy": accuracy,
        "selection": None if selection is None else asdict(selection),
    }
    (folder / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    return TrainedModel(record["model"], spec.placement[0], folder, record["dataset"], names, accuracy, selection, 0.0)


def _epochs(say: Callable[[str], None], what: str, total: int) -> Callable[[int, float], None]:
    return lambda epoch, loss: say(f"  {what} epoch {epoch}/{total}: mean loss {loss:.4f}")


def _accuracies(logits: list[torch.Tensor], labels: torch.Tensor) -> list[float]:
    return [round(float((item.argmax(dim=1) == labels).float().mean()), 6) for item in logits]
