"""Upload planners (IONN and seed 004) on the seed's worked example, on random chains against brute
force, and on the published AlexNet profile against the seed's result."""

import itertools
import random
from pathlib import Path

import pytest

from harness.errors import BadInput
from harness.partition.upload import UploadChain, plan_upload, planner_names
from harness.partition.upload.chain import Unit
from harness.partition.upload.efficiency import efficiency_of
from harness.partition.upload.published import published_chain
from harness.partition.upload.simulate import TC_QUEUE, Contention, StageCost, UploadQueue, simulate
from harness.partition.upload.timeline import UploadPlan, timeline
from harness.registry import UPLOAD_PLANNERS
from harness.wire.frames import UPLOAD_WINDOW

PUBLISHED = Path(__file__).resolve().parents[3] / "shared" / "data" / "ionn" / "alexnet-caffe.csv"
EIGHTY_MBPS_AS_COUNTED = 80 * 1024 * 1024 / 8000
"""Bytes per millisecond: IONN's code counts a megabit as 1024 x 1024 bits."""


def seed_example() -> UploadChain:
    """Layers A..D of the seed's Figures 2 to 4: client 10, 19, 14, 3; server 3, 2, 2, 1; upload 8,
    8, 16, 8; 5, 4, 4 and 8 into each layer and 2 out of D, at one byte per time unit."""
    units = tuple(
        Unit(name, client, server, upload)
        for name, client, server, upload in zip("ABCD", (10, 19, 14, 3), (3, 2, 2, 1), (8, 8, 16, 8), strict=True)
    )
    return UploadChain("seed-example", units, (5, 4, 4, 8, 2), rate=1.0)


def named(chain: UploadChain, plan) -> list[str]:
    return ["".join(chain.units[index].name for index in partition) for partition in plan.partitions]


@pytest.mark.parametrize(
    ("planner", "options", "expected"),
    [
        ("ionn", {"K": 0.5}, ["B", "ACD"]),
        ("ionn", {"step": 0.0001}, ["B", "A", "CD"]),
        ("efficiency", {}, ["B", "A", "CD"]),
        ("recursive-efficiency", {}, ["B", "A", "C", "D"]),
        ("all-at-once", {}, ["ABCD"]),
        ("layerwise", {}, ["A", "B", "C", "D"]),
    ],
)
def test_seed_example_partitions(planner, options, expected):
    chain = seed_example()
    assert named(chain, plan_upload(planner, chain, **options).plan) == expected


def test_recursive_improvement_timeline_is_the_seeds_figure_3c():
    timeline = plan_upload("recursive-efficiency", seed_example()).timeline
    assert [(stage.done_ms, stage.improvement_ms) for stage in timeline.stages] == [
        (8, 9),
        (16, 15),
        (32, 23),
        (40, 31),
    ]
    assert timeline.local_ms == 46


def test_efficiencies_after_b_are_the_seeds():
    chain = seed_example()
    state = chain.state([False, True, False, False])
    found = [efficiency_of(state, first, last) for first, last in ((0, 0), (2, 3), (2, 2), (3, 3))]
    assert found == pytest.approx([0.75, 2 / 3, 0.5, -1.0])


def test_queries_wait_for_the_first_partition_or_start_locally():
    timeline = plan_upload("recursive-efficiency", seed_example()).timeline
    waiting = timeline.queries("wait", after=2)
    assert [(query.start_ms, query.end_ms, query.stage) for query in waiting] == [
        (8, 45, 1),
        (45, 60, 4),
        (60, 75, 4),
    ]
    local = timeline.queries("local", after=1)
    assert [(query.start_ms, query.stage) for query in local] == [(0, 0), (46, 4)]
    assert timeline.queries_before_end("wait") == 0
    assert timeline.queries_before_end("local") == 0


def random_chain(rng: random.Random, size: int) -> UploadChain:
    units = tuple(
        Unit(
            f"u{index}",
            client_ms=rng.uniform(1, 50),
            server_ms=rng.uniform(0.1, 10),
            param_bytes=0 if rng.random() < 0.25 else rng.randint(1, 400),
            build_ms=rng.choice([0.0, rng.uniform(0, 3)]),
        )
        for index in range(size)
    )
    boundaries = tuple(rng.randint(1, 200) for _ in range(size + 1))
    return UploadChain(f"random-{size}", units, boundaries, rate=rng.uniform(2, 20), delay_ms=rng.choice([0, 0.5]))


