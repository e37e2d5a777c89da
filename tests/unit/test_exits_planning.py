"""Early exits, planned: the split rules, where exits attach inside each part, the serverless price
of an offloaded sample and the non-dominated front, each against figures worked out by hand."""

import itertools
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import BadInput
from harness.exits import load_prices, non_dominated, place_exits, split_by_latency, split_by_layers, split_by_memory
from harness.exits.cost import PRICES
from harness.exits.placement import PARETO_ALPHA, fractions

PARAMS = [100, 300, 400, 200]
"""Cumulative 100, 400, 800, 1000: 70% is 700."""


def test_the_memory_rule_cuts_where_the_head_holds_at_most_or_at_least_the_fraction():
    assert split_by_memory(PARAMS, 0.7, "at_most") == 2
    assert split_by_memory(PARAMS, 0.7, "at_least") == 3
    assert split_by_memory(PARAMS, 0.7, "at_most", allowed=[1, 3]) == 1, "only single-tensor cuts are offered"


def test_the_latency_rule_takes_the_deepest_head_within_the_clouds_whole_network():
    edge, cloud = [1e-3, 2e-3, 3e-3, 4e-3, 5e-3], [0.2e-3, 0.4e-3, 0.6e-3, 0.8e-3, 1.0e-3]
    assert split_by_latency(edge, cloud) == 2, "1 + 2 ms on the edge against the cloud's 3 ms"
    transfer = [0, 0.5e-3, 0.5e-3, 0, 0, 0]
    assert split_by_latency(edge, cloud, transfer_s=transfer) == 1, "with the link, cut 2 takes 3.5 ms"


def test_the_layers_rule_and_rules_no_cut_satisfies():
    assert split_by_layers(10, 0.7) == 7
    assert split_by_layers(10, 0.7, allowed=[2, 5, 8]) == 5
    with pytest.raises(BadInput, match=r"at most 70% of the parameter bytes on the edge \(the nearest, cut 1, "):
        split_by_memory([800, 100, 100], 0.7)
    with pytest.raises(BadInput, match="within the cloud's 1 ms for the whole network"):
        split_by_latency([2e-3, 1e-3], [0.5e-3, 0.5e-3])
    with pytest.raises(BadInput, match="expected a number between 0 and 1"):
        split_by_layers(10, 1.5)


def test_linear_exits_sit_at_quarters_of_a_forty_node_part_before_snapping():
    exits = place_exits(0, 40, 3, "linear")
    assert [item.position for item in exits] == [10.0, 20.0, 30.0]
    assert [item.cut for item in exits] == [10, 20, 30]


def test_pareto_exits_follow_the_truncated_quantiles_and_snap_to_single_tensor_cuts():
    exits = place_exits(0, 50, 3, "pareto")
    assert [item.position for item in exits] == pytest.approx([1.277, 1.801, 3.214], abs=1e-3)
    assert [item.cut for item in exits] == [1, 2, 3]
    assert pytest.approx(math.log(5) / math.log(4)) == PARETO_ALPHA
    snapped = place_exits(100, 150, 3, "pareto", allowed=[101, 104, 110, 149])
    assert [item.cut for item in snapped] == [101, 104, 110], "the second takes the nearest free cut"
    late = fractions("pareto", 3, 50, direction="late") * 50
    assert late == pytest.approx([52 - 1.277, 52 - 1.801, 52 - 3.214], abs=1e-3), "mirrored: crowding at the end"


def test_exits_on_a_flops_axis_attach_where_the_flops_reach_their_fraction():
    flops = [10, 10, 80, 10, 10, 80]  # the third and sixth layers are heavy
    exits = place_exits(0, 6, 3, "flops", axis=flops)
    assert [item.position for item in exits] == pytest.approx([0.15 * 200, 0.30 * 200, 0.45 * 200])
    assert [item.cut for item in exits] == [2, 3, 4], "cumulative 20, 100, 110 are nearest 30, 60 and 90"
    few = place_exits(0, 3, 3, "linear", allowed=[1])
    assert [item.cut for item in few] == [1], "a part with one free cut keeps one exit"


def test_more_than_three_exits_per_part_is_refused():
    with pytest.raises(BadInput, match=r"^4 exits per part: expected 1 to 3 \(each exit costs memory on its host\)$"):
        place_exits(0, 40, 4)


