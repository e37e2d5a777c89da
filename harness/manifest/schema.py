"""What a rendered manifest may say, checked before anything starts on any host.

Validation is strict (a quoted ``"10"`` is not a number, unknown fields are refused) so that a typo
fails here, with its line, rather than half way through a sweep. Fields that form a matrix axis
(``model``, ``partitioner``, ``dataset``, ``link``, ``compression``) take one value or a list, and
are always held as lists. Every check is cheap: model names are looked up in the registry's lists,
not built.
"""

import difflib
import functools
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationInfo,
    field_validator,
    model_validator,
)

from harness.energy.sources import EXPECTED as EXPECTED_SOURCES
from harness.energy.sources import check_source_name
from harness.errors import BadInput
from harness.exits.data import LABELLED_CLASSES
from harness.exits.placement import MAX_PER_PART, PARETO_ALPHA
from harness.registry import DECIDERS, PLACEMENT_STRATEGIES, SCHEDULES, UPLOAD_PLANNERS
from harness.wire.codecs import EXPECTED as EXPECTED_CODECS
from harness.wire.codecs import CutCodec
from harness.wire.compression import CODECS, SHUFFLES, Compression
from harness.wire.link import UNLIMITED, parse_delay, parse_rate

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_GROUP = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DEVICE = re.compile(r"^(cpu|cuda(:[0-9]+)?)$")


def shown(value: Any) -> str:
    """A value as the user wrote it, for "(got ...)" in messages."""
    return f"'{value}'" if isinstance(value, str) else str(value)


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


def _number_as_text(value: Any) -> Any:
    """``rate: 4000000`` means bytes per second; keep every rate and delay as the text a user would write."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _check_name(value: str) -> str:
    if not _NAME.match(value) or set(value) == {"."}:
        raise ValueError(f"expected letters, digits, '_', '.' or '-': it names a folder (got {shown(value)})")
    return value


def _check_group(value: str) -> str:
    if not _GROUP.match(value):
        raise ValueError(f"expected an inventory group name: letters, digits and '_' (got {shown(value)})")
    return value


@functools.cache
def _registry_names() -> tuple[str, ...]:
    from harness.model import model_names

    return tuple(model_names())


def _check_model(value: str) -> str:
    """Registry names and ``package.module:function`` are accepted; building the model waits for the run."""
    if ":" in value:
        module, _, function = value.partition(":")
        if not module or not function.isidentifier():
            raise ValueError(f"expected 'package.module:function' (got {shown(value)})")
        return value
    known = _registry_names()
    if value not in known:
        close = difflib.get_close_matches(value, known, n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `harness model list`"
        raise ValueError(f"unknown model '{value}'{hint}")
    return value


def _accepted_by(parse: Callable[[str], object], expected: str) -> Callable[[str], str]:
    """A field check that lets the harness's own parser decide, with the manifest's wording of what it expects."""

    def check(value: str) -> str:
        try:
            parse(value)
        except BadInput:
            raise ValueError(f"expected {expected} (got {shown(value)})") from None
        return value

    return check


_check_rate = _accepted_by(parse_rate, f"a rate above 0, like 4MB/s or 32mbit, or '{UNLIMITED}' for an unshaped link")
_check_delay = _accepted_by(parse_delay, "a delay like 20ms or 150us")
_check_compression = _accepted_by(
    Compression.parse,
    f"CODEC[:LEVEL[:SHUFFLE]] with CODEC one of {', '.join(CODECS)}, LEVEL 0 to 9 and SHUFFLE "
    f"one of {', '.join(SHUFFLES)}, like lz4:5:byte",
)

_check_cut_codec = _accepted_by(CutCodec.parse, EXPECTED_CODECS)
_check_energy_source = _accepted_by(check_source_name, EXPECTED_SOURCES)


def _check_device(value: str) -> str:
    if not _DEVICE.match(value):
        raise ValueError(f"expected cpu, cuda or cuda:N (got {shown(value)})")
    return value


def _check_cuts(value: Any) -> str | list[int] | list[list[int]]:
    """``all``, cut indices, or pipelines: lists of increasing cut indices, one cut per worker tier.
    An index past the model's last cut is caught when the model is built."""
    if value == "all":
        return value
    if isinstance(value, list) and value and all(isinstance(plan, list) for plan in value):
        for plan in value:
            _check_cut_list(plan, "a pipeline's cuts, like [3, 13]")
            if plan != sorted(set(plan)):
                raise ValueError(f"expected each pipeline's cuts in increasing order, each once (got {shown(plan)})")
        repeated = [plan for number, plan in enumerate(value) if plan in value[:number]]
        if repeated:
            raise ValueError(f"expected each pipeline once (got {shown(repeated[0])} more than once)")
        return value
    _check_cut_list(value, "'all', a list of cut indices like [0, 3, 13], or pipelines like [[3, 13], [5, 20]]")
    repeated = sorted({cut for cut in value if value.count(cut) > 1})
    if repeated:
        raise ValueError(f"expected each cut once (got {', '.join(map(str, repeated))} more than once)")
    return value


