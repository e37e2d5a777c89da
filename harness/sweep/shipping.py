"""The weight files a sweep ships to its hosts.

A manifest names weights as the controller sees them (``model.weights: results/x/backbone.pt``,
and with exits each model's backbone and exits in ``exits.trained``, and an exit template file). A
file that exists here is copied by the runtime role into every host's
``weights/`` directory, under a name made of its content's digest and its own name (two files
called ``backbone.pt`` never collide, and one file named twice is copied once); the plan the hosts
run names it there, relative to the host's directory, where the edge and the worker both run and
where the worker serves weights from (``--weights-dir``). A path that does not exist here is left
as written: a file already in place on every host.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

from harness.exits.templates import built_in_templates
from harness.manifest import LoadedManifest
from harness.model.sources.weights import is_none, is_weight_file

HOST_FOLDER = "weights"
"""Under each host's harness directory."""


@dataclass(frozen=True)
class Shipment:
    files: list[dict[str, str]]
    """``{src, name}`` for the runtime role: the file here and its name in the hosts' folder."""
    renamed: dict[str, str]
    """Each path as the manifest wrote it, to the path the hosts use."""

    def host_path(self, weights: str) -> str:
        return self.renamed.get(weights, weights)


def shipment(loaded: LoadedManifest) -> Shipment:
    """Every weight file the manifest's runs name that exists on the controller."""
    named = [run.model.weights for run in loaded.runs]
    named += [run.exit_weights for run in loaded.runs if run.exit_weights]
    exits = loaded.manifest.exits
    if exits is not None and template_file(exits.template):
        named.append(exits.template)
    files: dict[str, dict[str, str]] = {}
    renamed: dict[str, str] = {}
    for weights in dict.fromkeys(named):
        path = Path(weights).expanduser()
        if is_none(weights) or not (is_weight_file(weights) or template_file(weights)) or not path.is_file():
            continue
        name = f"{_digest(path)}-{path.name}"
        files.setdefault(name, {"src": str(path.resolve()), "name": name})
        renamed[weights] = f"{HOST_FOLDER}/{name}"
    return Shipment(list(files.values()), renamed)


def template_file(template: str) -> bool:
    """An exit template named by its file, rather than a built-in or a ``module:function``."""
    return ":" not in template and template not in built_in_templates()


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]
