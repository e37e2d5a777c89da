"""Deciders on hand-made profiles: the seed's regression and inequality, DADS's min cut, the oracle."""

import json
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from harness.errors import BadInput
from harness.model import Granularity, build_split_graph, load_model
from harness.partition import decide, decider_names, partitioner_names
from harness.partition.dads import edge_units, flow_graph
from harness.partition.evaluate import judge
from harness.partition.neurosurgeon import Line, first_cut, fit, regressions
from harness.partition.situation import Link, situation_from_profiles
from harness.registry import DECIDERS, SCHEDULES

REPO = Path(__file__).resolve().parents[2]
RATE = 4e6
MS = 1e6


@pytest.fixture(scope="module")
def skipnet():
    """tiny_skipnet at node granularity: 11 layers, a skip connection live across cuts 4 to 6."""
    return build_split_graph(load_model("experiments.models:tiny_skipnet"), Granularity.NODE)


def test_regression_reproduces_a_known_line():
    line = fit([0, 1000, 5000, 20000], [7 + 3 * x for x in (0, 1000, 5000, 20000)])
    assert line.slope == pytest.approx(3) and line.intercept == pytest.approx(7)
    assert fit([0, 0, 0], [2.0, 4.0, 9.0]) == Line(0.0, 5.0)


def test_regression_is_per_layer_type_on_parameter_bytes(skipnet):
    edge = [float(value) for value in range(1, 12)]
    situation = situation_from_profiles(skipnet, edge, [1.0] * 11, Link(RATE))
    sizes = {layer.name: layer.param_bytes for layer in situation.layers}
    assert sizes["stem.0"] == (16 * 3 * 9 + 16) * 4
    assert sizes["stem.1"] == 4 * 16 * 4 + 8, "weight, bias, mean, var, and the int64 batch count"
    assert sizes["relu"] == sizes["add"] == 0
    lines = regressions(situation.layers, "edge")
    assert set(lines) == {"Conv2d", "BatchNorm2d", "ReLU", "add", "relu", "AdaptiveAvgPool2d", "flatten", "Linear"}
    assert lines["ReLU"] == Line(0.0, (3 + 5) / 2), "both ReLU modules hold no parameters: their mean"
    convs = [(sizes[name], edge[index]) for index, name in ((0, "stem.0"), (3, "body.0"), (5, "body.2"))]
    assert lines["Conv2d"](convs[0][0]) == pytest.approx(fit(*zip(*convs, strict=True))(convs[0][0]))


def test_inequality_picks_the_first_cut_where_offloading_wins(skipnet):
    """Edge 10 ms a layer, cloud 1 ms: offloading at cut k saves 9 ms for each later layer but
    costs the transfer of what is live at k. At 4 MB/s the input (12,288 B) takes 3.1 ms."""
    situation = situation_from_profiles(skipnet, [10 * MS] * 11, [1 * MS] * 11, Link(RATE))
    edge_ns, cloud_ns = situation.edge_ns, situation.cloud_ns
    assert first_cut(situation, edge_ns, cloud_ns) == 0
    slow = situation_from_profiles(skipnet, [10 * MS] * 11, [1 * MS] * 11, Link(1e5))
    # 12,288 + 40 B at 100 kB/s is 123 ms, more than the edge's 110 ms; the first cut whose transfer
    # plus the cloud's rest is under the edge's rest is 9 (pool: 64 B, 2 layers left).
    assert first_cut(slow, slow.edge_ns, slow.cloud_ns) == 9
    decision = decide("neurosurgeon", slow, criterion="next-layer").decision
    assert decision.cut == 9 and decision.argmin == 9
    assert decision.predicted_ms[11] == pytest.approx(110 + 1e3 * (40 + 40) / 1e5)


