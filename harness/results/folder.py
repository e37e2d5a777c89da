"""Where a sweep's files live: one folder per sweep, every file name decided here and nowhere else.

A new folder must be new or empty, so the results of two sweeps can never be mixed, and nothing a
finished sweep wrote is ever overwritten by the next one.
"""

import json
import re
import secrets
from datetime import datetime
from pathlib import Path

from harness.errors import BadInput

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """``text`` usable as part of a file name on every platform (run ids and manifest names are free text)."""
    return _UNSAFE.sub("_", text).strip("._") or "_"


class ResultsFolder:
    """A sweep's results folder. ``ResultsFolder(path)`` starts a new one; ``ResultsFolder.open`` reads one."""

    def __init__(self, path: Path | str, *, existing: bool = False):
        self.path = Path(path)
        if existing:
            if not self.path.is_dir():
                raise BadInput(f"results folder {self.path} does not exist; expected a folder written by a sweep")
            return
        if self.path.exists() and not self.path.is_dir():
            raise BadInput(f"results folder {self.path} is a file; expected a new or empty folder")
        if self.path.is_dir() and any(self.path.iterdir()):
            raise BadInput(
                f"results folder {self.path} is not empty; expected a new or empty folder, "
                "so that results of different sweeps are never mixed or overwritten"
            )
        self.path.mkdir(parents=True, exist_ok=True)

    @classmethod
    def open(cls, path: Path | str) -> "ResultsFolder":
        return cls(path, existing=True)

    @classmethod
    def timestamped(cls, root: Path | str, name: str, now: datetime | None = None) -> "ResultsFolder":
        """A new ``<root>/<name>-<YYYYmmdd-HHMMSS>`` folder, the layout every sweep uses."""
        stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
        return cls(Path(root) / f"{safe_name(name)}-{stamp}")

    def __repr__(self) -> str:
        return f"ResultsFolder({str(self.path)!r})"

    @property
    def sweep_id(self) -> str:
        """The sweep's own name for its spools on the edge hosts, kept in the folder (``sweep.id``) so
        that ``--resume`` finds them: made on first asking."""
        kept = self.path / "sweep.id"
        if not kept.is_file():
            kept.write_text(secrets.token_hex(8) + "\n", encoding="utf-8")
        return kept.read_text(encoding="utf-8").strip()

    @property
    def manifest(self) -> Path:
        return self.path / "manifest.rendered.yml"

    @property
    def environment(self) -> Path:
        return self.path / "environment.json"

    @property
    def records_csv(self) -> Path:
        return self.path / "records.csv"

    @property
    def records_parquet(self) -> Path:
        return self.path / "records.parquet"

    @property
    def failures(self) -> Path:
        """Inferences the worker did not finish (retried, or ending the sweep), one row each."""
        return self.path / "failures.csv"

    @property
    def layers(self) -> Path:
        return self.path / "layers.parquet"

    @property
    def hops(self) -> Path:
        """Each worker's share of each inference through a pipeline over tiers."""
        return self.path / "hops.parquet"

    @property
    def uploads(self) -> Path:
        """With an incremental upload: each partition of each upload, measured beside planned."""
        return self.path / "uploads.parquet"

    @property
    def queries(self) -> Path:
        """With an incremental upload: each query run during (and just after) each upload."""
        return self.path / "queries.parquet"

    @property
    def upload_summary(self) -> Path:
        """With an incremental upload: one row per run (plan), over its repeats."""
        return self.path / "uploads.csv"

    @property
    def upload_chart(self) -> Path:
        return self.path / "upload_queries.png"

    @property
    def pipelines(self) -> Path:
        """The pipelines a sweep over tiers measures per run, and the strategies that chose them,
        fixed before it starts (a resumed sweep measures the same ones)."""
        return self.path / "pipelines.json"

    @property
    def placements(self) -> Path:
        """Each placement strategy's pipeline per run, predicted beside measured, and its regret."""
        return self.path / "placements.csv"

    @property
    def replans(self) -> Path:
        """Each re-planning round and link event of the runs that re-plan."""
        return self.path / "replans.csv"

    @property
    def decisions(self) -> Path:
        """Each evaluated partitioner's pick and regret per run (a sweep's ``evaluate``)."""
        return self.path / "decisions.csv"

    @property
    def predictions(self) -> Path:
        """Each evaluated partitioner's predicted latency per run and cut."""
        return self.path / "predictions.parquet"

    @property
    def summary(self) -> Path:
        return self.path / "summary.csv"

    @property
    def exits(self) -> Path:
        """With early exits: one row per model, placement and threshold, and the baselines."""
        return self.path / "exits.csv"

    @property
    def trained(self) -> Path:
        """With early exits: each model's training record and each exit's source, per placement."""
        return self.path / "exits"

    @property
    def front_chart(self) -> Path:
        return self.path / "exits_front.png"

    @property
    def codecs(self) -> Path:
        """With cut codecs: bytes, codec times and accuracy per model, cut and codec."""
        return self.path / "codecs.csv"

    @property
    def codec_choices(self) -> Path:
        """With ``choose_codec``: each partitioner's codec and cut within the accuracy floor."""
        return self.path / "codec_choices.csv"

    @property
    def rate_accuracy_chart(self) -> Path:
        return self.path / "rate_accuracy.png"

    @property
    def codec_time_chart(self) -> Path:
        return self.path / "time_by_cut_codecs.png"

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    def time_chart(self, run: str) -> Path:
        return self.path / f"time_by_cut_{safe_name(run)}.png"

    def energy_chart(self, run: str) -> Path:
        return self.path / f"energy_by_cut_{safe_name(run)}.png"

    def bytes_chart(self, run: str) -> Path:
        return self.path / f"bytes_by_cut_{safe_name(run)}.png"

    def links_after(self, run: str) -> Path:
        """The link matrix a run over tiers was planned with, refined by its transfers."""
        return self.path / f"links_{safe_name(run)}.parquet"

    def link_matrices(self) -> list[Path]:
        return sorted(self.path.glob("links_*.parquet"))

    def replan_chart(self, run: str) -> Path:
        return self.path / f"latency_over_time_{safe_name(run)}.png"

    def predicted_chart(self, run: str) -> Path:
        return self.path / f"predicted_by_cut_{safe_name(run)}.png"

    def write_manifest(self, text: str) -> Path:
        """The manifest exactly as the sweep ran it, after defaults and variables were filled in."""
        self.manifest.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        return self.manifest

    def write_environment(self, data: dict) -> Path:
        """Hosts and versions; sorted keys so two sweeps' environments can be diffed line by line."""
        try:
            text = json.dumps(data, indent=2, sort_keys=True)
        except (TypeError, ValueError) as error:
            raise BadInput(f"{self.environment}: environment is not JSON-serialisable ({error})") from None
        self.environment.write_text(text + "\n", encoding="utf-8")
        return self.environment
