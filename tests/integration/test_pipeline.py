"""Pipelines of worker daemons on loopback: the edge runs to the first cut, each worker to the next,
forwarding to its peer; the last replies to the edge. Outputs equal the unsplit model's."""

import math
import statistics

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import BadInput
from harness.links.matrix import LinkMatrix
from harness.partition.placement.instance import TierHost, lab_instance
from harness.partition.situation import profile_here
from harness.wire import Compression, ModelSpec, client_keys
from harness.wire.frames import Hop, Infer, encode
from harness.wire.keys import generate
from harness.wire.link import EmulatedLink
from harness.wire.tensors import pack
from harness.worker import EdgeDriver, LinkSettings, WorkerClient, WorkerError, synthetic_inputs
from harness.worker.edge import connect_pipeline
from tests.integration.conftest import pipeline_clients

INPUTS = 50


def _spec(split) -> ModelSpec:
    return ModelSpec(name=split.name, granularity=str(split.granularity), input_shape=split.input_shape)


def _cuts(split, count: int) -> list[int]:
    """``count`` increasing cuts spread over the model, the first where a skip connection crosses."""
    skip = next(cut.index for cut in split.cuts if len(cut.live) == 2)
    later = [cut.index for cut in split.cuts if cut.index > skip]
    step = len(later) // count
    return [skip, *(later[step * (number + 1)] for number in range(count - 1))]


def test_three_hosts_two_cuts_give_the_unsplit_output_for_50_inputs(start_worker, resnet18_nodes):
    split = resnet18_nodes
    last = start_worker()
    middle = start_worker("--peer", last.endpoint)
    cuts = _cuts(split, 2)
    inputs = synthetic_inputs(split.input_shape, INPUTS, seed=5)
    with pipeline_clients([middle.endpoint, last.endpoint]) as clients:
        driver = EdgeDriver(clients, split, _spec(split))
        results = [driver.run_pipeline(cuts, example, 0, number) for number, example in enumerate(inputs)]
    with torch.no_grad():
        for example, (output, _, _) in zip(inputs, results, strict=True):
            assert torch.equal(output, split.graph_module(example))
    _, record, hops = results[-1]
    assert record.cut == cuts[0] and record.layer == split.cut(cuts[0]).after
    assert [(hop.hop, hop.endpoint, hop.start_cut, hop.end_cut) for hop in hops] == [
        (1, middle.endpoint, cuts[0], cuts[1]),
        (2, last.endpoint, cuts[1], -1),
    ]
    assert [hop.bytes_raw for hop in hops] == [split.cut(cuts[0]).bytes, split.cut(cuts[1]).bytes]
    assert hops[0].bytes_wire == record.bytes_raw
    assert record.cloud_ns == sum(hop.compute_ns for hop in hops)
    assert all(hop.compute_ns > 0 and hop.busy_ns >= hop.compute_ns for hop in hops)
    worker_busy = sum(hop.busy_ns for hop in hops)
    assert 0 < record.edge_ns + record.encode_ns + record.transfer_ns + record.decode_ns + worker_busy <= record.e2e_ns
    assert record.reply_bytes_raw == 4000
    assert middle.stop() == 0 and last.stop() == 0


def test_four_hosts_with_keys_and_a_one_worker_pipeline_agree(start_worker, resnet18_nodes, tmp_path):
    """CurveZMQ between every pair (workers forward as the sweep's edge client), three workers; the
    same driver with one worker is today's two-host split."""
    split = resnet18_nodes
    generate(tmp_path)
    keys = ("--keys", str(tmp_path))
    third = start_worker(*keys)
    second = start_worker(*keys, "--peer", third.endpoint)
    first = start_worker(*keys, "--peer", second.endpoint)
    cuts = _cuts(split, 3)
    example = synthetic_inputs(split.input_shape, 1, seed=2)[0]
    with torch.no_grad():
        reference = split.graph_module(example)
    clients = connect_pipeline([first.endpoint, second.endpoint, third.endpoint], client_keys(tmp_path))
    try:
        output, _, hops = EdgeDriver(clients, split, _spec(split)).run_pipeline(cuts, example)
        states = [client.ping() for client in clients]
    finally:
        for client in clients:
            client.close()
    assert torch.equal(output, reference)
    assert [hop.start_cut for hop in hops] == cuts
    assert [state.loaded for state in states] == [
        (f"resnet18@node cut {cuts[0]} to {cuts[1]}",),
        (f"resnet18@node cut {cuts[1]} to {cuts[2]}",),
        (f"resnet18@node cut {cuts[2]}",),
    ]
    single = connect_pipeline([third.endpoint], client_keys(tmp_path))
    try:
        alone, record, (hop,) = EdgeDriver(single, split, _spec(split)).run_pipeline([cuts[2]], example)
    finally:
        single[0].close()
    assert torch.equal(alone, reference)
    assert (hop.start_cut, hop.end_cut, hop.bytes_raw, hop.compute_ns) == (
        cuts[2],
        -1,
        record.bytes_raw,
        record.cloud_ns,
    )