def test_the_energy_objective_keeps_more_on_the_edge_where_the_radio_is_power_hungry(skipnet):
    """Edge 10 ms a layer at 1 W, cloud 1 ms: latency offloads the input (3.1 ms at 4 MB/s). With
    a radio of 100 W sending those 12,328 bytes costs 308 mJ, more than running nine layers (90 mJ)
    and sending the pool's 64 bytes (and the 40 of the reply: 2.6 mJ)."""
    situation = situation_from_profiles(skipnet, [10 * MS] * 11, [1 * MS] * 11, Link(RATE))
    assert decide("neurosurgeon", situation).decision.cut == 0
    energy = decide("neurosurgeon", situation, objective="energy", edge_watts=1.0, radio_watts=100.0).decision
    assert energy.cut == 9 and energy.argmin == 9
    assert energy.note == "objective energy: 92.6 mJ on the edge predicted at cut 9"
    by_hand = {
        cut: 10 * cut + (0 if cut == 11 else 100 * 1e3 * (situation.cut_bytes[cut] + 40) / RATE)
        for cut in situation.cuts
    }
    assert min(by_hand, key=by_hand.get) == 9 and by_hand[0] == pytest.approx(308.2)
    quiet = decide("neurosurgeon", situation, objective="energy", edge_watts=1.0, radio_watts=1.0).decision
    assert quiet.cut == 0, "a frugal radio sends the input, as latency does"
    with pytest.raises(BadInput, match=r"objective energy needs edge_watts .* and radio_watts"):
        decide("neurosurgeon", situation, objective="energy", edge_watts=1.0)
    with pytest.raises(BadInput, match="objective 'cost', expected one of latency, energy"):
        decide("neurosurgeon", situation, objective="cost")


def test_the_energy_objective_is_judged_in_measured_energy(skipnet):
    """Measured: the edge's millijoules and the transfer's milliseconds per cut; the radio is charged
    its watts over the transfer, as the objective predicts it."""
    import pandas as pd

    from harness.partition.evaluate import measured_edge_energy

    records = pd.DataFrame(
        {
            "run": ["r"] * 6,
            "cut": [0, 0, 9, 9, 11, 11],
            "edge_joules": [0.004, 0.006, 0.089, 0.091, 0.110, None],
            "transfer_ns": [3_000_000, 3_200_000, 30_000, 30_000, 0, 0],
        }
    )
    measured = measured_edge_energy(records, "r")
    assert measured == {0: (5.0, 3.1), 9: (90.0, 0.03), 11: (110.0, 0.0)}
    situation = situation_from_profiles(skipnet, [10 * MS] * 11, [1 * MS] * 11, Link(RATE), [0, 9, 11])
    energy = {"name": "neurosurgeon", "objective": "energy", "edge_watts": 1.0, "radio_watts": 100.0}
    rows = judge("r", situation, [energy, {"name": "neurosurgeon"}], None, measured).rows
    assert [row["cut"] for row in rows] == [9, 0]
    assert rows[0]["energy_regret"] == 1.0 and rows[1]["energy_regret"] is None, "latency is judged in time"
    cheap_radio = judge("r", situation, [{**energy, "radio_watts": 1.0}], None, measured).rows[0]
    assert cheap_radio["cut"] == 0 and cheap_radio["energy_regret"] == 1.0, "5 + 3.1 mJ, the least"


def test_a_manifest_asking_for_energy_gives_both_powers(tmp_path):
    from harness.manifest import load_manifest

    path = tmp_path / "energy.yml"
    path.write_text(
        "name: tiny\nmodel:\n  name: alexnet\nlink:\n  rate: 4MB/s\n"
        "evaluate:\n  - {name: neurosurgeon, objective: energy, edge_watts: 2}\n"
    )
    with pytest.raises(BadInput) as caught:
        load_manifest(path, [])
    assert str(caught.value) == (
        f"{path}:7: field evaluate[0].objective: expected edge_watts and radio_watts beside objective energy"
    )
    path.write_text(path.read_text().replace("edge_watts: 2", "edge_watts: 2, radio_watts: 4"))
    assert load_manifest(path, []).manifest.evaluate[0].radio_watts == 4


