"""Partitioners that choose the cut codec as well as the cut, judged against the measured best.

Runs that differ only in their codec form a group. Each partitioner decides once per codec, on that
codec's situation (its bytes and its time per cut) restricted to the cuts where the codec keeps
accuracy within the floor: at most ``max_accuracy_drop`` below the uncompressed model's at the same
cut, as the sweep measured on its labelled inputs. Its choice is the pair (codec, cut) it predicts
fastest. The measured best is the fastest pair within the floor, and the regret is the measured
latency of the choice over it. A codec whose accuracy was not measured at a cut is not allowed there.
"""

from dataclasses import replace

import pandas as pd

from harness.manifest.matrix import Run
from harness.partition import Situation, decide
from harness.results.codecs import UNCOMPRESSED
from harness.wire.compression import Compression

CHOICE_COLUMNS = (
    "group",
    "partitioner",
    "codec",
    "cut",
    "layer",
    "predicted_ms",
    "measured_ms",
    "accuracy",
    "best_codec",
    "best_cut",
    "best_ms",
    "regret",
    "max_accuracy_drop",
)


def codec_groups(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs alike but for their codec, named by the uncompressed run's id (or the first's)."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.model_dump_json(exclude={"id", "index", "codec"}), []).append(run)
    named = {}
    for members in groups.values():
        if len({run.codec for run in members}) > 1:
            plain = next((run for run in members if run.codec == UNCOMPRESSED), members[0])
            named[plain.id] = members
    return named


def group_rows(codecs: pd.DataFrame, run: Run) -> pd.DataFrame:
    """The rows of ``codecs.csv`` for ``run``'s group: its model and its blosc2 compression."""
    compression = str(Compression.parse(run.compression))
    return codecs[(codecs["model"] == run.model.name) & (codecs["compression"] == compression)]


def allowed_cuts(rows: pd.DataFrame, codec: str, max_drop: float) -> set[int]:
    """The cuts where ``codec`` keeps accuracy within ``max_drop`` of the uncompressed model's, in
    ``rows`` of one group."""
    rows = rows[rows["codec"] == codec].dropna(subset=["accuracy"])
    kept = rows[rows["accuracy"] >= rows["uncompressed_accuracy"] - max_drop - 1e-12]
    return {int(cut) for cut in kept["cut"]}


def choose(
    group: str,
    members: list[Run],
    situations: dict[str, Situation],
    codecs: pd.DataFrame,
    partitioners: list[dict],
    max_drop: float,
) -> list[dict]:
    """One row per partitioner: its (codec, cut) within the floor, against the measured best."""
    rows = group_rows(codecs, members[0])
    options: dict[str, tuple[Situation, set[int]]] = {}
    for run in members:
        situation = situations.get(run.id)
        if situation is None:
            continue
        allowed = allowed_cuts(rows, run.codec, max_drop) & set(situation.cuts)
        if allowed:
            options[run.codec] = (situation, allowed)
    measured = {
        (codec, cut): situation.measured_ms[cut]
        for codec, (situation, allowed) in options.items()
        for cut in allowed
        if cut in situation.measured_ms
    }
    best = min(measured, key=lambda pair: (measured[pair], pair)) if measured else None
    accuracy = rows.set_index(["codec", "cut"])["accuracy"]
    choices = []
    for spec in partitioners:
        settings = {key: value for key, value in spec.items() if key != "name"}
        picks = {}
        for codec, (situation, allowed) in options.items():
            restricted = replace(situation, cuts=sorted(allowed))
            decision = decide(spec["name"], restricted, **settings).decision
            picks[codec] = (decision.cut, decision.predicted_ms[decision.cut])
        codec = min(picks, key=lambda name: (picks[name][1], name))
        cut, predicted = picks[codec]
        picked_ms = measured.get((codec, cut))
        choices.append(
            {
                "group": group,
                "partitioner": " ".join([spec["name"], *(f"{key}={value}" for key, value in settings.items())]),
                "codec": codec,
                "cut": cut,
                "layer": options[codec][0].split.cut(cut).after,
                "predicted_ms": predicted,
                "measured_ms": picked_ms,
                "accuracy": float(accuracy.get((codec, cut), float("nan"))),
                "best_codec": best[0] if best else None,
                "best_cut": best[1] if best else None,
                "best_ms": measured[best] if best else None,
                "regret": picked_ms / measured[best] if best and picked_ms is not None else None,
                "max_accuracy_drop": max_drop,
            }
        )
    return choices