def test_a_worker_forwards_only_to_its_listed_peers(start_worker, resnet18_nodes):
    split = resnet18_nodes
    last = start_worker()
    stranger = start_worker()
    middle = start_worker("--peer", last.endpoint)
    cuts = _cuts(split, 2)
    clients = connect_pipeline([middle.endpoint, stranger.endpoint])
    try:
        driver = EdgeDriver(clients, split, _spec(split))
        with pytest.raises(WorkerError, match=f"{stranger.endpoint} is not one of this worker's peers"):
            driver.prepare(cuts)
        with pytest.raises(BadInput, match=r"cuts \[\d+\]: expected one cut per worker of this pipeline \(2\)"):
            driver.prepare(cuts[:1])
        with pytest.raises(BadInput, match="expected increasing cut indices"):
            driver.prepare(cuts[::-1])
    finally:
        for client in clients:
            client.close()
    live, names = split.head(cuts[0])(synthetic_inputs(split.input_shape, 1)[0]), split.live(cuts[0])
    specs, buffers, _ = pack(list(live), [crossing.name for crossing in names], Compression())
    unrouted = Infer(
        id=1, model=_spec(split), cut=cuts[0], values=specs, end=cuts[1], route=(Hop(endpoint=last.endpoint),)
    )
    with (
        WorkerClient(middle.endpoint) as client,
        pytest.raises(WorkerError, match="must name its end cut and reply_to"),
    ):
        client.exchange(encode(unrouted, buffers), 1)
    assert middle.stop() == 0 and "is not one of this worker's peers" in middle.log.read_text()


def test_edge_command_runs_a_pipeline_and_shows_each_worker(start_worker, skipnet):
    _, split = skipnet
    last = start_worker()
    first = start_worker("--peer", last.endpoint)
    cuts = [cut.index for cut in split.cuts][1:3]
    args = ["worker", "edge", "experiments.models:tiny_skipnet", "-g", "node"]
    args += ["--connect", first.endpoint, "--connect", last.endpoint]
    result = CliRunner().invoke(cli, [*args, "--cuts", ",".join(map(str, cuts)), "--repeats", "3"])
    assert result.exit_code == 0, result.output
    assert "experiments.models:tiny_skipnet: 3 inferences, unshaped" in result.output
    rows = [line for line in result.output.splitlines() if "127.0.0.1" in line]
    assert len(rows) == 2
    assert f"{cuts[0]} to {cuts[1]}" in rows[0] and f"{cuts[1]} to output" in rows[1]
    everything = CliRunner().invoke(cli, args)
    assert everything.exit_code == 2
    assert "--cuts all: a pipeline of 2 workers takes its cuts, one per worker, like 3,13" in everything.stderr


RATE = 2e6
DELAY_NS = 2_000_000


def test_three_plans_over_an_emulated_link_measure_as_predicted_and_rank_alike(start_worker, alexnet_split):
    """Every hop paced at 2 MB/s and 2 ms by its sender; the predictions are the placement problem's,
    from a profile taken here and the same link declared for every pair. The link carries most of
    each plan's time, and the profile is the mean of one taken before the measurements and one after,
    so that the other lane's load on a two-core machine shifts both sides alike."""
    split = alexnet_split
    last = start_worker()
    middle = start_worker("--peer", last.endpoint)
    hosts = [TierHost("edge", "edge", 0, 1.0, math.inf), TierHost("mid", "mid", 1, 1.0, math.inf)]
    hosts.append(TierHost("top", "top", 2, 1.0, math.inf))
    links = LinkMatrix.declared([host.name for host in hosts], RATE, DELAY_NS / 1e9)
    before = profile_here(split, 10)
    plans = [[0, 13], [3, 6], [6, 16]]
    inputs = synthetic_inputs(split.input_shape, 3, seed=1)
    measured = []
    clients = connect_pipeline([middle.endpoint, last.endpoint])
    try:
        driver = EdgeDriver(clients, split, _spec(split), link=LinkSettings("emulated", RATE, DELAY_NS))
        for plan in plans:
            driver.run_pipeline(plan, inputs[0])
            runs = [driver.run_pipeline(plan, inputs[number % 3])[1] for number in range(9)]
            measured.append(statistics.median(record.e2e_ns for record in runs) / 1e9)
            floor = sum(EmulatedLink(RATE, DELAY_NS).crossing_ns(hop) for hop in _hop_bytes(split, plan))
            assert min(record.transfer_ns for record in runs) >= 0.99 * floor, plan
    finally:
        for client in clients:
            client.close()
    here = [(first + second) / 2 for first, second in zip(before, profile_here(split, 10), strict=True)]
    instance = lab_instance(split, [cut.index for cut in split.cuts], [here] * 3, hosts, links, "declared")
    predicted = [float(instance.problem.price(np.array([instance.given(plan)]))[0]) for plan in plans]
    for plan, seconds, expected in zip(plans, measured, predicted, strict=True):
        assert abs(seconds / expected - 1) <= 0.25, (plan, seconds, expected)
    assert sorted(range(3), key=measured.__getitem__) == sorted(range(3), key=predicted.__getitem__)


def _hop_bytes(split, plan: list[int]) -> list[int]:
    """The tensor bytes of each hop of ``plan``: the edge's cut, each worker's, the 4000-byte reply."""
    return [split.cut(cut).bytes for cut in plan] + [4000]
