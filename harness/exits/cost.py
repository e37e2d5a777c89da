"""What a serverless cloud charges for the samples that reach it.

Prices are data, not code: a YAML file with its as-of date and source (``prices/`` holds Google
Cloud Functions' 1st generation Tier 1, which the seed used in 2023-08, and the 2nd generation),
so a lab can price its own provider with a file of its own. Each offloaded sample is one
invocation of the function that runs the cloud part: memory and CPU billed for the measured cloud
time rounded up, plus the invocation fee and the reply's egress. A cloud-only baseline pays the
whole network for every sample.
"""

import math
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import BadInput

PRICES = Path(__file__).parent / "prices"
DEFAULT_PRICES = PRICES / "gcf-1st-gen-tier1.yaml"
_MB_PER_GB = 1024
_BYTES_PER_GB = 1e9

NonNegative = Annotated[float, Field(ge=0)]


class PriceModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    as_of: str
    source: str
    per_invocation: NonNegative
    per_gb_second: NonNegative
    per_cpu_second: NonNegative
    """Per GHz-second (1st gen) or vCPU-second (2nd gen), as ``cpu_unit`` says."""
    cpu_unit: str
    rounding_ms: Annotated[int, Field(gt=0)]
    egress_per_gb: NonNegative
    tiers: Annotated[dict[int, Annotated[float, Field(gt=0)]], Field(min_length=1)]
    """Memory (MB) to the CPU it comes with, in ``cpu_unit``."""

    def billed_seconds(self, seconds: float) -> float:
        """``seconds`` rounded up to the provider's unit (260 ms is billed as 300 ms)."""
        if seconds < 0:
            raise BadInput(f"cloud time {seconds} s: expected at least 0")
        units = math.ceil(round(seconds * 1e3 / self.rounding_ms, 9))
        return units * self.rounding_ms / 1e3

    def compute_cost(self, memory_mb: int, seconds: float) -> float:
        """Memory and CPU for one invocation of ``seconds`` at the ``memory_mb`` tier."""
        if memory_mb not in self.tiers:
            tiers = ", ".join(str(tier) for tier in self.tiers)
            raise BadInput(f"memory {memory_mb} MB: expected a tier of {self.name} ({tiers} MB)")
        billed = self.billed_seconds(seconds)
        memory = memory_mb / _MB_PER_GB * billed * self.per_gb_second
        return memory + self.tiers[memory_mb] * billed * self.per_cpu_second

    def sample_cost(self, memory_mb: int, seconds: float, egress_bytes: int = 0) -> float:
        """One offloaded sample: its invocation, its compute and its reply leaving the cloud."""
        egress = egress_bytes / _BYTES_PER_GB * self.egress_per_gb
        return self.per_invocation + self.compute_cost(memory_mb, seconds) + egress


def load_prices(path: Path | None = None) -> PriceModel:
    """The price model in ``path`` (YAML), or the seed's default; one line naming the file and field
    where it is not a price model."""
    path = DEFAULT_PRICES if path is None else path
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise BadInput(f"price model {path}: cannot be read ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise BadInput(f"price model {path}: YAML error: {error}") from None
    try:
        return PriceModel.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise BadInput(f"price model {path}: field {field}: {first['msg']}") from None
