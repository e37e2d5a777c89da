"""Progressive inference over a worker daemon on loopback: the edge runs its part with its exits, a
sample an edge exit takes sends nothing, and the worker runs the rest with its own exits, built
from the template and the weights file it was given, never from anything in the request."""

import statistics

import msgspec
import pytest
import torch

from harness.exits.assemble import assemble, build_part
from harness.exits.progressive import max_softmax
from harness.exits.resolve import SplitRule, plan_exits
from harness.exits.training import exit_logits
from harness.exits.weights import exit_state
from harness.model import Granularity, build_split_graph, load_model
from harness.wire import ModelSpec
from harness.wire.frames import ExitsSpec
from harness.worker import EdgeDriver, WorkerClient, WorkerError, synthetic_inputs
from harness.worker.edge import EdgeExits, LinkSettings

CLASSES = 10


@pytest.fixture
def progressive(skipnet, tmp_path):
    """tiny_skipnet split in half by layers, one linear exit in each part, its exits' weights in a
    weights directory as ``harness exits train`` writes them."""
    _, split = skipnet
    plan = plan_exits(split, SplitRule("layers", 0.5), "linear", 1)
    torch.manual_seed(4)
    model = assemble(split, plan, "linear", CLASSES)
    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save(exit_state(model), weights / "exits.pt")
    remote = _remote(tuple(item.cut for item in plan.exits if item.part == "cloud"), weights)
    return split, plan, model, remote, weights


def _remote(cuts: tuple[int, ...], weights, threshold: float = 1.0, carried: tuple[int, ...] = ()) -> ExitsSpec:
    """The worker's exits: linear ones after ``cuts``, the second exit on, weights in ``weights``."""
    return ExitsSpec(
        template="linear",
        cuts=cuts,
        first=2,
        classes=CLASSES,
        confidence="max_softmax",
        threshold=threshold,
        weights=str(weights / "exits.pt"),
        carried=carried,
    )


def _driver(client, split, model, plan, remote, threshold):
    spec = ModelSpec(name="experiments.models:tiny_skipnet", granularity="module", input_shape=split.input_shape)
    return EdgeDriver(client, split, spec, exits=EdgeExits(model.edge, remote, threshold))


def test_samples_leave_where_the_offline_logits_say_and_an_edge_exit_sends_nothing(start_worker, progressive):
    split, plan, model, remote, weights = progressive
    worker = start_worker("--weights-dir", str(weights))
    inputs = synthetic_inputs(split.input_shape, 20, seed=9)
    offline = [exit_logits(model, example) for example in inputs]
    with torch.no_grad():
        plain = [split.graph_module(example) for example in inputs]
    with WorkerClient(worker.endpoint) as client:
        never = _driver(client, split, model, plan, remote, 1.0)
        for example, reference in zip(inputs, plain, strict=True):
            output, record = never.infer(plan.cut, example)
            assert torch.equal(output, reference), "at c_thr 1.0 the output is the plain model's, bit for bit"
            assert (record.exit, record.exit_host, record.threshold) == (0, "", 1.0)
            assert record.bytes_raw == split.cut(plan.cut).bytes and record.cloud_ns > 0
            assert record.cloud_peak_rss > 50e6 and record.edge_peak_rss > 50e6

        always = _driver(client, split, model, plan, remote, 0.0)
        for example, logits in zip(inputs, offline, strict=True):
            output, record = always.infer(plan.cut, example)
            assert torch.equal(output, logits[0]), "at c_thr 0 every sample leaves at the first exit"
            assert (record.exit, record.exit_host, record.request) == (1, "edge", 0)
            assert record.bytes_wire == 0 and record.cloud_ns == 0 and record.transfer_ns == 0
            assert record.cloud_peak_rss is None and record.edge_peak_rss > 50e6, "torch alone takes more"
            assert record.confidence == pytest.approx(float(max_softmax(logits[0])[0]))

        # A threshold between a sample's two exit confidences: the edge's exit passes it on, the cloud's takes it.
        scores = [(float(max_softmax(logits[0])[0]), float(max_softmax(logits[1])[0])) for logits in offline]
        number = next(index for index, (edge, cloud) in enumerate(scores) if cloud > edge + 1e-3)
        threshold = sum(scores[number]) / 2
        output, record = _driver(client, split, model, plan, remote, threshold).infer(plan.cut, inputs[number])
        assert (record.exit, record.exit_host) == (2, "cloud")
        assert torch.allclose(output, offline[number][1], atol=1e-6)
        assert record.confidence == pytest.approx(scores[number][1], abs=1e-6)
        assert record.bytes_raw == split.cut(plan.cut).bytes
    assert worker.stop() == 0


def test_the_worker_reads_exit_weights_and_templates_only_from_its_weights_dir(start_worker, progressive, tmp_path):
    split, plan, model, remote, _ = progressive
    worker = start_worker()
    example = synthetic_inputs(split.input_shape, 1)[0]
    with WorkerClient(worker.endpoint) as client:
        with pytest.raises(WorkerError, match=r"exit weights '.*exits\.pt' is outside this worker's --weights-dir"):
            _driver(client, split, model, plan, remote, 1.0).infer(plan.cut, example)
        elsewhere = msgspec.structs.replace(remote, template=str(tmp_path / "exit.py.j2"))
        with pytest.raises(WorkerError, match=r"exit template '.*exit\.py\.j2' is outside this worker's --weights-dir"):
            _driver(client, split, model, plan, elsewhere, 1.0).infer(plan.cut, example)
        foreign = msgspec.structs.replace(remote, template="os.path:join")
        with pytest.raises(WorkerError, match=r"exit template 'os\.path:join': user exit factories are served from"):
            _driver(client, split, model, plan, foreign, 1.0).infer(plan.cut, example)
    assert worker.stop() == 0


