"""``harness sweep manifests/ionn.yml`` on inventory/local through Ansible, the CI variant: ResNet-18
at 64 x 64 over 400 Mbit (as IONN's code counts it), all at once and layer by layer, two uploads each.
Both hosts are this machine, so the planners' plans upload little; the two baselines upload every
weight whatever it is worth, which is what the sweep's path needs exercised."""

import pandas as pd

from harness.model import Granularity, build_split_graph, load_model
from harness.model.analysis import attribute
from harness.results.catalog import Catalog
from tests.integration.test_sweep import harness, hosts_dir  # noqa: F401 - the fixture

SETTINGS = ["--set", "model=resnet18", "--set", "shape=[1,3,64,64]", "--set", "bandwidth=400mibit"]
SETTINGS += ["--set", "repeats=2", "--set", "plans=[all-at-once, layerwise]"]


def test_uploads_run_on_the_hosts_and_land_in_the_results(hosts_dir, tmp_path):  # noqa: F811
    out = tmp_path / "results" / "ionn"
    done = harness(hosts_dir, "sweep", "manifests/ionn.yml", *SETTINGS, "--out", str(out), timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "0 inferences and 4 uploads recorded" in done.stdout
    partitions = pd.read_parquet(out / "uploads.parquet")
    queries = pd.read_parquet(out / "queries.parquet")
    per_upload = partitions.groupby(["plan", "repeat"])["partition"].max().to_dict()
    assert per_upload[("all-at-once", 0)] == per_upload[("all-at-once", 1)] == 1
    layers = per_upload[("layerwise", 0)]
    assert layers == per_upload[("layerwise", 1)] > 10
    split = build_split_graph(load_model("resnet18"), Granularity.MODULE, (1, 3, 64, 64))
    weights = [attribute(split.graph_module, name) for name in split.tensor_names]
    model_bytes = sum(tensor.numel() * tensor.element_size() for tensor in weights)
    for _, group in partitions.groupby(["plan", "repeat"]):
        assert group["param_bytes"].sum() == model_bytes
        assert (group["acked_ns"] >= group["last_sent_ns"]).all()
        assert group["acked_ns"].is_monotonic_increasing
    assert queries["agrees"].all()
    for (plan, repeat), group in queries.groupby(["plan", "repeat"]):
        end = partitions[(partitions["plan"] == plan) & (partitions["repeat"] == repeat)]["acked_ns"].max()
        assert (group["before_end"] == (group["end_ns"] <= end)).all()
        assert (group["stage"] == group["stage"].max()).sum() == 5, "five queries after the upload"
        assert (group["start_ns"] >= end).sum() >= 5
        assert group["stage"].is_monotonic_increasing
    assert (queries[queries["plan"] == "all-at-once"]["before_end"]).sum() == 0, "the first query waits for all"
    summary = pd.read_csv(out / "uploads.csv")
    assert list(summary["partitions"]) == [1, layers]
    assert (summary["client_scale"] > 0).all() and summary["upload_share"].between(0, 1, inclusive="right").all()
    assert (partitions.groupby("plan")[["client_scale", "upload_share"]].nunique() == 1).all().all(), "once a run"
    assert (out / "upload_queries.png").stat().st_size > 10_000
    assert "Incremental upload" in (out / "report.html").read_text()
    catalog = Catalog(tmp_path / "results")
    counted = catalog.query("SELECT plan, count(*) AS n FROM uploads GROUP BY plan ORDER BY plan")
    assert list(counted["n"]) == [2, 2 * layers]
    assert catalog.query("SELECT count(*) AS n FROM queries")["n"][0] == len(queries)