def test_the_two_criteria_differ_where_the_next_layer_is_cheap(skipnet):
    """The first layer costs 0.5 ms on the edge, every other 10 ms (cloud: a tenth). Offloading the
    input (3.1 ms at 4 MB/s) pays for all remaining layers (inequality 3) but not for the first
    layer alone (inequality 4), which waits for a cut whose live tensors send in under 9 ms: 9."""
    edge = [0.5 * MS] + [10 * MS] * 10
    situation = situation_from_profiles(skipnet, edge, [value / 10 for value in edge], Link(RATE))
    assert first_cut(situation, situation.edge_ns, situation.cloud_ns, "remaining") == 0
    assert first_cut(situation, situation.edge_ns, situation.cloud_ns, "next-layer") == 9
    assert decide("neurosurgeon", situation, criterion="remaining").decision.cut == 0
    next_layer = decide("neurosurgeon", situation, criterion="next-layer").decision
    assert next_layer.cut == 9 and next_layer.argmin == 0, "the default's pick is reported beside the rule's"
    argmin = decide("neurosurgeon", situation).decision
    assert argmin.cut == argmin.argmin == min(argmin.predicted_ms, key=argmin.predicted_ms.get) == 0
    with pytest.raises(BadInput, match="criterion 'sum', expected one of argmin, next-layer, remaining"):
        decide("neurosurgeon", situation, criterion="sum")


def test_dads_never_runs_a_layer_on_the_edge_after_its_input_went_to_the_cloud(skipnet):
    """The convolutions are slow on the edge and everything else is slow in the cloud: without the
    infinite reverse edges the cheapest cut sends the convolutions to the cloud and their outputs back
    uncharged. The valid minimum is a prefix, and it equals the best cut priced one by one."""
    slow_convs = {"stem.0", "body.0", "body.2"}
    edge = [1000 * MS if layer.name in slow_convs else 1 * MS for layer in skipnet.layers]
    cloud = [1 * MS if layer.name in slow_convs else 1000 * MS for layer in skipnet.layers]
    situation = situation_from_profiles(skipnet, edge, cloud, Link(1e9))
    graph = flow_graph(situation)
    units = edge_units(situation)
    values = [vertex for vertex in graph if isinstance(vertex, tuple)]
    assert len(values) == 12, "the input and every layer feed a later layer (the last feeds the output)"
    for value in values:
        (producer,) = graph.predecessors(value)
        for consumer in graph.successors(value):
            if consumer in units:
                assert producer in units | {"input"}, f"layer {consumer} runs on the edge after {producer} left it"
    decision = decide("dads", situation).decision
    best = min(situation.profiled_ms, key=situation.profiled_ms.get)
    assert decision.cut == best == 11 and decision.note == ""
    value, _ = nx.minimum_cut(flow_graph(situation, prefix_only=True), "edge", "cloud")
    assert value / MS + situation.transfer_ms(0) - 1e3 * situation.cut_bytes[0] / 1e9 == pytest.approx(
        situation.profiled_ms[best], rel=1e-6
    )


def test_dads_charges_a_tensor_read_by_two_cloud_layers_once(skipnet):
    """At cut 4 the stem's output is read by body.0 and by the add: the min cut's value for the
    prefix ending there counts its 65,536 bytes once, as the cut table does."""
    edge = [1 * MS] * 4 + [1000 * MS] * 7
    cloud = [1000 * MS] * 4 + [1 * MS] * 7
    situation = situation_from_profiles(skipnet, edge, cloud, Link(RATE))
    decision = decide("dads", situation).decision
    assert decision.cut == 4
    value, _ = nx.minimum_cut(flow_graph(situation, prefix_only=True), "edge", "cloud")
    assert value / MS == pytest.approx(4 + 7 + 1e3 * situation.cut_bytes[4] / RATE, rel=1e-6)
    assert situation.cut_bytes[4] == 131072