def brute_force(chain: UploadChain, allowed: list[bool]) -> float:
    """The least latency over every placement of the units (the reference for the dynamic program)."""
    best = float("inf")
    for places in itertools.product((0, 1), repeat=len(chain)):
        if any(place and not (allowed[index] or chain.free[index]) for index, place in enumerate(places)):
            continue
        total, where = 0.0, 0
        for index, place in enumerate(places):
            total += chain.transfer_ms[index] if place != where else 0.0
            total += chain.units[index].server_ms if place else chain.units[index].client_ms
            where = place
        best = min(best, total + (chain.transfer_ms[-1] if where else 0.0))
    return best


CHAINS = [random_chain(random.Random(seed), random.Random(seed).randint(2, 9)) for seed in range(100)]


@pytest.mark.parametrize("planner", ["efficiency", "recursive-efficiency", "ionn"])
def test_plans_on_random_chains_keep_the_rules(planner):
    for chain in CHAINS:
        planned = plan_upload(planner, chain)
        partitions = planned.plan.partitions
        units = [index for partition in partitions for index in partition]
        assert len(units) == len(set(units)), chain.model
        optimal = set(chain.optimal_units())
        if planner == "ionn":
            assert optimal <= set(units), chain.model
        else:
            assert set(units) == optimal, chain.model
            for partition in partitions:
                first = chain.costly.index(partition[0])
                assert partition == chain.costly[first : first + len(partition)], (chain.model, partition)
        optimum = brute_force(chain, [True] * len(chain))
        assert chain.best()[0] == pytest.approx(optimum)
        stages = planned.timeline.stages
        assert planned.timeline.latency_at(len(stages)) == pytest.approx(optimum), chain.model
        for stage in stages:
            uploaded = planned.plan.uploaded_after(stage.number, len(chain))
            state = chain.state(uploaded)
            assert stage.latency_ms == pytest.approx(brute_force(chain, uploaded))
            assert all(uploaded[index] or chain.free[index] for index in state.server_units())
        again = plan_upload(
            planner, UploadChain(chain.model, chain.units, chain.boundary_bytes, chain.rate, chain.delay_ms)
        )
        assert again.plan == planned.plan


@pytest.mark.skipif(not PUBLISHED.is_file(), reason=f"the published IONN profile is not at {PUBLISHED}")
def test_published_alexnet_reproduces_the_seed():
    chain = published_chain(PUBLISHED, EIGHTY_MBPS_AS_COUNTED)
    ionn = plan_upload("ionn", chain, K=0.5)
    recursive = plan_upload("recursive-efficiency", chain)
    assert len(ionn.plan.partitions) == 3
    assert len(recursive.plan.partitions) == 7
    before = ionn.timeline.queries_before_end("wait")
    after = recursive.timeline.queries_before_end("wait")
    assert after / before == pytest.approx(1.551, abs=0.03)
    assert recursive.timeline.largest_share < ionn.timeline.largest_share


@pytest.mark.parametrize(
    ("planner", "options", "message"),
    [
        ("greedy", {}, "upload plan 'greedy': expected one of all-at-once, efficiency, ionn, layerwise"),
        ("ionn", {"K": 1.5}, "upload plan 'ionn': K is 1.5; expected a number in (0, 1)"),
        ("ionn", {"K": 0}, "upload plan 'ionn': K is 0; expected a number in (0, 1)"),
        ("ionn", {"step": True}, "upload plan 'ionn': step is True; expected a number in (0, 1)"),
        ("ionn", {"K": 0.5, "step": 0.1}, "upload plan 'ionn': K and step; expected one"),
        ("efficiency", {"K": 0.5}, "upload plan 'efficiency': unknown option K; expected none"),
    ],
)
def test_bad_planner_or_options_are_refused(planner, options, message):
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_upload(planner, seed_example(), **options)


def test_every_planner_the_manifest_names_is_registered():
    assert planner_names() == sorted(UPLOAD_PLANNERS)