def _check_cut_list(value: Any, expected: str) -> None:
    if not isinstance(value, list) or not all(isinstance(cut, int) and not isinstance(cut, bool) for cut in value):
        raise ValueError(f"expected {expected} (got {shown(value)})")
    if not value or any(cut < 0 for cut in value):
        raise ValueError(f"expected at least one cut index, each >= 0 (got {shown(value)})")


def _check_function(value: str) -> str:
    module, _, function = value.partition(":")
    if not module or not function.isidentifier():
        raise ValueError(f"expected 'package.module:function' (got {shown(value)})")
    return value


def _builtin_or_function(value: str, known: list[str]) -> str:
    """A built-in name from ``known``, or a user's ``package.module:function``."""
    if ":" in value:
        return _check_function(value)
    if value not in known:
        raise ValueError(f"expected one of {', '.join(known)} or package.module:function (got {shown(value)})")
    return value


def _check_partitioner(value: str) -> str:
    return _builtin_or_function(value, sorted(SCHEDULES))


def _builtin_or_function_text(value: str) -> str:
    """A name, or a well-formed ``package.module:function``; which names are known depends on
    the rest of the manifest and is checked with it (``harness.manifest.validate``)."""
    return _check_function(value) if ":" in value else value


def judged_names(pipelined: bool) -> tuple[str, ...]:
    """What ``evaluate`` may name: placement strategies in a sweep over tiers, else deciders."""
    return PLACEMENT_STRATEGIES if pipelined else DECIDERS


def _check_upload_planner(value: str) -> str:
    return _builtin_or_function(value, sorted(UPLOAD_PLANNERS))


def _check_placement(value: str) -> str:
    return _builtin_or_function(value, sorted(PLACEMENT_STRATEGIES))


def _check_dataset(value: str) -> str:
    from harness.model.datasets import dataset_names

    return _builtin_or_function(value, dataset_names())


def _name_as_mapping(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


Rate = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_check_rate)]
Delay = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_check_delay)]
CompressionText = Annotated[str, AfterValidator(_check_compression)]
CutCodecText = Annotated[str, AfterValidator(_check_cut_codec)]
EnergySourceText = Annotated[str, AfterValidator(_check_energy_source)]
Cuts = Annotated[str | list[int] | list[list[int]], PlainValidator(_check_cuts)]
PositiveInt = Annotated[int, Field(ge=1)]


