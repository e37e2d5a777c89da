"""A manifest's cuts checked against the models they cut, on the controller, before anything starts.

The schema only knows that cuts are indices; which indices a model has is known once it is traced.
Tracing here (as ``harness plan`` does anyway) turns a cut the model lacks from a failure after
provisioning into one line at the manifest's ``cuts`` field. Each model is traced once per
granularity and input shape in a process, however many runs of the matrix name it, and with its
architecture only: which cuts exist does not depend on the weights, which may live on the hosts.
"""

import functools
from dataclasses import dataclass

from harness.errors import BadInput
from harness.manifest import LoadedManifest
from harness.manifest.schema import ModelSpec
from harness.manifest.validate import field_line
from harness.model import Granularity, build_split_graph, load_model


@dataclass(frozen=True)
class CutTable:
    """Which cut indices a model offers: ``positions`` in all, of which ``sendable`` (each with the
    number of values that cross there) and ``withheld`` (each with the live value that cannot be
    sent); ``single_tensor`` are the sendable ones where exactly one tensor crosses."""

    granularity: str
    positions: int
    sendable: dict[int, int]
    withheld: dict[int, str]
    single_tensor: tuple[int, ...]


@functools.cache
def cut_table(name: str, granularity: str, input_shape: tuple[int, ...] | None) -> CutTable:
    """The cut table of a model's architecture, traced once per process for each argument tuple."""
    split = build_split_graph(load_model(name), Granularity.parse(granularity), input_shape)
    return CutTable(
        granularity=str(split.granularity),
        positions=split.positions,
        sendable={cut.index: len(cut.live) for cut in split.cuts},
        withheld=split.withheld,
        single_tensor=tuple(cut.index for cut in split.cuts if cut.single_tensor),
    )


def check_models(loaded: LoadedManifest) -> None:
    """Everything in the manifest that needs its models traced: the cuts, then the exits."""
    from harness.exits.manifest import check_exits  # it reads the manifest package itself

    check_cuts(loaded)
    check_exits(loaded)


def check_cuts(loaded: LoadedManifest) -> None:
    """Every cut the manifest names exists in every model it names; raises ``BadInput`` at the field."""
    manifest = loaded.manifest
    for position, model in enumerate(manifest.model):
        table = cut_table(model.name, model.granularity, tuple(model.input_shape) if model.input_shape else None)
        offered = list(table.single_tensor if model.single_tensor else table.sendable)
        if not offered:
            line, field = field_line(loaded.rendered, ("model", position))
            raise BadInput(
                f"{loaded.rendered.path}:{line}: field {field}.single_tensor: model '{model.name}' has no cut where "
                f"one tensor crosses at {table.granularity} granularity (expected false, or another granularity)"
            )
        if manifest.cuts != "all":
            for number, entry in enumerate(manifest.cuts):
                loc = ("cuts", number) if isinstance(entry, list) else ("cuts",)
                for cut in entry if isinstance(entry, list) else [entry]:
                    _check_cut(loaded, loc, cut, table, model, offered)
        for index, judged in enumerate(manifest.evaluate):
            if judged.cut is not None:
                _check_cut(loaded, ("evaluate", index, "cut"), judged.cut, table, model, offered)


def _check_cut(
    loaded: LoadedManifest, loc: tuple[int | str, ...], cut: int, table: CutTable, model: ModelSpec, offered: list[int]
) -> None:
    if cut in offered:
        return
    line, field = field_line(loaded.rendered, loc)
    where = f"model '{model.name}' at {table.granularity} granularity"
    if cut >= table.positions:
        reason = f"{where} has no cut {cut}"
    elif cut in table.withheld:
        reason = f"{where} withholds cut {cut}: a value that cannot be sent is live there ({table.withheld[cut]})"
    else:
        reason = (
            f"cut {cut} of {where} sends {table.sendable[cut]} values, and model.single_tensor asks for "
            "cuts where one tensor crosses"
        )
    raise BadInput(f"{loaded.rendered.path}:{line}: field {field}: {reason} (expected {spans(offered)})")


def require_two_groups(loaded: LoadedManifest, command: str) -> None:
    """``command`` works on the two-group form (one edge group, one cloud group, one cut per
    inference); a manifest of more tiers or with a placement is refused at its field."""
    manifest = loaded.manifest
    loc = ("hosts", "tiers") if len(manifest.hosts.pipeline) > 2 else ("placement",) if manifest.placement else None
    if loc is None:
        return
    line, field = field_line(loaded.rendered, loc)
    raise BadInput(
        f"{loaded.rendered.path}:{line}: field {field}: `{command}` decides one cut between one edge group and one "
        f"cloud group (expected hosts: {{edge, cloud}} and no placement); `harness place` chooses and predicts "
        "pipelines over the tiers, and `harness sweep` measures them"
    )


def spans(indices: list[int]) -> str:
    """``0 to 5, 7, 9 to 12``: indices as runs of consecutive numbers, for messages."""
    runs: list[list[int]] = []
    for index in sorted(indices):
        if runs and index == runs[-1][-1] + 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return ", ".join(str(run[0]) if len(run) == 1 else f"{run[0]} to {run[-1]}" for run in runs)