def test_simulation_shares_the_link_between_the_upload_and_the_queries():
    """A free unit, then 1,000 and 10,000 bytes of weights, at 100 bytes/ms in chunks of 1,000: the
    first query waits for the first acknowledgement (10 ms of upload, 0.64 ms of ack); its 1,000 byte
    request shares the link with the chunk already on it (936 bytes each at half the rate, to 29.36
    ms), then has it alone, no chunk starting until it has crossed (30 ms). The link never idles
    while the upload lasts, so the last partition is up once its 11,000 bytes and the two requests'
    2,000 have crossed (130 ms, not the predicted 110) and its ack has come back."""
    units = (
        Unit("free", 10, 1, 0),
        Unit("small", 100, 1, 1_000),
        Unit("large", 50, 1, 10_000),
    )
    chain = UploadChain("shared-link", units, (1_000, 1_000, 100, 100), rate=100.0)
    planned = timeline(chain, UploadPlan("by-hand", ((1,), (2,))))
    assert [stage.done_ms for stage in planned.stages] == [10, 110]
    assert planned.queries_before_end("wait") == 1
    replay = simulate(chain, planned, chunk_bytes=1_000, after=1)
    first_request = 10.64 + 936 / 50 + 64 / 100
    second_request = 83 + 700 / 50 + 300 / 100
    assert replay.acked_ms == pytest.approx((10.64, 130.64))
    assert [(query.start_ms, query.end_ms, query.stage) for query in replay.queries] == [
        pytest.approx((10.64, first_request + 2 + 1 + 50, 1)),
        pytest.approx((83.0, second_request + 2 + 1 + 50, 1)),
        pytest.approx((153.0, 153.0 + 10 + 3 + 1, 2)),
    ]
    assert replay.queries_before_end() == 1


def test_a_client_that_pays_for_its_upload_in_compute_is_replayed_slower():
    """One unit of 10 ms on the client and 1,000 bytes of weights, sent in ten 1 ms chunks while
    queries run here from the start. Alone, the upload is acknowledged at 10.64 ms and the client's
    first query ends at 10. With the client's layers twice as slow while it uploads, and the upload at
    half the rate while the client computes, every chunk after the first (sent before the first query
    began) takes 2 ms: the upload is acknowledged at 19.64 ms, after the first query's end at 20."""
    chain = UploadChain("contended", (Unit("weights", 10, 1, 1_000),), (100, 100), rate=100.0)
    planned = timeline(chain, UploadPlan("by-hand", ((0,),)))
    alone = simulate(chain, planned, chunk_bytes=100, first_query="local", after=1)
    assert alone.acked_ms == pytest.approx((10.64,))
    assert [(query.start_ms, query.end_ms, query.stage) for query in alone.queries] == [
        pytest.approx((0, 10, 0)),
        pytest.approx((10, 20, 0)),
        pytest.approx((20, 23, 1)),
    ]
    assert alone.queries_before_end() == 1
    paid = Contention(stages=(StageCost(client_scale=2.0), StageCost()), upload_share=0.5)
    contended = simulate(chain, planned, 100, "local", 1, paid)
    assert contended.acked_ms == pytest.approx((19.64,))
    assert [(query.start_ms, query.end_ms, query.stage) for query in contended.queries] == [
        pytest.approx((0, 20, 0)),
        pytest.approx((20, 23, 1)),
    ]
    assert contended.queries_before_end() == 0


def test_a_stage_costs_what_its_queries_cost_beside_the_measured_upload():
    """The shared-link instance with stage 1's queries measured at 1.2 times the client's profile,
    3 times the worker's, and 40 ms of messages. The first query's request crosses as before (to 30
    ms), the worker runs free and small in 6 ms, the reply takes 1 (messages so far 20.36 ms), large
    runs here in 60 (to 97), and the query waits out the messages' other 19.64 ms: it ends at 116.64.
    Without the second request of before, the upload's chunks fill the link from 30 on, the last
    one due at 120; the next query's request halves its last 336 bytes, so it lands at 123.36, which
    ends the upload, and is acknowledged at 124. That query's request crosses alone from then (to
    130), and the rest of it runs as profiled: the worker to 132, the reply to 133, large to 183.
    The last query runs after the upload (14 ms); stage 2's cost is never paid."""
    units = (Unit("free", 10, 1, 0), Unit("small", 100, 1, 1_000), Unit("large", 50, 1, 10_000))
    chain = UploadChain("shared-link", units, (1_000, 1_000, 100, 100), rate=100.0)
    planned = timeline(chain, UploadPlan("by-hand", ((1,), (2,))))
    costs = (StageCost(), StageCost(client_scale=1.2, server_scale=3.0, messages_ms=40.0), StageCost(5.0, 5.0, 100.0))
    replay = simulate(chain, planned, chunk_bytes=1_000, after=1, contention=Contention(stages=costs))
    assert replay.acked_ms == pytest.approx((10.64, 124.0))
    assert [(query.start_ms, query.end_ms, query.stage) for query in replay.queries] == [
        pytest.approx((10.64, 116.64, 1)),
        pytest.approx((116.64, 183.0, 1)),
        pytest.approx((183.0, 197.0, 2)),
    ]
    with pytest.raises(ValueError, match="contention has 2 stage costs; expected 3"):
        simulate(chain, planned, 1_000, contention=Contention(stages=costs[:2]))