class StrictModel(BaseModel):
    """Typos fail instead of being ignored, nothing is coerced, and nothing changes once validated."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Group = Annotated[str, AfterValidator(_check_group)]


class HostsSpec(StrictModel):
    """Inventory groups, never host names: the same manifest runs on any lab that has the groups.

    ``tiers`` names a pipeline of groups in tier order (device, edge, cloud): the first group runs
    the edge driver, each later one workers. ``edge`` and ``cloud`` are the two-group form; with
    ``tiers`` they are its first and last group, and giving both forms is refused."""

    edge: Group = "edge"
    cloud: Group = "cloud"
    tiers: Annotated[list[Group], Field(min_length=2, max_length=16)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _ends_of_the_tiers(cls, data: Any) -> Any:
        tiers = data.get("tiers") if isinstance(data, dict) else None
        if not isinstance(tiers, list) or not tiers or not all(isinstance(group, str) for group in tiers):
            return data
        ends = {"edge": tiers[0], "cloud": tiers[-1]}
        if any(data.get(role, end) != end for role, end in ends.items()):
            raise ValueError("expected either tiers or edge and cloud, not both")
        repeated = sorted({group for group in tiers if tiers.count(group) > 1})
        if repeated:
            raise ValueError(f"expected each tier group once (got {', '.join(repeated)} more than once)")
        return {**data, **ends}

    @property
    def pipeline(self) -> tuple[str, ...]:
        """The groups in tier order; ``(edge, cloud)`` in the two-group form."""
        return tuple(self.tiers) if self.tiers else (self.edge, self.cloud)

    @property
    def fields(self) -> dict[str, str]:
        """Each group by the field that names it (``hosts.tiers[1]``, ``hosts.cloud``), for messages."""
        if self.tiers:
            return {f"tiers[{number}]": group for number, group in enumerate(self.tiers)}
        return {"edge": self.edge, "cloud": self.cloud}


class ModelSpec(StrictModel):
    """``single_tensor: true`` keeps to the cuts where exactly one tensor crosses (indices unchanged),
    as ``harness model inspect --single-tensor`` lists them: ``cuts: all`` means those, and a listed
    cut where more crosses is refused before anything starts."""

    name: Annotated[str, AfterValidator(_check_model)]
    granularity: Literal["node", "module", "block"] = "module"
    weights: str = "none"
    input_shape: list[PositiveInt] | None = None
    single_tensor: bool = False
    classes: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    """The number of outputs of a torchvision classifier (ten for digits or CIFAR-10), built with
    that many; its weights then come from a local file (``harness exits train`` writes one)."""


class PartitionerSpec(StrictModel):
    """``cyclic``: each allowed cut ``repeats`` times in a row, then the next cut; or a user's
    ``package.module:function(cuts, repeats)`` giving the (cut, repeat) pairs to run, in order."""

    name: Annotated[str, AfterValidator(_check_partitioner)] = "cyclic"
    repeats: PositiveInt = 10


class EvaluateSpec(StrictModel):
    """A partitioner judged against the sweep's measurements: ``neurosurgeon`` (the lowest
    prediction; ``criterion: next-layer`` or ``remaining`` for the seed's inequality 4 or 3), ``dads``,
    ``oracle`` (``single_tensor: true`` keeps to single-tensor cuts), ``{name: fixed, cut: N}``, or a
    user's ``package.module:function(situation, **options)``. Options reach the partitioner as
    keyword arguments. ``objective: energy`` has neurosurgeon minimise the edge's energy, from
    ``edge_watts`` (the edge computing) and ``radio_watts`` (its radio sending).

    In a sweep over tiers, a placement strategy instead (``{name: genetic, options: {seed: 1}}``):
    the sweep measures the pipeline each one chooses, side by side."""

    name: Annotated[str, AfterValidator(_builtin_or_function_text)]
    cut: Annotated[int, Field(ge=0)] | None = None
    single_tensor: bool | None = None
    criterion: Literal["argmin", "next-layer", "remaining"] | None = None
    objective: Literal["latency", "energy"] | None = None
    edge_watts: Annotated[float, Field(ge=0)] | None = None
    radio_watts: Annotated[float, Field(ge=0)] | None = None
    options: dict[str, bool | int | float | str] | None = None


class EnergySpec(StrictModel):
    """Each role's power source: ``auto`` (NVML for a worker on a CUDA device, else RAPL, else a
    Jetson's rails, else none), ``none``, ``rapl``, ``nvml``, ``jetson``, or a user's meter as
    ``package.module:function`` returning watts (a Raspberry Pi has no sensor of its own). A sensor
    named here that a host of its role lacks stops the sweep at this line before anything starts
    (the sweep asks the hosts first, as `harness doctor -m` does)."""

    edge: EnergySourceText = "auto"
    cloud: EnergySourceText = "auto"


class ChooseCodecSpec(StrictModel):
    """Partitioners under ``evaluate`` choose the cut codec as well as the cut, among the codecs of
    the manifest's ``codec`` list that keep accuracy within ``max_accuracy_drop`` of the
    uncompressed model's at the same cut (measured on the sweep's labelled inputs)."""

    max_accuracy_drop: Annotated[float, Field(ge=0, le=1)] = 0.01


class PlacementSpec(StrictModel):
    """A placement strategy over the pipeline's hosts (``harness place`` lists them): ``dp``
    (exact), ``ilp``, ``genetic``, ``exhaustive``, the baselines, or a user's
    ``package.module:function(problem, objective, **options)``. ``options`` reach it as keyword
    arguments (``time_limit_s`` for ilp, ``seed`` for genetic)."""

    name: Annotated[str, AfterValidator(_check_placement)]
    objective: Literal["latency", "throughput"] = "latency"
    options: dict[str, bool | int | float | str] = Field(default_factory=dict)


class AdaptSpec(StrictModel):
    """Re-planning during a sweep over tiers: every ``every_s`` seconds the edge measures the links
    between the tiers' hosts again (one bulk transfer of ``probe_kb`` per ordered pair) and the
    placement strategy solves anew; a new placement replaces the running one when it is predicted
    at least ``min_gain`` faster (a fraction) in ``rounds`` rounds in a row."""

    every_s: Annotated[float, Field(gt=0, le=86400)] = 10.0
    min_gain: Annotated[float, Field(ge=0, lt=1)] = 0.1
    rounds: Annotated[int, Field(ge=1, le=100)] = 2
    probe_kb: Annotated[int, Field(ge=1, le=65536)] = 256


class LinkEventSpec(StrictModel):
    """An emulated link changing mid-run: ``at_s`` seconds after the run's first inference, every
    link between the hosts of the two tier groups of ``pair`` (both ways) gets ``rate``."""

    at_s: Annotated[float, Field(ge=0, le=86400)]
    pair: Annotated[list[Group], Field(min_length=2, max_length=2)]
    rate: Rate


class ExitSplitSpec(StrictModel):
    """Where the network is cut into its edge and cloud part before exits are placed in each:
    ``memory`` (parameter bytes of the head at ``fraction``, within ``bound``), ``layers`` (at
    ``fraction`` of them), or ``latency`` (the seed's rule on a sweep's per-layer profiles, which
    ``harness exits train --profile`` reads)."""

    by: Literal["memory", "layers", "latency"] = "memory"
    fraction: Annotated[float, Field(gt=0, lt=1)] = 0.7
    bound: Literal["at_most", "at_least"] = "at_most"
    include_transfer: bool = False
    """Under latency: the cut's transfer at the link's rate counts as part of the head's time (the
    seed leaves the link out)."""


LossWeights = Annotated[list[Annotated[float, Field(ge=0, le=1000)]], Field(min_length=2, max_length=16)]


class ExitTrainingSpec(StrictModel):
    """``harness exits train``: the backbone first (unless ``model.weights`` gives it; then it is
    loaded and left as it is), then every exit on the frozen backbone, each with its own
    cross-entropy (or, with ``mode: joint``, backbone and exits together); a stratified split of the
    labelled dataset into train, ``validation`` and ``test`` shares, the same for the same ``seed``."""

    backbone_epochs: Annotated[int, Field(ge=0, le=1000)] = 8
    exit_epochs: Annotated[int, Field(ge=1, le=1000)] = 20
    mode: Literal["frozen", "joint"] = "frozen"
    """``joint``: after the backbone, backbone and exits train together for ``exit_epochs``, each
    exit's and the final classifier's cross-entropy weighted by ``loss_weights`` (default all 1); the
    backbone then differs per placement, and each placement's folder holds its own."""
    loss_weights: LossWeights | None = None
    batch: Annotated[int, Field(ge=1, le=65536)] = 64
    learning_rate: Annotated[float, Field(gt=0, le=10)] = 1e-3
    validation: Annotated[float, Field(gt=0, lt=1)] = 0.2
    test: Annotated[float, Field(gt=0, lt=1)] = 0.2
    seed: Annotated[int, Field(ge=0)] = 0


