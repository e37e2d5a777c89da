"""Manifests: a Jinja2-templated YAML file describes an experiment; it expands to a list of runs.

loaded = load_manifest(Path("manifests/alexnet.yml"), ["repeats=2", "cuts=[0,3,13]"])
for run in loaded.runs:  # one per combination of the fields given as lists
    ...
"""

from dataclasses import dataclass
from pathlib import Path

from harness.manifest.matrix import Run, expand
from harness.manifest.render import Rendered, render
from harness.manifest.schema import DatasetSpec, HostsSpec, LinkSpec, Manifest, ModelSpec, PartitionerSpec, WorkerSpec
from harness.manifest.validate import parse_manifest


@dataclass(frozen=True)
class LoadedManifest:
    """Kept together so that what ran can always be traced to the exact text it came from."""

    rendered: Rendered
    manifest: Manifest
    runs: list[Run]


def load_manifest(path: Path | str, sets: list[str] | tuple[str, ...] = ()) -> LoadedManifest:
    """Render with the ``--set`` values, validate, expand; every problem is a ``BadInput`` naming its line."""
    rendered = render(Path(path), sets)
    manifest = parse_manifest(rendered)
    return LoadedManifest(rendered=rendered, manifest=manifest, runs=expand(manifest))


__all__ = [
    "DatasetSpec",
    "HostsSpec",
    "LinkSpec",
    "LoadedManifest",
    "Manifest",
    "ModelSpec",
    "PartitionerSpec",
    "Rendered",
    "Run",
    "WorkerSpec",
    "expand",
    "load_manifest",
    "parse_manifest",
    "render",
]
