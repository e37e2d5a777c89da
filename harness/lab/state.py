"""The lab's record of everything it made, written to disk the moment each thing exists.

``down`` removes exactly what this file lists, so a lab whose ``up`` failed half way, or whose
controller was killed, is still removed completely and nothing that was already there is touched.
Each item leaves the record as soon as it is gone, so an interrupted ``down`` can simply be re-run.
"""

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.errors import BadInput
from harness.lab.spec import LabSpec

STATE_FILE = "lab.json"
KINDS = ("processes", "cgroups", "links", "namespaces", "files", "trees", "dirs")
SHAPING = "shaping"
"""The record of the ordered pairs the bridge shapes: nothing to remove, since the qdiscs go with
the bridge's namespace, so it is not one of ``KINDS``."""


@dataclass(frozen=True)
class PairState:
    """One ordered pair of lab hosts as the bridge carries it: ``rate`` in payload bytes per second
    (infinite: unshaped), and whether the pair is cut (every packet dropped)."""

    src: str
    dst: str
    rate: float = math.inf
    cut: bool = False

    @property
    def shaped(self) -> bool:
        return not math.isinf(self.rate)


class LabState:
    def __init__(self, state_dir: Path, data: dict[str, Any]):
        self.state_dir = state_dir
        self.data = data

    @property
    def path(self) -> Path:
        return self.state_dir / STATE_FILE

    @classmethod
    def load(cls, state_dir: Path) -> "LabState | None":
        path = state_dir / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise BadInput(f"lab state {path} cannot be read ({error}): remove what it lists by hand") from None
        if not isinstance(data, dict) or not all(isinstance(data.get(kind), list) for kind in KINDS):
            raise BadInput(f"lab state {path}: expected a JSON object with lists {', '.join(KINDS)}")
        return cls(state_dir, data)

    @classmethod
    def begin(cls, state_dir: Path, spec: dict[str, Any], made_state_dir: bool) -> "LabState":
        state = cls(state_dir, {"up": False, "spec": spec, **{kind: [] for kind in KINDS}})
        if made_state_dir:
            state.data["dirs"].append(str(state_dir))
        state.save()
        return state

    def add(self, kind: str, item: Any) -> None:
        self.data[kind].append(item)
        self.save()

    def discard(self, kind: str, item: Any) -> None:
        self.data[kind].remove(item)
        self.save()

    def items(self, kind: str) -> list[Any]:
        return list(self.data[kind])

    @property
    def empty(self) -> bool:
        return not any(self.data[kind] for kind in KINDS if kind != "dirs")

    @property
    def shaped_ports(self) -> list[str]:
        """The hosts whose bridge port carries the lab's htb (set up when a pair to it was first shaped or cut)."""
        return list(self.data.get(SHAPING, {}).get("ports", []))

    def pairs(self) -> tuple[PairState, ...]:
        """The ordered pairs as last applied and read back; empty while no pair was ever shaped or cut."""
        return tuple(
            PairState(item["src"], item["dst"], math.inf if item["rate"] is None else item["rate"], item["cut"])
            for item in self.data.get(SHAPING, {}).get("pairs", [])
        )

    def record_shaping(self, ports: list[str], pairs: list[dict[str, Any]]) -> None:
        """``pairs``: one entry per ordered pair, with ``src``, ``dst``, ``rate`` (None: unshaped),
        ``cut`` and what tc was given for it."""
        self.data[SHAPING] = {"ports": ports, "pairs": pairs}
        self.save()

    def spec(self) -> LabSpec:
        try:
            return LabSpec.model_validate(self.data.get("spec"))
        except ValidationError as error:
            raise BadInput(f"lab state {self.path}: its spec is not valid ({error.errors()[0]['msg']})") from None

    @property
    def up(self) -> bool:
        return bool(self.data.get("up"))

    def mark_up(self) -> None:
        self.data["up"] = True
        self.save()

    def save(self) -> None:
        """Written to a temporary file and renamed, so a crash never leaves half a record."""
        partial = self.path.with_suffix(".json.partial")
        partial.write_text(json.dumps(self.data, indent=2) + "\n")
        os.replace(partial, self.path)

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)
