"""A manifest's ``exits`` resolved on the models it names, and checked there before anything starts.

The schema knows the fields; whether a template builds an exit for the tensor at its attach point,
whether the parts leave room for the exits asked for, whether a listed cut is one where one tensor
crosses and whether the model gives as many logits as the labelled dataset has classes is known
only once the model is traced. Each of these is one line at the field, and exit status 2.

The latency rule needs the per-layer profiles a sweep measures, so under it the exits are resolved,
and their template checked, once those exist.
"""

import dataclasses
import json
import math
from pathlib import Path

from harness.errors import BadInput
from harness.exits.data import LABELLED_CLASSES
from harness.exits.resolve import ExitPlan, SplitRule, plan_exits
from harness.exits.templates import build_exit
from harness.exits.trained import exits_folder, trained_root
from harness.manifest import LoadedManifest
from harness.manifest.matrix import TrainedExits
from harness.manifest.schema import ExitsSpec
from harness.manifest.validate import field_line
from harness.model import Granularity, build_split_graph, load_model
from harness.model.graph import SplitGraph


def split_rule(spec: ExitsSpec) -> SplitRule:
    return SplitRule(spec.split.by, spec.split.fraction, spec.split.bound)


def needs_profiles(spec: ExitsSpec) -> bool:
    """Whether the exit plan is made on measured per-layer profiles (the latency rule, the time axis)."""
    return spec.split.by == "latency" or spec.axis == "time"


def placed(spec: ExitsSpec) -> list[ExitsSpec]:
    """``spec`` once for each of its placements (what a run, or one set of trained exits, has)."""
    return [spec.model_copy(update={"placement": [placement]}) for placement in spec.placement]


def plan_for(
    split: SplitGraph,
    spec: ExitsSpec,
    profiles: tuple[list[float], list[float]] | None = None,
    cut: int | None = None,
    rate: float | None = None,
) -> ExitPlan:
    """The exit plan of ``spec`` (one placement, as ``placed`` gives) on ``split`` (``profiles``:
    each layer's edge and cloud ns, for latency; ``cut``: a listed cut instead of the split rule's;
    ``rate``: the link's bytes per second, for latency with ``include_transfer``)."""
    if len(spec.placement) != 1:
        raise ValueError(f"an exit plan has one placement, not {spec.placement}")
    transfer = None
    if spec.split.by == "latency" and spec.split.include_transfer and cut is None:
        if not rate:
            raise BadInput("exits.split.include_transfer needs the link's rate: expected a link with a finite rate")
        sendable = {item.index: item.bytes for item in split.cuts}
        transfer = [1e9 * sendable[index] / rate if index in sendable else math.inf for index in range(split.positions)]
    return plan_exits(
        split,
        split_rule(spec),
        spec.placement[0],
        spec.per_part,
        spec.axis,
        spec.alpha,
        spec.direction,
        profiles,
        cut,
        transfer,
        spec.locality,
    )


def listed_cut(cuts) -> int | None:
    """The one cut a manifest with exits may list, which replaces the split rule's; None for the rule."""
    return None if cuts == "all" else cuts[0]


def output_classes(split: SplitGraph) -> int | None:
    """How many logits the model gives, where its output is one tensor of (batch, classes)."""
    live = split.cuts[-1].live
    if len(live) == 1 and live[0].kind == "tensor" and len(live[0].shape) == 2:
        return int(live[0].shape[1])
    return None


def _architecture(name: str, granularity: str, input_shape: tuple[int, ...] | None, classes: int | None) -> SplitGraph:
    """A model's traced architecture (traced for each check, not kept: a controller holds no models)."""
    return build_split_graph(load_model(name, None, classes), Granularity.parse(granularity), input_shape)


