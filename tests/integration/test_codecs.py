"""Cut codecs end to end: a worker on loopback under the emulated link, where int8 sends a quarter of
AlexNet's pool1 and the transfer follows the bytes; then ``harness sweep manifests/codecs.yml`` on
inventory/local with the digits ResNet-18 trained here, where accuracy is measured, not assumed."""

import statistics
import subprocess
import sys

import pandas as pd
import torch

from harness.model import Granularity, build_split_graph, load_model
from harness.wire import CutCodec, ModelSpec
from harness.worker import EdgeDriver, LinkSettings, WorkerClient, synthetic_inputs
from tests.integration.conftest import REPO
from tests.integration.test_sweep import harness, hosts_dir  # noqa: F401 (a fixture)

RATE = 4e6
REPEATS = 12
SAMPLES = 100
BANDWIDTH = "200kB/s"
"""Slow enough that a codec's bytes set it apart: at 1 MB/s int8 and int8 per channel at the last
cut differ by 1 ms, less than the drift between two runs beside the rest of the suite (one CI run
measured them 4 ms apart the other way); here by 5 ms."""


def _transfers(endpoint: str, split, cut: int, codec: str) -> tuple[list, torch.Tensor]:
    spec = ModelSpec(name=split.name, granularity=str(split.granularity), input_shape=split.input_shape)
    (example,) = synthetic_inputs(split.input_shape, 1, seed=3)
    with WorkerClient(endpoint) as client:
        driver = EdgeDriver(client, split, spec, link=LinkSettings("emulated", RATE, 0), codec=CutCodec.parse(codec))
        driver.infer(cut, example)
        runs = [driver.infer(cut, example, repeat) for repeat in range(REPEATS)]
    return [record for _, record in runs], runs[-1][0]


def test_int8_at_alexnet_pool1_sends_a_quarter_and_its_transfer_follows_the_bytes(start_worker):
    split = build_split_graph(load_model("alexnet"), Granularity.MODULE, (1, 3, 224, 224))
    pool1 = next(cut.index for cut in split.cuts if cut.after == "features.2")
    worker = start_worker()
    plain, exact = _transfers(worker.endpoint, split, pool1, "none")
    quantised, approximate = _transfers(worker.endpoint, split, pool1, "int8")
    payload = split.cut(pool1).bytes
    header = plain[0].bytes_wire - payload
    assert 0 < header < 1024, "the uncompressed frame is the tensor and its header"
    for record in quantised:
        assert record.codec == "int8" and record.bytes_raw == payload
        assert payload // 4 < record.bytes_wire <= payload // 4 + header + 64, "a quarter, a scale and a zero point"
        assert record.codec_encode_ns > 0 and record.cloud_codec_ns > 0
        assert record.cloud_codec_ns <= record.cloud_decode_ns and record.codec_encode_ns <= record.encode_ns
    for records in (plain, quantised):
        expected_ns = statistics.median(1e9 * (r.bytes_wire + r.reply_bytes_wire) / RATE for r in records)
        measured_ns = statistics.median(record.transfer_ns for record in records)
        print(f"{records[0].codec}: {measured_ns / 1e6:.2f} ms measured, {expected_ns / 1e6:.2f} ms by bytes/rate")
        assert abs(measured_ns / expected_ns - 1) <= 0.10, records[0].codec
    assert approximate.argmax() == exact.argmax() and (approximate - exact).abs().max() < 0.1 * exact.abs().max()


def test_a_sweep_measures_each_codecs_accuracy_and_a_partitioner_chooses_the_codec(hosts_dir, tmp_path):  # noqa: F811
    """On a slow link, where sending fewer bytes pays, a partitioner that may choose the codec takes
    a quantised one, within the accuracy floor, and close to the measured best."""
    trained = tmp_path / "trained"
    command = [sys.executable, "-m", "harness.cli", "exits", "train", "manifests/edgelesspart.yml"]
    command += ["--set", "placement=[linear]", "--set", "exit_epochs=1"]  # the backbone is what is used
    done = subprocess.run([*command, "--out", str(trained)], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    weights = trained / "experiments.models-digits_resnet18" / "backbone.pt"
    out = tmp_path / "results"
    codecs = "codecs=[none, fp16, int8, int8-channel, experiments.codecs:scrambled]"
    sets = ["--set", f"samples={SAMPLES}", "--set", codecs, "--set", f"weights={weights}", "--set", "floor=0.02"]
    sets += ["--set", f"bandwidth={BANDWIDTH}"]
    swept = harness(hosts_dir, "sweep", "manifests/codecs.yml", *sets, "--out", str(out), timeout=900)
    assert swept.returncode == 0, swept.stderr[-3000:]

    table = pd.read_csv(out / "codecs.csv").set_index(["cut", "codec"])
    print(table.to_string())
    assert sorted(table.index.get_level_values("cut").unique()) == [4, 16, 30]
    assert (table["n"] == SAMPLES).all()
    for cut in (4, 16, 30):
        row = table.loc[cut]
        uncompressed = row.at["none", "accuracy"]
        assert uncompressed >= 0.85, "the backbone is trained"
        assert (row["uncompressed_accuracy"] == uncompressed).all()
        assert abs(row.at["fp16", "accuracy"] - uncompressed) <= 0.005, cut
        assert abs(row.at["int8", "accuracy"] - uncompressed) <= 0.02, cut
        assert abs(row.at["int8-channel", "accuracy"] - uncompressed) <= 0.02, cut
        assert row.at["experiments.codecs:scrambled", "accuracy"] <= 0.25, "a scrambled tensor answers by chance"
        assert row.at["fp16", "agreement"] >= 0.99 and row.at["none", "agreement"] == 1.0
        raw = row.at["none", "bytes_raw"]
        header = row.at["none", "bytes_wire"] - raw
        assert raw // 2 < row.at["fp16", "bytes_wire"] <= raw // 2 + header + 64
        assert raw // 4 < row.at["int8", "bytes_wire"] <= raw // 4 + header + 64

    records = pd.read_parquet(out / "records.parquet")
    labelled = records.dropna(subset=["label"])
    assert len(labelled) == len(records) and set(records["codec"]) == {
        "none",
        "fp16",
        "int8",
        "int8-channel",
        "experiments.codecs:scrambled",
    }
    coded = records[records["codec"] != "none"]
    assert (coded["codec_encode_ns"] > 0).all() and (coded["cloud_codec_ns"] > 0).all()
    assert (records.loc[records["codec"] == "none", ["codec_encode_ns", "cloud_codec_ns"]] == 0).all().all()
    assert (out / "rate_accuracy.png").stat().st_size > 20_000

    choices = pd.read_csv(out / "codec_choices.csv").set_index("partitioner")
    print(choices.to_string())
    assert list(choices.index) == ["neurosurgeon", "oracle"]
    chosen = choices.loc["neurosurgeon"]
    assert chosen["codec"] in ("int8", "int8-channel"), "on a slow link a quantised codec pays"
    assert chosen["regret"] <= 1.10
    assert chosen["accuracy"] >= table.loc[(chosen["cut"], "none"), "accuracy"] - 0.02
    oracle = choices.loc["oracle"]
    assert oracle["regret"] == 1.0 and (oracle["codec"], oracle["cut"]) == (oracle["best_codec"], oracle["best_cut"])
    report = (out / "report.html").read_text()
    assert "<h2>Cut codecs</h2>" in report and "rate_accuracy.png" in report
    assert (out / "time_by_cut_codecs.png").stat().st_size > 20_000 and "time_by_cut_codecs.png" in report
    assert "Partitioners choosing the codec" in report