def test_a_sample_that_leaves_before_the_costly_layers_never_runs_them(start_worker, tmp_path):
    """Exit 1 sits before heavy_middle_net's two costly convolutions (about 320 of its 322 MFLOPs),
    both on the edge: samples that leave there spend a small part of the edge time of samples that
    run the whole edge part, as measured by the edge, and send nothing."""
    model = load_model("experiments.models:heavy_middle_net")
    split = build_split_graph(model, Granularity.MODULE)
    cut, before_heavy, in_cloud = 8, 4, 9
    torch.manual_seed(5)
    edge, edge_heads = build_part(split, None, cut, [before_heavy], "linear", CLASSES)
    _, cloud_heads = build_part(split, cut, None, [in_cloud], "linear", CLASSES)
    weights = tmp_path / "weights"
    weights.mkdir()
    state = {
        f"exit{number}.{name}": tensor
        for number, heads in ((1, edge_heads), (2, cloud_heads))
        for name, tensor in heads[0].module.state_dict().items()
    }
    torch.save(state, weights / "exits.pt")
    remote = _remote((in_cloud,), weights)
    spec = ModelSpec(name="experiments.models:heavy_middle_net", granularity="module", input_shape=split.input_shape)
    worker = start_worker("--weights-dir", str(weights))
    inputs = synthetic_inputs(split.input_shape, 9, seed=2)
    edge_ms = {}
    with WorkerClient(worker.endpoint) as client:
        for threshold in (0.0, 1.0):
            driver = EdgeDriver(client, split, spec, exits=EdgeExits(edge.eval(), remote, threshold))
            driver.prepare(cut)
            records = [driver.infer(cut, example)[1] for example in inputs]
            assert {record.exit for record in records} == ({1} if threshold == 0 else {0})
            assert all((record.bytes_wire == 0) == (threshold == 0) for record in records)
            edge_ms[threshold] = statistics.median(record.edge_ns for record in records) / 1e6
    assert worker.stop() == 0
    print(f"median edge time: {edge_ms[0.0]:.2f} ms leaving at exit 1, {edge_ms[1.0]:.2f} ms through the edge part")
    assert edge_ms[0.0] < 0.5 * edge_ms[1.0], edge_ms


RATE = 5e5
"""Bytes per second of the emulated link the straddling exit's input crosses."""


def test_an_exit_straddling_the_cut_sends_its_input_and_the_link_takes_bytes_over_rate_longer(
    start_worker, skipnet, tmp_path
):
    """Exits placed across the cut (the baseline the seed argues against): the edge tries none, so
    every sample crosses with the input of the exit attached before the cut as well. Against the
    same exits tried where they sit, each sample sends exactly that tensor more, and the emulated
    link takes its bytes over the rate longer (within 10%); the exit the sample leaves at is the
    same one, tried on the other host."""
    _, split = skipnet
    plan = plan_exits(split, SplitRule("layers", 0.5), "linear", 1, locality="across")
    (before,) = [item.cut for item in plan.exits if item.part == "edge"]
    (after,) = [item.cut for item in plan.exits if item.part == "cloud"]
    torch.manual_seed(6)
    model = assemble(split, plan, "linear", CLASSES)
    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save(exit_state(model), weights / "exits.pt")
    spec = ModelSpec(name="experiments.models:tiny_skipnet", granularity="module", input_shape=split.input_shape)
    link = LinkSettings("emulated", RATE)
    worker = start_worker("--weights-dir", str(weights))
    inputs = synthetic_inputs(split.input_shape, 7, seed=3)
    # Below every sample's exit-1 confidence, each leaves at exit 1: on the edge, or carried to the worker.
    low = min(float(max_softmax(exit_logits(model, example)[0])[0]) for example in inputs) - 1e-3

    def driver(client: WorkerClient, carry: bool, threshold: float) -> EdgeDriver:
        remote = _remote((after,), weights, threshold, (before,) if carry else ())
        return EdgeDriver(client, split, spec, link=link, exits=EdgeExits(model.edge, remote, threshold, carry=carry))

    found = {}
    with WorkerClient(worker.endpoint) as client:
        for carry, host in ((False, "edge"), (True, "cloud")):
            never = driver(client, carry, 1.0)
            never.prepare(plan.cut)
            found[carry] = [never.infer(plan.cut, example)[1] for example in inputs]
            record = driver(client, carry, low).infer(plan.cut, inputs[0])[1]
            assert (record.exit, record.exit_host) == (1, host)
    assert worker.stop() == 0
    plain, carried = found[False], found[True]
    extra = split.cut(before).bytes
    assert {b.bytes_raw - a.bytes_raw for a, b in zip(plain, carried, strict=True)} == {extra}
    assert all(record.exit == 0 for record in plain + carried), "at c_thr 1 no sample leaves early"
    wire = statistics.median(b.bytes_wire - a.bytes_wire for a, b in zip(plain, carried, strict=True))
    slower_ms = _median_ms(carried) - _median_ms(plain)
    expected_ms = 1e3 * wire / RATE
    print(f"{extra:,} bytes more a sample; transfer {slower_ms:.1f} ms longer, {expected_ms:.1f} ms by bytes over rate")
    assert abs(slower_ms - expected_ms) <= 0.1 * expected_ms


def _median_ms(records) -> float:
    return statistics.median(record.transfer_ns for record in records) / 1e6
