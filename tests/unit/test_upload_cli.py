"""``harness plan --upload``: the manifest's upload plans from saved profiles, from a published
profile (with the replay), and bad upload settings refused at their line."""

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.model import Granularity, build_split_graph, load_model

MANIFEST = "manifests/ionn.yml"
PUBLISHED = Path(__file__).resolve().parents[3] / "shared" / "data" / "ionn" / "alexnet-caffe.csv"


def _invoke(*args):
    return CliRunner().invoke(cli, ["plan", MANIFEST, "--upload", *args], catch_exceptions=False)


@pytest.mark.skipif(not PUBLISHED.is_file(), reason=f"the published IONN profile is not at {PUBLISHED}")
def test_published_profile_plans_and_replays_the_seeds_experiment():
    result = _invoke("--simulate", "--published", str(PUBLISHED), "--json")
    assert result.exit_code == 0, result.output
    plans = {item["plan"]: item for item in json.loads(result.output)}
    assert list(plans) == ["all-at-once", "ionn-K0.5", "efficiency", "recursive-efficiency"]
    assert [len(plans[name]["partitions"]) for name in plans] == [1, 3, 3, 7]
    assert plans["all-at-once"]["queries_before_end"] == 0
    ratio = plans["recursive-efficiency"]["queries_before_end"] / plans["ionn-K0.5"]["queries_before_end"]
    assert ratio == pytest.approx(1.551, abs=0.03)
    assert plans["recursive-efficiency"]["partitions"][4]["units"] == ["fc6"]
    for item in plans.values():
        simulated = item["simulated"]
        assert len(simulated["acked_ms"]) == len(item["partitions"])
        assert simulated["upload_end_ms"] >= item["upload_end_ms"]


def test_saved_profiles_with_a_fast_server_upload_the_model(tmp_path):
    """Edge 30 ms a layer and the server 0.1 ms, at 80 Mbps: every plan ends with the weights the
    fastest query runs on the server, and recursive efficiency cuts them finer than ionn."""
    split = build_split_graph(load_model("alexnet"), Granularity.MODULE)
    rows = [
        {
            "host": role,
            "role": role,
            "run": "any",
            "model": "alexnet",
            "layer": layer.name,
            "op": layer.op,
            "median_ns": int(ms * 1e6),
            "p95_ns": int(ms * 1e6),
            "repeats": 10,
        }
        for role, ms in (("edge", 30.0), ("cloud", 0.1))
        for layer in split.layers
    ]
    (tmp_path / "saved").mkdir()
    pd.DataFrame(rows).to_parquet(tmp_path / "saved" / "layers.parquet")
    result = _invoke("--profile", str(tmp_path / "saved"), "--json")
    assert result.exit_code == 0, result.output
    plans = {item["plan"]: item for item in json.loads(result.output)}
    uploaded = {name: [unit for part in item["partitions"] for unit in part["units"]] for name, item in plans.items()}
    assert set(uploaded["recursive-efficiency"]) == set(uploaded["all-at-once"])
    assert len(plans["recursive-efficiency"]["partitions"]) > len(plans["ionn-K0.5"]["partitions"])
    assert plans["recursive-efficiency"]["partitions"][-1]["latency_ms"] == pytest.approx(
        plans["all-at-once"]["partitions"][-1]["latency_ms"]
    )


def _line(text: str) -> int:
    """The line of the manifest that starts with ``text`` (after its indentation)."""
    lines = Path(MANIFEST).read_text().splitlines()
    return next(number for number, line in enumerate(lines, start=1) if line.strip().startswith(text))


PLANS, CHUNK = _line("plans:"), _line("chunk_bytes:")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("plans=[greedy]", f"manifests/ionn.yml:{PLANS}: field upload.plans[0].name: expected one of all-at-once"),
        (
            "plans=[{name: ionn, K: 1.5}]",
            f"manifests/ionn.yml:{PLANS}: field upload.plans[0].K: input should be less than 1",
        ),
        (
            "plans=[{name: ionn, K: 0}]",
            f"manifests/ionn.yml:{PLANS}: field upload.plans[0].K: input should be greater than 0",
        ),
        (
            "plans=[{name: efficiency, K: 0.5}]",
            f"manifests/ionn.yml:{PLANS}: field upload.plans[0]: K: options of ionn",
        ),
        ("chunk=0", f"manifests/ionn.yml:{CHUNK}: field upload.chunk_bytes: expected a number >= 1"),
    ],
)
def test_bad_upload_settings_are_one_line_and_exit_2(setting, message):
    result = CliRunner().invoke(cli, ["plan", MANIFEST, "--upload", "--set", setting])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output