class ThresholdSelectionSpec(StrictModel):
    """Per-exit thresholds picked on the ``validation`` part (the lowest within ``max_accuracy_drop``
    of the final classifier's accuracy, exit by exit) and reported on the test part."""

    on: Literal["validation"] = "validation"
    max_accuracy_drop: Annotated[float, Field(ge=0, le=1)] = 0.01


class ExitCostSpec(StrictModel):
    """What the serverless cloud charges for an offloaded sample: a price file (``prices``: YAML,
    default Google Cloud Functions 1st gen Tier 1 as of 2023-08, as the seed priced it) at the
    function's ``memory_mb`` tier."""

    prices: str | None = None
    memory_mb: Annotated[int, Field(ge=128, le=32768)] = 2048


class ExitsSpec(StrictModel):
    """Early exits (seed 002): the network is split by ``split``, then ``per_part`` exits made from
    ``template`` (``linear``, ``conv-linear``, a Jinja2 file of Python source, or
    ``package.module:function``) are placed inside each part by ``placement`` along ``axis`` (``time``:
    the profiled time of each layer on its part's host, from ``harness exits train --profile``); a sample
    leaves at the first exit whose ``confidence`` is strictly greater than a threshold, each of
    ``thresholds`` measured in turn (1.0: never early, the control), or with ``select`` one threshold
    per exit picked on the validation part (by ``harness exits train``; a sweep measures
    ``thresholds``). ``trained``: the folder ``harness exits train`` wrote (default
    ``results/<name>-exits``), whose backbone and exits every host of a sweep runs."""

    template: str = "linear"
    placement: Annotated[
        list[Literal["linear", "pareto", "flops"]], BeforeValidator(_as_list), Field(min_length=1, max_length=3)
    ] = Field(default_factory=lambda: ["linear"])
    """One or several, each an axis of the matrix like the thresholds (exits trained for each)."""
    per_part: Annotated[int, Field(ge=1, le=MAX_PER_PART)] = 1
    axis: Literal["nodes", "flops", "time"] = "nodes"
    direction: Literal["early", "late"] = "early"
    alpha: Annotated[float, Field(gt=0, le=100)] = PARETO_ALPHA
    confidence: Literal["max_softmax", "entropy", "margin"] = "max_softmax"
    thresholds: Annotated[list[Annotated[float, Field(ge=0, le=1)]], Field(min_length=1, max_length=100)] = Field(
        default_factory=lambda: [0.3, 0.5, 0.7, 0.9, 1.0]
    )
    select: ThresholdSelectionSpec | None = None
    split: ExitSplitSpec = ExitSplitSpec()
    training: ExitTrainingSpec = ExitTrainingSpec()
    trained: str | None = None
    cost: ExitCostSpec = ExitCostSpec()
    locality: Literal["within", "across"] = "within"
    """``across``: the baseline the seed argues against. The exits are placed on the whole network
    before splitting (``2 * per_part`` of them), and no exit runs on the edge: every sample is sent,
    with the cut's tensor and the input of every exit attached before the cut (which straddles it),
    and the cloud tries those exits first, then its own."""