def check_exits(loaded: LoadedManifest) -> None:
    """Every model of the manifest can carry its exits; raises ``BadInput`` at the field that cannot."""
    manifest = loaded.manifest
    spec = manifest.exits
    if spec is None:
        return

    def refuse(loc: tuple[int | str, ...], message: str) -> BadInput:
        line, field = field_line(loaded.rendered, loc)
        return BadInput(f"{loaded.rendered.path}:{line}: field {field}: {message}")

    for position, model in enumerate(manifest.model):
        shape = tuple(model.input_shape) if model.input_shape else None
        split = _architecture(model.name, model.granularity, shape, model.classes)
        where = f"model '{model.name}' at {split.granularity} granularity"
        if split.input_shape[0] != 1:
            raise refuse(
                ("model", position, "input_shape"),
                f"a batch of {split.input_shape[0]}: progressive inference takes one sample at a time, since "
                "samples of one batch may leave at different exits (expected a batch of 1)",
            )
        single = {cut.index for cut in split.cuts if cut.single_tensor}
        if manifest.cuts != "all":
            if len(manifest.cuts) != 1:
                raise refuse(
                    ("cuts",),
                    f"exits are trained and run for one split, and {len(manifest.cuts)} cuts are listed "
                    "(expected one cut, or none for the split rule's)",
                )
            (cut,) = manifest.cuts
            if isinstance(cut, list) or cut not in single:
                raise refuse(
                    ("cuts", 0),
                    f"exits attach on each side of one cut where one tensor crosses, and {where} sends "
                    f"more than one value at {cut} (expected one of the cuts `harness model inspect "
                    f"{model.name} --single-tensor` lists)",
                )
        classes = output_classes(split)
        for index, dataset in enumerate(manifest.dataset):
            wanted = LABELLED_CLASSES.get(dataset.name)
            if wanted is not None and classes != wanted:
                raise refuse(
                    ("model", position, "name"),
                    f"{where} gives {classes if classes else 'no single tensor of'} logits, and dataset "
                    f"'{manifest.dataset[index].name}' has {wanted} classes (expected a model with {wanted} outputs)",
                )
        if needs_profiles(spec):
            continue
        for one in placed(spec):
            try:
                plan = plan_for(split, one, cut=listed_cut(manifest.cuts))
            except BadInput as error:
                raise refuse(("exits", "per_part"), str(error)) from None
            weights = spec.training.loss_weights
            if weights is not None and (spec.training.mode != "joint" or len(weights) != len(plan.exits) + 1):
                raise refuse(
                    ("exits", "training", "loss_weights"),
                    f"{len(weights)} loss weights: expected one per exit ({len(plan.exits)} in the "
                    f"{one.placement[0]} placement) and one for the final classifier, with mode: joint",
                )
            for item in plan.exits:
                (leaf,) = split.cut(item.cut).live
                try:
                    build_exit(spec.template, tuple(leaf.shape[1:]), classes or 1, split.graph_module)
                except BadInput as error:
                    raise refuse(("exits", "template"), f"{error} (the exit after {item.after})") from None


def check_sweepable(loaded: LoadedManifest) -> None:
    """A sweep with exits runs what ``harness exits train`` wrote, on one edge and one cloud group;
    raises ``BadInput`` at the field that stands in its way."""
    manifest = loaded.manifest
    if manifest.exits is None:
        return

    def refuse(loc: tuple[int | str, ...], message: str) -> BadInput:
        line, field = field_line(loaded.rendered, loc)
        return BadInput(f"{loaded.rendered.path}:{line}: field {field}: {message}")

    if manifest.pipelined:
        raise refuse(("hosts",), "exits run between one edge and one cloud group: expected hosts {edge, cloud}")
    for run in loaded.runs:
        missing = next((path for path in (run.model.weights, run.exit_weights) if not Path(str(path)).is_file()), None)
        if missing is not None:
            raise refuse(
                ("exits",),
                f"no trained exits for model '{run.model.name}' ({missing} does not exist): expected "
                f"`harness exits train {loaded.rendered.path}` first, or exits.trained naming the folder it wrote",
            )


def with_trained_plans(loaded: LoadedManifest) -> LoadedManifest:
    """Each run with exits at the cut and attach points its exits were trained on, as their training
    record says (under the latency rule or the time axis, ``harness exits train --profile`` made
    that plan on measured profiles, which the hosts never see)."""
    exits = loaded.manifest.exits
    if exits is None:
        return loaded
    root = trained_root(loaded.manifest.name, exits.trained)
    runs = []
    for run in loaded.runs:
        record = exits_folder(root, run.model.name, run.exits.placement[0]) / "training.json"
        plan = json.loads(record.read_text())["plan"]
        attach = {part: [item["cut"] for item in plan["exits"] if item["part"] == part] for part in ("edge", "cloud")}
        trained = TrainedExits(cut=plan["cut"], **attach)
        runs.append(run.model_copy(update={"cuts": [plan["cut"]], "trained_exits": trained}))
    return dataclasses.replace(loaded, runs=runs)
