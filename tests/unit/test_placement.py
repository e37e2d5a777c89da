"""Placement strategies over many hosts: exact ones against exhaustive enumeration, the integer
program's contiguity, addnn's scenario, the genetic algorithm's gap and the rules' error messages."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from harness.bench.placement import model_chain
from harness.cli import cli
from harness.errors import BadInput
from harness.partition.placement import Problem, place, strategy_names
from harness.partition.placement.scenario import Chain, iot_edge_cloud
from harness.registry import PLACEMENT_STRATEGIES


def random_problem(rng: np.random.Generator) -> Problem:
    """Up to 7 segments and 5 hosts in 1 to 3 tiers; some memory tight, some links missing."""
    hosts, segments, tiers = (int(rng.integers(1, top + 1)) for top in (5, 7, 3))
    rate = rng.uniform(1e3, 1e5, (hosts, hosts))
    rate[rng.random((hosts, hosts)) < 0.15] = 0
    return Problem(
        host_names=tuple(f"h{index}" for index in range(hosts)),
        tiers=rng.integers(0, tiers, hosts),
        memory_bytes=np.where(rng.random(hosts) < 0.3, rng.uniform(0, 300, hosts), np.inf),
        compute_s=rng.uniform(0, 1, (hosts, segments)),
        segment_bytes=rng.integers(0, 100, segments).astype(float),
        cut_bytes=rng.integers(0, 10_000, segments + 1).astype(float),
        rate=rate,
        delay_s=rng.uniform(0, 0.01, (hosts, hosts)),
        source=int(rng.integers(0, hosts)),
    )


def two_hosts(tiers=(0, 1), memory=(np.inf, np.inf)) -> Problem:
    """A fast on segments 1 and 4, B on 2 and 3, links cheap: per segment, A,B,B,A is cheapest."""
    return Problem(
        host_names=("A", "B"),
        tiers=np.array(tiers),
        memory_bytes=np.array(memory, dtype=float),
        compute_s=np.array([[0.1, 5.0, 5.0, 0.1], [5.0, 0.1, 0.1, 5.0]]),
        segment_bytes=np.array([10.0, 10.0, 10.0, 10.0]),
        cut_bytes=np.full(5, 1000.0),
        rate=np.full((2, 2), 1e6),
        delay_s=np.full((2, 2), 0.001),
    )


@pytest.fixture(scope="module")
def googlenet():
    return model_chain("googlenet")


@pytest.mark.parametrize("objective", ["latency", "throughput"])
def test_dp_and_ilp_equal_exhaustive_enumeration_on_300_random_instances(objective):
    rng = np.random.default_rng(2026)
    infeasible = 0
    for instance in range(300):
        problem = random_problem(rng)
        reference = place("exhaustive", problem, objective)
        for strategy in ("dp", "ilp"):
            found = place(strategy, problem, objective)
            assert found.feasible == reference.feasible, (instance, strategy, found, reference)
            if reference.feasible:
                assert found.value_s == pytest.approx(reference.value_s, rel=1e-9, abs=1e-12), (instance, strategy)
                assert found.status == "optimal"
            else:
                assert found.status == "infeasible"
        infeasible += not reference.feasible
    assert 10 <= infeasible <= 150


def test_ilp_never_returns_the_a_b_b_a_placement_addnn_admits():
    problem = two_hosts()
    assert tuple(np.argmin(problem.compute_s, axis=0)) == (0, 1, 1, 0)
    with pytest.raises(BadInput, match=r"placement A,B,B,A: segment 4 goes from B \(tier 1\) to A \(tier 0\)"):
        problem.check((0, 1, 1, 0))
    found = place("ilp", problem)
    assert found.hosts == (0, 1, 1, 1) and found.status == "optimal"
    assert found.value_s == pytest.approx(place("exhaustive", problem).value_s, rel=1e-12)
    same_tier = two_hosts(tiers=(0, 0))
    assert place("ilp", same_tier).hosts in {(0, 0, 0, 0), (1, 1, 1, 1)}


def test_memory_and_missing_links_are_rules_with_messages():
    problem = two_hosts(memory=(15.0, np.inf))
    with pytest.raises(BadInput, match=r"placement A,A,B,B: segments 1\.\.2 need 20 B on A, which has 15 B"):
        problem.check((0, 0, 1, 1))
    assert place("dp", problem).hosts == (0, 1, 1, 1)
    cut_off = two_hosts()
    cut_off.rate[0, 1] = 0
    with pytest.raises(BadInput, match="no link measured from A to B"):
        cut_off.check((0, 1, 1, 1))
    assert place("dp", cut_off).hosts == (0, 0, 0, 0)
    cut_off.memory_bytes[0] = 5
    for strategy in ("dp", "ilp", "exhaustive"):
        assert place(strategy, cut_off).status == "infeasible"


def test_stages_add_up_to_the_latency_and_the_slowest_is_the_period():
    problem = two_hosts()
    problem.memory_bytes[:] = np.inf
    latency = place("dp", problem)
    stages = latency.stages(problem)
    assert [(stage.kind, stage.frm, stage.to, stage.first, stage.last) for stage in stages] == [
        ("compute", "A", "A", 0, 1),
        ("hop", "A", "B", 1, 1),
        ("compute", "B", "B", 1, 4),
        ("hop", "B", "A", 4, 4),
    ]
    assert sum(stage.seconds for stage in stages) == pytest.approx(latency.value_s, rel=1e-12)
    assert stages[1].seconds == pytest.approx(0.001 + 1000 / 1e6)
    period = place("dp", problem, "throughput")
    assert period.value_s == pytest.approx(max(stage.seconds for stage in period.stages(problem)), rel=1e-12)


def test_ilp_and_dp_agree_on_addnns_scenario_from_3_to_15_hosts(googlenet):
    for hosts in (3, 6, 9, 12, 15):
        for seed in range(5):
            problem = iot_edge_cloud(googlenet, hosts, seed)
            exact, solved = place("dp", problem), place("ilp", problem)
            assert solved.status == "optimal"
            assert solved.value_s == pytest.approx(exact.value_s, rel=1e-6), (hosts, seed)
            assert solved.bound_s == pytest.approx(exact.value_s, rel=1e-6)


@pytest.mark.parametrize(("hosts", "within"), [(30, 0.03), (100, 0.03), (1000, 0.08)])
def test_genetic_lands_near_the_optimum_and_stops_by_its_rule(googlenet, hosts, within):
    for seed in range(3):
        problem = iot_edge_cloud(googlenet, hosts, seed)
        optimum = place("dp", problem)
        found = place("genetic", problem, seed=seed)
        assert -1e-12 <= found.gap_to(optimum.value_s) <= within, (hosts, seed, found.value_s, optimum.value_s)
        details = dict(found.details)
        assert details["stopped_early"] == 1.0 and 11 <= details["generations"] < 250


def test_genetic_is_deterministic_for_a_seed_and_honours_its_parameters(googlenet):
    problem = iot_edge_cloud(googlenet, 60, 1)
    first, again = place("genetic", problem, seed=7), place("genetic", problem, seed=7)
    assert (first.hosts, first.value_s) == (again.hosts, again.value_s)
    capped = place("genetic", problem, seed=7, generations=2, population=50)
    assert dict(capped.details) == {"generations": 2.0, "stopped_early": 0.0}


def test_ilp_reports_its_time_limit_instead_of_failing(googlenet):
    problem = iot_edge_cloud(googlenet, 60, 0)
    found = place("ilp", problem, "throughput", time_limit_s=0.05)
    assert found.status in {"time-limit", "feasible"}
    exact = place("dp", problem, "throughput").value_s
    if found.feasible:
        assert found.value_s >= exact * (1 - 1e-9)


def test_baselines_put_everything_where_their_names_say(googlenet):
    problem = iot_edge_cloud(googlenet, 9, 0)
    assert set(place("device-only", problem).hosts) == {problem.source}
    cloud = place("cloud-only", problem)
    assert len(set(cloud.hosts)) == 1 and problem.tiers[cloud.hosts[0]] == 2
    even = place("even-split", problem)
    assert [problem.tiers[host] for host in even.hosts] == [0] * 7 + [1] * 7 + [2] * 6
    optimum = place("dp", problem).value_s
    assert all(place(name, problem).value_s >= optimum for name in ("device-only", "cloud-only", "even-split"))


def test_bad_strategy_options_and_objectives_name_what_was_expected():
    problem = two_hosts()
    with pytest.raises(BadInput, match=r"placement strategy 'greedy': expected one of cloud-only, device-only, dp"):
        place("greedy", problem)
    expected = "placement strategy 'ilp': unknown option seed; expected time_limit_s, mip_rel_gap"
    with pytest.raises(BadInput, match=expected):
        place("ilp", problem, seed=1)
    with pytest.raises(BadInput, match="objective 'energy': expected one of latency, throughput"):
        place("dp", problem, "energy")
    with pytest.raises(BadInput, match=r"strategy 'exhaustive': 10 hosts \^ 22 segments"):
        place("exhaustive", iot_edge_cloud(model_chain_stub(), 10, 0))
    assert strategy_names() == sorted(PLACEMENT_STRATEGIES)


def model_chain_stub() -> Chain:
    return Chain("stub", np.full(22, 1e6), np.zeros(22), np.full(23, 1e3))


def test_bench_placement_prints_the_table_and_draws_the_chart(tmp_path):
    chart = tmp_path / "placement.png"
    result = CliRunner().invoke(
        cli,
        [
            "bench",
            "placement",
            "--model",
            "experiments.models:tiny_skipnet",
            "--hosts",
            "3,6",
            "--seeds",
            "2",
            "--strategies",
            "genetic,cloud-only",
            "--chart",
            str(chart),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(row["hosts"], row["strategy"], row["seeds"]) for row in rows] == [
        (hosts, strategy, 2) for hosts in (3, 6) for strategy in ("dp", "genetic", "cloud-only")
    ]
    for row in rows:
        assert row["ratio"] >= 1 - 1e-12 and row["latency_s"] > 0
        assert (row["statuses"] == "optimal") == (row["strategy"] == "dp")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = CliRunner().invoke(cli, ["bench", "placement", "--hosts", "2", "--chart", str(chart)])
    assert bad.exit_code == 2 and "--hosts '2': expected comma-separated host counts of at least 3" in bad.output
