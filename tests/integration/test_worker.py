"""A worker daemon on loopback and the edge driver: exact results, full records, emulated link."""

import math
import signal
import threading

import pytest
import torch
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import ExperimentFailed
from harness.results import InferenceRecord
from harness.wire import Compression, ModelSpec, client_keys
from harness.wire.keys import generate
from harness.worker import EdgeDriver, LinkSettings, WorkerClient, WorkerError, synthetic_inputs
from tests.integration.conftest import latest_emulated_ns

RATE = 4e6


def _link_ns(record: InferenceRecord) -> float:
    """What the request and the reply take at the emulated rate."""
    return 1e9 * (record.bytes_wire + record.reply_bytes_wire) / RATE


TRIES = 10
ROUNDS = 3


def test_every_alexnet_cut_is_exact_and_fully_recorded_under_an_emulated_link(start_worker, alexnet_split):
    """Ten inferences per cut, all exact. The emulated link never delivers early; lateness is the
    machine's other work (the rest of the suite runs beside this test), so the fastest of the ten is
    the one checked against bytes/rate (of five, one cut's fastest once came 2.8 ms late in CI). A
    cut whose fastest is late is tried ten times more, up to three rounds: once in CI all ten at one
    cut came 12 ms late while a sweep started beside it; a link that is late itself stays late."""
    worker = start_worker()
    spec = ModelSpec(name="alexnet", granularity="module", input_shape=alexnet_split.input_shape)
    example = synthetic_inputs(alexnet_split.input_shape, 1, seed=3)[0]
    with torch.no_grad():
        reference = alexnet_split.graph_module(example)
    link = LinkSettings("emulated", RATE)
    records: list[InferenceRecord] = []
    inferences = 0
    with WorkerClient(worker.endpoint) as client:
        driver = EdgeDriver(client, alexnet_split, spec, Compression(), link)
        for cut in alexnet_split.cuts:
            driver.prepare(cut.index)
            timed: list[InferenceRecord] = []
            for _ in range(ROUNDS):
                tries = [driver.infer(cut.index, example) for _ in range(TRIES)]
                assert all(torch.equal(output, reference) for output, _ in tries), f"cut {cut.index}"
                timed += [record for _, record in tries]
                fastest = min(timed, key=lambda record: record.transfer_ns)
                if fastest.transfer_ns <= latest_emulated_ns(_link_ns(fastest)):
                    break
            early = [record.transfer_ns for record in timed if record.transfer_ns < 0.99 * _link_ns(record)]
            assert early == [], f"cut {cut.index} arrived before bytes/rate"
            records.append(fastest)
            inferences += len(timed)
        state = client.ping()
    assert [record.cut for record in records] == [cut.index for cut in alexnet_split.cuts]
    for record, cut in zip(records, alexnet_split.cuts, strict=True):
        assert record.bytes_raw == cut.bytes
        assert record.reply_bytes_raw == 4000
        assert cut.bytes < record.bytes_wire < cut.bytes + 1024
        expected = _link_ns(record)
        assert record.transfer_ns <= latest_emulated_ns(expected), (record.cut, record.transfer_ns, expected)
        parts = record.edge_ns + record.encode_ns + record.transfer_ns + record.decode_ns
        cloud = record.cloud_decode_ns + record.cloud_ns + record.cloud_encode_ns
        assert 0 < parts + cloud <= record.e2e_ns
        assert record.shaping == "emulated" and record.rate == RATE and record.compression == "none"
        assert record.layer == cut.after
    assert records[0].cloud_ns > records[-1].cloud_ns
    assert state.requests == len(alexnet_split.cuts) + inferences + 1, "a prepare and the tries per cut, a ping"
    assert state.errors == 0
    assert len(state.loaded) == len(alexnet_split.cuts)
    assert worker.stop() == 0
    assert "worker stopped after" in worker.log.read_text()


def test_compressed_requests_and_replies(start_worker, skipnet):
    loaded, split = skipnet
    worker = start_worker()
    spec = ModelSpec(name="experiments.models:tiny_skipnet", granularity="node", input_shape=split.input_shape)
    example = synthetic_inputs(split.input_shape, 1)[0]
    with WorkerClient(worker.endpoint) as client:
        driver = EdgeDriver(client, split, spec, Compression.parse("zstd:5:bit"))
        two_tensor_cut = next(cut for cut in split.cuts if len(cut.live) == 2)
        output, record = driver.infer(two_tensor_cut.index, example)
    assert torch.allclose(output, loaded.module(example), atol=1e-6)
    assert record.compression == "zstd:5:bit"
    assert record.bytes_raw == two_tensor_cut.bytes
    assert record.shaping == "none" and record.rate == math.inf


def test_several_clients_at_once(start_worker, skipnet):
    loaded, split = skipnet
    worker = start_worker()
    spec = ModelSpec(name="experiments.models:tiny_skipnet", granularity="node", input_shape=split.input_shape)
    inputs = synthetic_inputs(split.input_shape, 3, seed=1)
    cuts = [cut.index for cut in split.cuts]
    outcomes: dict[int, list[bool]] = {}

    def client_run(number: int):
        with WorkerClient(worker.endpoint) as client:
            driver = EdgeDriver(client, split, spec)
            results = []
            for cut in cuts[number::3]:
                output, _ = driver.infer(cut, inputs[number])
                results.append(torch.allclose(output, loaded.module(inputs[number]), atol=1e-6))
            outcomes[number] = results

    threads = [threading.Thread(target=client_run, args=(number,)) for number in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(outcomes) == [0, 1, 2]
    assert all(all(results) for results in outcomes.values())
    with WorkerClient(worker.endpoint) as client:
        state = client.ping()
    assert state.clients == 4
    assert state.errors == 0


def test_ping_command_and_sigterm(start_worker):
    worker = start_worker()
    result = CliRunner().invoke(cli, ["worker", "ping", worker.endpoint])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"worker at {worker.endpoint}: up ")
    assert lines[1] == "requests 1 (0 refused or failed), clients 1"
    assert lines[2] == "loaded: nothing yet"
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(5) == 0