@pytest.mark.parametrize("cost", [(0.0, 1.0, 0.0), (1.0, -1.0, 0.0), (1.0, 1.0, -0.5)])
def test_a_stage_cost_out_of_range_is_refused(cost):
    with pytest.raises(ValueError, match="expected scales > 0 and messages_ms >= 0"):
        StageCost(*cost)


@pytest.mark.parametrize("share", [0.0, 1.5])
def test_a_contention_out_of_range_is_refused(share):
    with pytest.raises(ValueError, match=r"expected upload_share in \(0, 1\]"):
        Contention(upload_share=share)


def _two_layer_range():
    """Layers a and b (100 bytes of weights each, 10 ms each on the worker) uploaded first, then c's
    1,000 bytes, at 100 bytes/ms in chunks of 100: the first query runs a..b on the worker as one range."""
    units = (Unit("a", 50, 10, 100), Unit("b", 50, 10, 100), Unit("c", 1, 1, 1_000))
    chain = UploadChain("range", units, (100, 100, 100, 10), rate=100.0)
    return chain, timeline(chain, UploadPlan("by-hand", ((0, 1), (2,))))


def test_the_worker_runs_a_range_whole_while_the_upload_waits_for_its_acknowledgements():
    """Under the emulated link. a and b are acknowledged at 2.64 ms; the first query's request shares
    the link with c's first chunk (to 3.36) and crosses at 4; the worker runs a..b from 4 to 24 in
    one piece, so the four chunks that land meanwhile (4 to 8) fill the window and the upload stands
    still until 24, not until a's end at 14. The reply (24 to 25) and c here end the query at 26; the
    second query's request crosses alone (26 to 27), its range runs to 47, and the commit, which came
    at 30, waits for it: its acknowledgement shares the way back with the reply, to 48.28."""
    chain, planned = _two_layer_range()
    replay = simulate(chain, planned, 100, after=1)
    assert replay.acked_ms == pytest.approx((2.64, 48.28))
    assert [(query.start_ms, query.end_ms, query.stage) for query in replay.queries] == [
        pytest.approx((2.64, 26.0, 1)),
        pytest.approx((26.0, 49.64, 1)),
        pytest.approx((49.64, 71.74, 2)),
    ]


def test_under_tc_a_request_crosses_beside_the_window_and_acknowledgements_queue_behind_replies():
    """The same plan under tc, whose kernel holds the upload's window of four chunks: the first
    request shares the link with the window for its whole way (2.64 to 4.64, not to 4), and the
    upload pauses only for its time alone (1 ms). The chunks that land during the range are
    acknowledged only after the reply (24.64 to 25.64) that left before them, and so is the last
    commit (reply 48.64 to 49.64, acknowledgement to 50.28)."""
    chain, planned = _two_layer_range()
    replay = simulate(chain, planned, 100, after=1, queue=TC_QUEUE)
    assert replay.acked_ms == pytest.approx((2.64, 50.28))
    assert [(query.start_ms, query.end_ms, query.stage) for query in replay.queries] == [
        pytest.approx((2.64, 26.64, 1)),
        pytest.approx((26.64, 50.64, 1)),
        pytest.approx((50.64, 72.74, 2)),
    ]


@pytest.mark.parametrize("held", [0, 5])
def test_an_upload_queue_holds_one_to_a_window_of_chunks(held):
    with pytest.raises(ValueError, match=f"expected 1 to {UPLOAD_WINDOW} chunks held"):
        UploadQueue(held)