def test_oracle_and_fixed(skipnet):
    situation = situation_from_profiles(
        skipnet, [1.0] * 11, [1.0] * 11, Link(RATE), cuts=[0, 3, 9], measured_ms={0: 5.0, 3: 2.5, 9: 2.5}
    )
    assert decide("oracle", situation).decision.cut == 3
    assert decide("fixed", situation, cut=9).decision.cut == 9
    with pytest.raises(BadInput, match=r"partitioner 'fixed' needs a cut among the allowed ones .* \(got 4\)"):
        decide("fixed", situation, cut=4)
    unmeasured = situation_from_profiles(skipnet, [1.0] * 11, [1.0] * 11, Link(RATE))
    with pytest.raises(BadInput, match="partitioner 'oracle' needs measured records"):
        decide("oracle", unmeasured)
    with pytest.raises(BadInput, match="partitioner 'magic': expected one of dads, fixed, neurosurgeon, oracle"):
        decide("magic", unmeasured)


def test_p_slower_separates_a_slow_pick_from_one_the_measurements_cannot_tell_from_the_best(skipnet):
    """Six inferences per cut. Cut 0's are all slower than the best cut's: the one-sided U test's
    smallest p-value for 6 against 6, 1 / C(12, 6) = 1/924. Cut 3's interleave with the best's."""
    best = [100.0, 102.0, 104.0, 106.0, 108.0, 110.0]
    samples = {0: [value + 50 for value in best], 3: [value + 1 for value in best], 9: best}
    medians = {cut: sorted(values)[2] / 2 + sorted(values)[3] / 2 for cut, values in samples.items()}
    situation = situation_from_profiles(skipnet, [1.0] * 11, [1.0] * 11, Link(RATE), [0, 3, 9], medians)
    specs = [{"name": "oracle"}, {"name": "fixed", "cut": 0}, {"name": "fixed", "cut": 3}]
    judged = judge("run", situation, specs, {cut: np.array(values) for cut, values in samples.items()})
    rows = {row["partitioner"]: row for row in judged.rows}
    assert rows["oracle"]["cut"] == 9 and rows["oracle"]["p_slower"] is None
    assert rows["fixed cut=0"]["regret"] == pytest.approx(155 / 105)
    assert rows["fixed cut=0"]["p_slower"] == pytest.approx(1 / 924)
    assert rows["fixed cut=3"]["regret"] == pytest.approx(106 / 105) and rows["fixed cut=3"]["p_slower"] > 0.3
    assert judge("run", situation, specs).rows[1]["p_slower"] is None, "no samples, no p-value"


def test_profiles_must_match_the_model(skipnet):
    with pytest.raises(BadInput, match=r"profiles of model .* have 3 edge and 11 cloud layers; expected 11 at node"):
        situation_from_profiles(skipnet, [1.0] * 3, [1.0] * 11, Link(RATE))


def test_bench_partition_prints_one_row_per_model_and_partitioner():
    from click.testing import CliRunner

    from harness.cli import cli

    skipnet = "experiments.models:tiny_skipnet"
    result = CliRunner().invoke(
        cli, ["bench", "partition", "--models", skipnet, "--upload-models", skipnet, "--repeats", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(row["partitioner"], row["layers"], row["cuts"]) for row in rows] == [
        ("neurosurgeon", 11, 12),
        ("dads", 11, 12),
        ("oracle", 11, 12),
        ("upload ionn", 11, 8),
        ("upload efficiency", 11, 8),
        ("upload recursive-efficiency", 11, 8),
    ]
    assert all(row["median_ms"] > 0 and row["target_ms"] is None for row in rows)


def test_every_name_the_manifest_accepts_has_an_implementation():
    """The schema checks names from harness.registry without importing the partitioners."""
    assert partitioner_names() == sorted(SCHEDULES)
    assert decider_names() == sorted(DECIDERS)
    script = (
        "import sys; from harness.manifest import load_manifest; "
        "load_manifest('manifests/neurosurgeon.yml'); "
        "print(sorted({m for m in sys.modules if m.startswith('harness.partition')}))"
    )
    probe = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO)
    assert probe.stdout == "[]\n", "validating a manifest imports no partitioner: the manifest package stands below"