class UploadPlanSpec(StrictModel):
    """An upload planner (``harness plan --upload`` lists them) and its options: ``ionn`` with ``K``
    (its geometric penalty, 0.5 by default) and ``levels``, or ``step`` (the fine sweep); none for the
    others. A user's is ``package.module:function(chain, **options)`` with ``options``."""

    name: Annotated[str, AfterValidator(_check_upload_planner)]
    K: Annotated[float, Field(gt=0, lt=1)] | None = None
    step: Annotated[float, Field(gt=0, lt=1)] | None = None
    levels: Annotated[int, Field(ge=1, le=64)] | None = None
    options: dict[str, bool | int | float | str] | None = None

    @model_validator(mode="after")
    def _planner_takes_its_options(self) -> "UploadPlanSpec":
        penalties = [key for key in ("K", "step", "levels") if getattr(self, key) is not None]
        if penalties and self.name != "ionn":
            raise ValueError(f"{', '.join(penalties)}: options of ionn; expected none for '{self.name}'")
        if self.K is not None and self.step is not None:
            raise ValueError("K and step: expected one (ionn's geometric penalties or the fine sweep)")
        if self.options is not None and ":" not in self.name:
            raise ValueError(f"options are for a user's planner; expected none for '{self.name}'")
        return self

    @property
    def planner_options(self) -> dict:
        named = {"K": self.K, "step": self.step, "levels": self.levels}
        return {**{key: value for key, value in named.items() if value is not None}, **(self.options or {})}

    @property
    def label(self) -> str:
        """The plan in a run's id: ``ionn-K0.5``, ``recursive-efficiency``."""
        options = self.planner_options.items()
        shown = "".join(f"-{key}{value:g}" if isinstance(value, float) else f"-{key}{value}" for key, value in options)
        return self.name.rpartition(":")[2] + shown


