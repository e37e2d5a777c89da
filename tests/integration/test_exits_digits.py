"""``harness exits train`` on the CI variant of the EdgeLessPart manifest: ResNet-18 with ten classes
trained on the bundled digits at 32 x 32 (the manifest's 8 epochs), then its exits on the frozen
backbone, all on CPU in seconds."""

import json
import subprocess
import sys

from tests.integration.conftest import REPO


def test_resnet18_on_digits_learns_and_its_exits_leave_the_backbone_alone(tmp_path):
    out = tmp_path / "exits"
    command = [sys.executable, "-m", "harness.cli", "exits", "train", "manifests/edgelesspart.yml"]
    command += ["--set", "per_part=2", "--set", "select={max_accuracy_drop: 0.02}", "--out", str(out)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    print(done.stdout)
    record = json.loads((out / "experiments.models-digits_resnet18" / "training.json").read_text())
    assert record["backbone_digest"]["before_exits"] == record["backbone_digest"]["after_exits"]
    assert {name: len(indices) for name, indices in record["split"].items()} == {
        "train": 1077,
        "validation": 360,
        "test": 360,
    }
    *exits, final = record["accuracy"]["test"]
    assert final >= 0.85, record["accuracy"]
    assert len(exits) == 4 and min(exits) > 2 * 0.1, "every exit well above chance (ten classes)"
    assert [item["part"] for item in record["plan"]["exits"]] == ["edge", "edge", "cloud", "cloud"]
    assert "final classifier" in done.stdout and "test accuracy" in done.stdout

    # Thresholds picked on validation keep its accuracy within the drop; the test part reports them.
    chosen = record["selection"]
    assert len(chosen["thresholds"]) == 4 and all(0 <= value <= 1 for value in chosen["thresholds"])
    assert chosen["validation"]["accuracy"] >= chosen["final_validation"] - 0.02 - 1e-9
    assert chosen["test"]["shares"][0] + chosen["test"]["shares"][1] > 0.5, "most digits leave on the edge"
    assert "thresholds picked on validation within 0.02" in done.stdout
