"""An upload plan and what it predicts: when each partition is up, how fast a query is from then on,
and how many back-to-back queries finish before the upload does.

The prediction is the planners' own model (the seed's Figure 3): partitions go up one after another
at the link's full rate, a query runs through the latest partition that is up when it starts, and a
query's traffic does not slow the upload. ``simulate`` replays a plan with the link shared.
"""

from dataclasses import dataclass

from harness.partition.upload.chain import UploadChain

FIRST_QUERY = ("wait", "local")


@dataclass(frozen=True)
class UploadPlan:
    """Partitions in upload order, each the chain's unit indices it carries."""

    planner: str
    partitions: tuple[tuple[int, ...], ...]

    def uploaded_after(self, count: int, units: int) -> list[bool]:
        uploaded = [False] * units
        for partition in self.partitions[:count]:
            for index in partition:
                uploaded[index] = True
        return uploaded


@dataclass(frozen=True)
class Stage:
    """Partition ``number`` (1-based): its units, bytes and upload time, when it is up, and a
    query's latency from then on (with every partition up to it on the server)."""

    number: int
    units: tuple[int, ...]
    param_bytes: int
    upload_ms: float
    done_ms: float
    latency_ms: float
    improvement_ms: float


@dataclass(frozen=True)
class Query:
    number: int
    start_ms: float
    end_ms: float
    stage: int


@dataclass(frozen=True)
class Timeline:
    """``local_ms``: a query all on the client; ``initial_ms``: before any partition is up (units
    that need no upload may already run on the server)."""

    plan: UploadPlan
    local_ms: float
    initial_ms: float
    stages: tuple[Stage, ...]

    @property
    def upload_end_ms(self) -> float:
        return self.stages[-1].done_ms if self.stages else 0.0

    def stage_at(self, time_ms: float) -> int:
        """The number of partitions up at ``time_ms`` (0: none)."""
        return sum(1 for stage in self.stages if stage.done_ms <= time_ms)

    def latency_at(self, stage: int) -> float:
        return self.stages[stage - 1].latency_ms if stage else self.initial_ms

    def queries(self, first_query: str = "wait", after: int = 5) -> list[Query]:
        """Back-to-back queries from the upload's start until ``after`` more have run once it ended;
        the first waits for the first partition (the seed) or starts at once on the client (``local``)."""
        clock = self.stages[0].done_ms if first_query == "wait" and self.stages else 0.0
        queries: list[Query] = []
        late = 0
        while True:
            if clock >= self.upload_end_ms:
                if late == after:
                    return queries
                late += 1
            stage = self.stage_at(clock)
            end = clock + self.latency_at(stage)
            queries.append(Query(len(queries) + 1, clock, end, stage))
            clock = end

    def queries_before_end(self, first_query: str = "wait") -> int:
        return sum(1 for query in self.queries(first_query, after=0) if query.end_ms <= self.upload_end_ms)

    @property
    def largest_share(self) -> float:
        """The largest partition's share of the bytes uploaded."""
        total = sum(stage.param_bytes for stage in self.stages)
        return max(stage.param_bytes for stage in self.stages) / total if total else 0.0


def timeline(chain: UploadChain, plan: UploadPlan) -> Timeline:
    local = chain.local_ms()
    stages, clock = [], 0.0
    for number, partition in enumerate(plan.partitions, start=1):
        upload = sum(chain.upload_ms[index] for index in partition)
        clock += upload
        latency = chain.latency_ms(plan.uploaded_after(number, len(chain)))
        stages.append(
            Stage(
                number,
                partition,
                sum(chain.units[index].param_bytes for index in partition),
                upload,
                clock,
                latency,
                local - latency,
            )
        )
    return Timeline(plan, local, chain.latency_ms([False] * len(chain)), tuple(stages))