class UploadSpec(StrictModel):
    """Incremental upload (IONN, seed 004): the worker starts with the model's architecture only and
    the edge uploads its weights by each of ``plans`` (one run each), in chunks of at most
    ``chunk_bytes`` on a flow of its own, while it runs queries back to back, each through the latest
    acknowledged partition; ``after`` more once the upload has ended. The first query waits for the
    first partition (``first_query: wait``, the seed) or starts on the edge (``local``). ``units``:
    ``cut`` (the layers between two single-tensor cuts) or ``layer`` (every cut, for chains).
    ``repeats``: uploads per plan, each to a fresh session."""

    plans: Annotated[
        list[Annotated[UploadPlanSpec, BeforeValidator(_name_as_mapping)]], Field(min_length=1, max_length=32)
    ]
    units: Literal["cut", "layer"] = "cut"
    chunk_bytes: Annotated[int, Field(ge=1, le=16 * 2**20)] = 256 * 2**10
    first_query: Literal["wait", "local"] = "wait"
    after: Annotated[int, Field(ge=0, le=1000)] = 5
    repeats: Annotated[int, Field(ge=1, le=1000)] = 1


class DatasetSpec(StrictModel):
    name: Annotated[str, AfterValidator(_check_dataset)] = "synthetic"
    count: PositiveInt = 1
    path: str | None = Field(default=None, validate_default=True)
    part: Literal["all", "test"] = "all"
    """Of a labelled set: ``test``, the samples ``harness exits train`` holds out under its default
    split (validation 0.2, test 0.2, seed 0), so that accuracy is measured on samples a model trained
    there never saw; ``all``, the set in its own order."""

    @field_validator("part")
    @classmethod
    def _part_of_labelled(cls, value: str, info: ValidationInfo) -> str:
        if value == "test" and info.data.get("name") not in LABELLED_CLASSES:
            raise ValueError(f"expected all: only a labelled set ({', '.join(LABELLED_CLASSES)}) has a test part")
        return value

    @field_validator("path")
    @classmethod
    def _path_for_images(cls, value: str | None, info: ValidationInfo) -> str | None:
        """``path`` is a folder on the edge host, read there, so only its presence is checked here."""
        if info.data.get("name") == "images" and not value:
            raise ValueError("expected a folder on the edge host for dataset 'images'")
        return value