def test_ping_of_nobody_fails_with_a_hint():
    result = CliRunner().invoke(cli, ["worker", "ping", "tcp://127.0.0.1:9", "--timeout", "0.3"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "harness: error: worker at tcp://127.0.0.1:9 did not answer within 0.3 s; is it running? "
        "(`harness worker ping tcp://127.0.0.1:9`)"
    )


def test_worker_refuses_names_it_does_not_serve(start_worker):
    worker = start_worker()
    with WorkerClient(worker.endpoint) as client:
        with pytest.raises(WorkerError, match=r"\(refused\): model 'os:getcwd': user models are served from exp"):
            client.prepare(ModelSpec(name="os:getcwd", granularity="module", input_shape=(1,)), 0)
        with pytest.raises(WorkerError, match=r"\(unknown-model\): unknown model 'alexnett'; did you mean alexnet"):
            client.prepare(ModelSpec(name="alexnett", granularity="module", input_shape=(1, 3, 224, 224)), 0)
        with pytest.raises(WorkerError, match=r"\(refused\): weights file '/etc/passwd' is outside"):
            client.prepare(
                ModelSpec(name="alexnet", granularity="module", input_shape=(1, 3, 224, 224), weights="/etc/passwd"), 0
            )
        with pytest.raises(WorkerError, match=r"\(mismatch\): model 'alexnet' has no cut 99"):
            client.prepare(ModelSpec(name="alexnet", granularity="module", input_shape=(1, 3, 224, 224)), 99)
        assert client.ping().errors == 4


def test_keys_on_loopback_refuse_unknown_clients(start_worker, tmp_path):
    generate(tmp_path / "keys")
    generate(tmp_path / "other")
    worker = start_worker("--keys", str(tmp_path / "keys"))
    assert "CurveZMQ, known clients only" in worker.banner
    with WorkerClient(worker.endpoint, client_keys(tmp_path / "keys")) as client:
        assert client.ping().requests == 1
    stranger = client_keys(tmp_path / "other")
    forged = type(stranger)(stranger.public, stranger.secret, client_keys(tmp_path / "keys").server)
    with WorkerClient(worker.endpoint, forged) as client, pytest.raises(ExperimentFailed, match="rejected this client"):
        client.ping(timeout_s=2)
    with WorkerClient(worker.endpoint) as client, pytest.raises(ExperimentFailed, match="rejected this client"):
        client.ping(timeout_s=2)


def test_worker_refuses_to_bind_off_loopback_without_keys():
    result = CliRunner().invoke(cli, ["worker", "serve", "--bind", "tcp://0.0.0.0:5555"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "harness: error: refusing to bind tcp://0.0.0.0:5555 without keys: off loopback every client must "
        "authenticate; make keys with `harness keys gen DIR` and pass --keys DIR"
    )


def test_edge_command_prints_a_table_and_writes_records(start_worker, tmp_path):
    worker = start_worker()
    out = tmp_path / "records.jsonl"
    args = ["worker", "edge", "experiments.models:tiny_skipnet", "-g", "node", "--connect", worker.endpoint]
    result = CliRunner().invoke(cli, [*args, "--cuts", "0,3", "--repeats", "2", "--inputs", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) == 4
    assert "experiments.models:tiny_skipnet: 4 inferences, unshaped, compression none" in result.output
    bad = CliRunner().invoke(cli, [*args, "--cuts", "0,x"])
    assert bad.exit_code == 2 and "--cuts '0,x': expected 'all' or comma-separated integers" in bad.stderr


def test_profile_times_every_layer_on_the_worker(start_worker, skipnet):
    _, split = skipnet
    worker = start_worker()
    spec = ModelSpec(name="experiments.models:tiny_skipnet", granularity="node", input_shape=split.input_shape)
    with WorkerClient(worker.endpoint) as client:
        profiled = client.profile(spec, repeats=3, warmup=1)
    assert [layer.name for layer in profiled.layers] == [layer.name for layer in split.layers]
    assert all(0 < layer.median_ns <= layer.p95_ns for layer in profiled.layers)


def test_the_worker_builds_a_classifier_with_the_classes_the_edge_asks_for(start_worker):
    """Both hosts build ResNet-18 with ten outputs: their weights digests agree and the tail gives ten logits."""
    from harness.model import Granularity, build_split_graph, load_model

    split = build_split_graph(load_model("resnet18", None, 10), Granularity.MODULE, (1, 3, 32, 32))
    spec = ModelSpec(name="resnet18", granularity="module", input_shape=split.input_shape, classes=10)
    worker = start_worker()
    example = synthetic_inputs(split.input_shape, 1)[0]
    with WorkerClient(worker.endpoint) as client:
        output, _ = EdgeDriver(client, split, spec).infer(split.cuts[len(split.cuts) // 2].index, example)
    with torch.no_grad():
        assert torch.equal(output, split.graph_module(example)) and output.shape == (1, 10)
    assert worker.stop() == 0