def test_the_seeds_prices_give_the_published_cost_vectors():
    prices = load_prices()
    assert (prices.as_of, prices.cpu_unit) == ("2023-08", "GHz")
    assert prices.compute_cost(128, 0.100) == pytest.approx(2.3125e-7, rel=1e-12)
    assert prices.compute_cost(2048, 0.100) == pytest.approx(2.9e-6, rel=1e-12)
    assert prices.billed_seconds(0.260) == pytest.approx(0.3)
    assert prices.billed_seconds(0.300) == pytest.approx(0.3), "an exact multiple is not rounded up again"
    one = prices.sample_cost(128, 0.100, egress_bytes=4_000)
    assert one == pytest.approx(0.0000004 + 2.3125e-7 + 4_000 / 1e9 * 0.12)
    second = load_prices(PRICES / "gcf-2nd-gen-tier1.yaml")
    assert second.cpu_unit == "vCPU" and second.compute_cost(2048, 1.0) == pytest.approx(2 * 0.0000025 + 0.000024)
    with pytest.raises(BadInput, match=r"memory 100 MB: expected a tier of .* \(128, 256, 512"):
        prices.compute_cost(100, 0.1)


def test_a_price_file_that_is_not_a_price_model_is_one_line(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(
        (PRICES / "gcf-1st-gen-tier1.yaml").read_text().replace("per_gb_second: 0.0000025", "per_gb_second: -1")
    )
    with pytest.raises(BadInput, match=rf"^price model {path}: field per_gb_second: Input should be greater than"):
        load_prices(path)


def _brute_front(points: np.ndarray) -> list[int]:
    return [
        index
        for index, row in enumerate(points)
        if not any(np.all(other <= row) and np.any(other < row) for other in points)
    ]


@pytest.mark.parametrize("seed", range(20))
def test_the_front_is_the_brute_force_non_dominated_set(seed):
    generator = np.random.default_rng(seed)
    points = generator.integers(0, 6, size=(40, 3)).astype(float)  # small integers: ties and duplicates
    assert non_dominated(points) == _brute_front(points)


def test_the_front_of_a_hand_made_set():
    points = [(10, 0.10, 1.0), (20, 0.05, 1.0), (30, 0.05, 2.0), (10, 0.10, 1.0), (5, 0.30, 0.5)]
    assert non_dominated(points) == [0, 1, 3, 4], "the third is beaten by the second; equal rows both stay"
    assert list(itertools.chain(non_dominated(np.empty((0, 3))))) == []


def test_model_exits_resolves_the_split_and_each_parts_exits_on_the_traced_model():
    options = ["--split", "layers:0.5", "--per-part", "2", "--placement", "flops", "--axis", "flops", "--json"]
    result = CliRunner().invoke(cli, ["model", "exits", "alexnet", *options])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert (plan["cut"], plan["after"]) == (11, "features.10")
    exits = [(item["part"], item["cut"], item["after"]) for item in plan["exits"]]
    assert exits == [
        ("edge", 1, "features.0"),
        ("edge", 4, "features.3"),
        ("cloud", 12, "features.11"),
        ("cloud", 13, "features.12"),
    ]
    assert all((item["cut"] < plan["cut"]) == (item["part"] == "edge") for item in plan["exits"]), "no exit straddles"
    shares = [item["flops_share"] for item in plan["exits"]]
    assert shares == sorted(shares) and 0 < shares[0] < shares[-1] < 1


def test_model_exits_refuses_a_bad_split_rule_in_one_line():
    result = CliRunner().invoke(cli, ["model", "exits", "alexnet", "--split", "memory:lots"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "harness: error: split rule 'memory:lots': expected memory:FRACTION[:at_most|at_least], layers:FRACTION "
        "or latency"
    )


def test_the_latency_rule_reads_a_sweeps_profiles(tmp_path):
    """1 ms per layer on the edge, 0.5 ms on the cloud: the cloud runs AlexNet's 22 layers in 11 ms,
    the edge its first 11 in as long."""
    from harness.model import Granularity, build_split_graph, load_model
    from harness.results import ResultsFolder, write_layers

    split = build_split_graph(load_model("alexnet", None), Granularity.MODULE)
    folder = ResultsFolder(tmp_path / "sweep")
    write_layers(
        folder,
        [
            {"host": host, "role": role, "run": "r", "model": "alexnet", "layer": layer.name, "op": layer.op}
            | {"median_ns": ns, "p95_ns": ns, "repeats": 10}
            for host, role, ns in (("rpi1", "edge", 1_000_000), ("gpu1", "cloud", 500_000))
            for layer in split.layers
        ],
    )
    result = CliRunner().invoke(
        cli, ["model", "exits", "alexnet", "--split", "latency", "--profile", str(folder.path), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["cut"] == 11
    missing = CliRunner().invoke(cli, ["model", "exits", "alexnet", "--split", "latency"])
    assert missing.exit_code == 2 and missing.output.strip().endswith(
        "the latency rule needs each layer's edge and cloud time: a sweep's profiles (--profile)"
    )