class LinkSpec(StrictModel):
    """The link as written (``4MB/s``) is kept for ids and tables; ``rate_bytes`` and ``delay_ns`` for the driver."""

    rate: Rate
    delay: Delay = "0ms"
    shaping: Literal["auto", "emulated", "tc"] = "auto"

    @property
    def rate_bytes(self) -> float:
        return parse_rate(self.rate)

    @property
    def delay_ns(self) -> int:
        return parse_delay(self.delay)


class RetrySpec(StrictModel):
    """What the edge does when the worker dies or goes quiet mid-sweep: the inference in flight is
    recorded as failed and tried again up to ``attempts`` times, once the worker answers again
    (within ``wait_s``, time for its service manager to restart it). ``timeout_s`` is the longest
    wait for one reply; a dropped connection is noticed at once."""

    attempts: Annotated[int, Field(ge=0, le=100)] = 2
    timeout_s: Annotated[float, Field(gt=0, le=86400)] = 60.0
    wait_s: Annotated[float, Field(gt=0, le=86400)] = 120.0


class WorkerSpec(StrictModel):
    port: Annotated[int, Field(ge=1, le=65535)] = 5555
    device: Annotated[str, AfterValidator(_check_device)] = "cpu"


# A matrix axis: one value or a non-empty list of them, held as a list.
_AXIS = (BeforeValidator(_as_list), Field(min_length=1))
Models = Annotated[list[ModelSpec], *_AXIS]
Partitioners = Annotated[list[PartitionerSpec], *_AXIS]
Datasets = Annotated[list[DatasetSpec], *_AXIS]
Links = Annotated[list[LinkSpec], *_AXIS]
Compressions = Annotated[list[CompressionText], *_AXIS]
CutCodecs = Annotated[list[CutCodecText], *_AXIS]


class Manifest(StrictModel):
    name: Annotated[str, AfterValidator(_check_name)]
    description: str | None = None
    hosts: HostsSpec = HostsSpec()
    model: Models
    cuts: Cuts = "all"
    partitioner: Partitioners = Field(default_factory=lambda: [PartitionerSpec()])
    warmup: Annotated[int, Field(ge=0)] = 1
    dataset: Datasets = Field(default_factory=lambda: [DatasetSpec()])
    link: Links
    compression: Compressions = Field(default_factory=lambda: ["none"])
    codec: CutCodecs = Field(default_factory=lambda: ["none"])
    """Cut codecs (quantisation at the cut, before compression), an axis like compression."""
    choose_codec: ChooseCodecSpec | None = None
    energy: EnergySpec = EnergySpec()
    threads: PositiveInt | None = None
    task: Annotated[str, AfterValidator(_check_function)] | None = None
    worker: WorkerSpec = WorkerSpec()
    retry: RetrySpec = RetrySpec()
    evaluate: list[Annotated[EvaluateSpec, BeforeValidator(_name_as_mapping)]] = Field(default_factory=list)
    placement: Annotated[PlacementSpec, BeforeValidator(_name_as_mapping)] | None = None
    adapt: AdaptSpec | None = None
    link_events: list[LinkEventSpec] = Field(default_factory=list, max_length=1000)
    exits: ExitsSpec | None = None
    upload: UploadSpec | None = None

    @property
    def pipelined(self) -> bool:
        """A sweep over tiers: more than two groups, or a placement strategy choosing hosts and cuts.
        Two groups with one cut per pipeline is the plain edge and cloud form."""
        return len(self.hosts.pipeline) > 2 or self.placement is not None
