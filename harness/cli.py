"""The ``harness`` command: parse, call the library, print. Nothing else lives here."""

import json
import logging
import os
import sys
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path

import click
import torch

from harness.console import stderr_console, stdout_console
from harness.errors import BadInput, ExperimentFailed, HarnessError


class _HarnessGroup(click.Group):
    """Reports ``HarnessError`` as one line on stderr with its exit status, instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except HarnessError as error:
            click.echo(f"harness: error: {error}", err=True)
            ctx.exit(error.exit_code)


def _parse_shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(size <= 0 for size in shape):
        raise BadInput(f"--input '{text}': expected comma-separated positive integers, like 1,3,224,224")
    return shape


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        if threads < 1:
            raise BadInput(f"--threads {threads}: expected a positive number of threads")
        torch.set_num_threads(threads)


_ENERGY_OPTION = click.option(
    "--energy",
    default="auto",
    show_default=True,
    help="Power source: auto, none, rapl, nvml, jetson, or package.module:function returning watts.",
)
_POWERCAP_OPTION = click.option(
    "--powercap-root",
    type=click.Path(file_okay=False, path_type=Path),
    default="/sys/class/powercap",
    show_default=True,
    help="Where RAPL's zones are.",
)


def _model_options(function):
    """Options shared by every command that builds a split graph."""
    for option in reversed(
        [
            click.argument("model"),
            click.option(
                "--granularity",
                "-g",
                default="module",
                show_default=True,
                help="node: every graph node; module: each layer call; block: each top-level child.",
            ),
            click.option(
                "--input", "input_shape", metavar="N,C,H,W", help="Example input shape (default: the model's)."
            ),
            click.option("--weights", default=None, help="none, a named weight set (IMAGENET1K_V1), or a local file."),
        ]
    ):
        function = option(function)
    return function


def _split(model: str, granularity: str, input_shape: str | None, weights: str | None, single_tensor: bool = False):
    from harness.model import Granularity, build_split_graph, load_model

    loaded = load_model(model, weights)
    split = build_split_graph(loaded, Granularity.parse(granularity), _parse_shape(input_shape), single_tensor)
    return loaded, split


@click.group(cls=_HarnessGroup)
@click.version_option(package_name="split-harness")
def cli():
    """Split-computing experiments: cut a network, run its halves on two hosts, measure everything."""


@cli.group()
def model():
    """Inspect, verify and profile the cuts of a model."""


@model.command("list")
def model_list():
    """Every model name the harness resolves (besides module:function)."""
    from harness.model import model_names

    click.echo("\n".join(model_names()))


def _profile_options(command):
    """``--profile DIR`` and ``--run RUN``: where the latency rule reads per-layer profiles."""
    command = click.option(
        "--run", "profile_run", help="The run of --profile to read, where it has several of the model."
    )(command)
    return click.option(
        "--profile",
        "profile_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="A sweep's results folder whose edge and cloud per-layer profiles the latency rule reads.",
    )(command)


@model.command()
@_model_options
@click.option(
    "--split",
    "split_rule",
    default="memory:0.7",
    show_default=True,
    help="memory:FRACTION[:at_most|at_least] (parameter bytes of the edge part), layers:FRACTION, or latency "
    "(the seed's rule, on --profile).",
)
@click.option("--placement", type=click.Choice(["linear", "pareto", "flops"]), default="linear", show_default=True)
@click.option("--per-part", type=int, default=1, show_default=True, help="Exits in each part, 1 to 3.")
@click.option("--axis", type=click.Choice(["nodes", "flops"]), default="nodes", show_default=True)
@click.option("--direction", type=click.Choice(["early", "late"]), default="early", show_default=True)
@click.option(
    "--locality",
    type=click.Choice(["within", "across"]),
    default="within",
    show_default=True,
    help="within: exits placed inside each part (the seed's); across: 2 x per-part on the whole network.",
)
@click.option(
    "--template",
    help="Build each exit from this template (linear, conv-linear, replicate, a .py.j2 file, module:function).",
)
@click.option("--classes", type=int, default=1000, show_default=True, help="Logits each exit gives, with --template.")
@_profile_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def exits(
    model,
    granularity,
    input_shape,
    weights,
    split_rule,
    placement,
    per_part,
    axis,
    direction,
    locality,
    template,
    classes,
    profile_dir,
    profile_run,
    as_json,
):
    """Where the model splits into an edge and a cloud part, and where each part's exits attach;
    with --template, the memory each part's host holds, exits included."""
    from harness.exits.assemble import assemble
    from harness.exits.present import exit_plan_record, exit_plan_table
    from harness.exits.resolve import SplitRule, folder_profiles, plan_exits

    rule = SplitRule.parse(split_rule)
    _, split = _split(model, granularity, input_shape, weights)
    profiles = folder_profiles(profile_dir, split, profile_run) if profile_dir else None
    plan = plan_exits(split, rule, placement, per_part, axis, direction=direction, profiles=profiles, locality=locality)
    memory = assemble(split, plan, template, classes).memory() if template else None
    if as_json:
        click.echo(json.dumps(exit_plan_record(plan, memory), indent=2))
    else:
        stdout_console().print(exit_plan_table(plan, memory))


@model.command()
@_model_options
@click.option("--single-tensor", is_flag=True, help="Keep only cuts where exactly one tensor crosses.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def inspect(model, granularity, input_shape, weights, single_tensor, as_json):
    """Every cut point: what crosses, bytes, parameters and FLOPs on each side."""
    from harness.model.present import cut_table, split_record

    _, split = _split(model, granularity, input_shape, weights, single_tensor)
    if as_json:
        click.echo(json.dumps(split_record(split), indent=2))
    else:
        stdout_console().print(cut_table(split))


@model.command()
@_model_options
@click.option(
    "--tolerance", default=1e-5, show_default=True, help="Allowed difference, relative to the output's scale."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def verify(model, granularity, input_shape, weights, tolerance, as_json):
    """Check that tail(head(x)) equals the unsplit output at every cut."""
    from rich.progress import Progress

    from harness.model.present import verify_lines, verify_record
    from harness.model.verify import verify as verify_cuts

    loaded, split = _split(model, granularity, input_shape, weights)
    with Progress(console=stderr_console(), transient=True) as progress:
        task = progress.add_task(f"verifying {model}", total=len(split.cuts))
        report = verify_cuts(split, loaded.module, tolerance, on_cut=lambda cut, check: progress.advance(task))
    if as_json:
        click.echo(json.dumps(verify_record(report, split), indent=2))
    else:
        click.echo("\n".join(verify_lines(report, split)))
    if report.failures:
        raise ExperimentFailed(f"{len(report.failures)} of {len(report.checks)} cuts of {model} are not exact")


@model.command()
@_model_options
@click.option("--repeats", default=20, show_default=True, help="Measured runs.")
@click.option("--warmup", default=5, show_default=True, help="Unmeasured runs first.")
@click.option("--threads", type=int, default=None, help="torch threads (default: torch's own choice).")
@click.option("--cut", type=int, default=None, help="Profile head and tail of this cut (default: whole model).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--energy", "with_energy", is_flag=True, help="Also joules per layer, from this host's power source.")
@click.option("--energy-source", default="auto", show_default=True, help="auto, rapl, nvml, jetson or module:function.")
@_POWERCAP_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def profile(
    model,
    granularity,
    input_shape,
    weights,
    repeats,
    warmup,
    threads,
    cut,
    device,
    with_energy,
    energy_source,
    powercap_root,
    as_json,
):
    """Per-layer latency (median, p95) from forward hooks on the executed segments; with --energy,
    joules per layer, each layer run alone until its energy is well above the sensor's resolution."""
    from harness.energy import open_meter
    from harness.energy.sources import auto_order
    from harness.model.present import profile_record, profile_table
    from harness.model.profile import profile as profile_layers
    from harness.worker.hostinfo import compute_device

    if repeats < 1 or warmup < 0:
        raise BadInput(f"--repeats {repeats} --warmup {warmup}: expected repeats >= 1 and warmup >= 0")
    _set_threads(threads)
    _, split = _split(model, granularity, input_shape, weights)
    chosen = compute_device(device)
    meter = open_meter(energy_source, str(chosen), powercap_root) if with_energy else None
    if with_energy and meter is None:
        tried = f"auto tried {', '.join(auto_order(str(chosen)))}" if energy_source == "auto" else energy_source
        raise BadInput(
            f"--energy: this host has no power source ({tried}); name a meter with --energy-source "
            "package.module:function returning watts, like experiments.meters:watts_file"
        )
    report = profile_layers(split, cut, repeats, warmup, chosen)
    energy = None
    if meter is not None:
        from harness.energy.layers import energy_per_layer

        with stderr_console().status(f"joules per layer of {model} from {meter.name}"):
            energy = energy_per_layer(split, meter, report, device=chosen)
        meter.close()
    if as_json:
        click.echo(json.dumps(profile_record(report, energy), indent=2))
    else:
        stdout_console().print(profile_table(report, energy))


@cli.group()
def bench():
    """Benchmarks of the harness's own overheads."""


@bench.command("split")
@click.option("--models", default="alexnet,resnet18,mobilenet_v2", show_default=True, help="Comma-separated.")
@click.option("--repeats", default=50, show_default=True)
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--cuts", "cut_count", default="8", show_default=True, help="Cuts per model, evenly spread, or 'all'.")
@click.option("--json", "as_json", is_flag=True)
def bench_split(models, repeats, threads, cut_count, as_json):
    """Head then tail in one process against the unsplit forward (target: <= 3% more)."""
    from harness.bench.split import TARGET_OVERHEAD, bench_model, steady_allocator
    from harness.bench.tables import split_cost_table

    if cut_count != "all" and (not cut_count.isdigit() or int(cut_count) < 2):
        raise BadInput(f"--cuts '{cut_count}': expected 'all' or a number of cuts >= 2")
    count = None if cut_count == "all" else int(cut_count)
    _set_threads(threads)
    steady_allocator()
    rows = [row for name in models.split(",") for row in bench_model(name.strip(), repeats, count)]
    if as_json:
        click.echo(json.dumps([asdict(row) for row in rows], indent=2))
    else:
        stdout_console().print(split_cost_table(rows, repeats, threads))
    worst = max(rows, key=lambda row: row.overhead)
    if worst.overhead > TARGET_OVERHEAD:
        raise ExperimentFailed(
            f"{worst.model} cut {worst.cut} costs {100 * worst.overhead:.1f}% more than unsplit "
            f"(target {100 * TARGET_OVERHEAD:.0f}%)"
        )


@bench.command("partition")
@click.option("--models", default="alexnet,resnet50,googlenet", show_default=True, help="Comma-separated.")
@click.option(
    "--upload-models",
    default="alexnet,mobilenet_v2,googlenet,resnet50",
    show_default=True,
    help="Comma-separated models for the upload planners ('' for none).",
)
@click.option("--repeats", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_partition(models, upload_models, repeats, as_json):
    """Decision time per partitioner (targets on googlenet: neurosurgeon < 5 ms, dads < 50 ms) and per
    upload planner (recursive efficiency < 0.6 ms on alexnet, < 2 ms on the others; ionn < 0.5 ms)."""
    from harness.bench.partition import bench_model, bench_upload
    from harness.bench.tables import decision_cost_table

    rows = [row for name in models.split(",") if name.strip() for row in bench_model(name.strip(), repeats)]
    rows += [row for name in upload_models.split(",") if name.strip() for row in bench_upload(name.strip(), repeats)]
    if as_json:
        click.echo(json.dumps([asdict(row) for row in rows], indent=2))
    else:
        stdout_console().print(decision_cost_table(rows, repeats))
    over = [row for row in rows if not row.within_target]
    if over:
        raise ExperimentFailed(
            f"{over[0].model} {over[0].partitioner} decides in {over[0].median_ms:.2f} ms "
            f"(target {over[0].target_ms:g} ms)"
        )


@bench.command("placement")
@click.option("--model", default="googlenet", show_default=True, help="Model whose block-granularity chain is placed.")
@click.option("--hosts", default="3,6,9,15,30,60,100,300,1000", show_default=True, help="Host counts, comma-separated.")
@click.option("--seeds", type=click.IntRange(min=1), default=5, show_default=True, help="Scenarios per host count.")
@click.option("--strategies", default="dp,ilp,genetic,cloud-only,device-only,even-split", show_default=True)
@click.option("--ilp-time-limit", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True)
@click.option("--ilp-max-hosts", type=click.IntRange(min=0), default=60, show_default=True, help="Skip ilp above.")
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("results/bench/placement.png"),
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True)
def bench_placement(model, hosts, seeds, strategies, ilp_time_limit, ilp_max_hosts, chart, as_json):
    """Seed 003's figure: strategies by host count (target: dp at 1,000 hosts in 2 s and 1 GiB)."""
    from harness.bench import placement
    from harness.bench.placement_chart import placement_chart
    from harness.bench.tables import placement_table

    counts = placement.parse_counts(hosts)
    chain = placement.model_chain(model)
    status = stderr_console()
    rows = placement.bench_placement(
        chain, counts, range(seeds), placement.parse_strategies(strategies), ilp_time_limit, ilp_max_hosts, status.log
    )
    chart.parent.mkdir(parents=True, exist_ok=True)
    placement_chart(rows, model, chart)
    if as_json:
        click.echo(json.dumps([asdict(row) for row in rows], indent=2))
    else:
        stdout_console().print(placement_table(rows, model, len(chain.flops), seeds))
        stdout_console().print(f"chart: {chart}")
    over = [row for row in rows if row.within_target is False]
    if over:
        worst = over[0]
        raise ExperimentFailed(
            f"dp at {worst.hosts} hosts took {worst.solve_s:.2f} s and {worst.peak_bytes / 2**20:.0f} MiB "
            f"(target {placement.DP_TARGET_S:g} s, {placement.DP_TARGET_BYTES >> 20} MiB)"
        )


@bench.command("wire")
@click.option("--sizes", default="4k,16k,64k,256k,1m", show_default=True, help="float32 tensor sizes in bytes (k, m).")
@click.option("--repeats", default=200, show_default=True, help="Timed round trips per method and size.")
@click.option("--warmup", default=20, show_default=True, help="Untimed round trips first.")
@click.option("--json", "as_json", is_flag=True)
def bench_wire(sizes, repeats, warmup, as_json):
    """Tensor round trip: our codec against raw ZeroMQ bytes and pickle+blosc2 (target: <= 1.3x raw)."""
    from harness.bench import wire
    from harness.bench.tables import wire_cost_table

    if repeats < 1 or warmup < 0:
        raise BadInput(f"--repeats {repeats} --warmup {warmup}: expected repeats >= 1 and warmup >= 0")
    rows = wire.bench_wire(wire.parse_sizes(sizes), repeats, warmup)
    if as_json:
        click.echo(json.dumps([asdict(row) for row in rows], indent=2))
    else:
        stdout_console().print(wire_cost_table(rows, repeats, warmup))
    target = wire.target_row(rows)
    if target.ratio_to_raw > wire.TARGET_RATIO:
        raise ExperimentFailed(
            f"{target.method} at {wire.size_label(target.size)} costs {target.ratio_to_raw:.2f}x the raw-bytes "
            f"round trip (target {wire.TARGET_RATIO}x)"
        )


@cli.group()
def keys():
    """CurveZMQ keys for workers and their clients."""


@keys.command("gen")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--client", "clients", multiple=True, default=("edge",), show_default=True, help="Client key names.")
def keys_gen(directory, clients):
    """Make the worker's key pair, one pair per client, and clients/ (the keys the worker accepts)."""
    from harness.wire.keys import generate

    for path in generate(directory, tuple(clients)):
        click.echo(str(path))


def _client_keys(directory: Path | None, name: str):
    from harness.wire import client_keys

    return client_keys(directory, name) if directory else None


_KEYS_OPTION = click.option(
    "--keys", type=click.Path(file_okay=False, path_type=Path), help="Key directory from `harness keys gen`."
)


@cli.group()
def worker():
    """The cloud worker daemon and the edge driver that uses it."""


@worker.command()
@click.option("--bind", "endpoint", required=True, help="tcp://HOST:PORT to listen on (PORT * picks a free one).")
@_KEYS_OPTION
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--threads", type=int, default=None, help="torch threads (default: torch's own choice).")
@click.option("--weights-dir", type=click.Path(file_okay=False, path_type=Path), help="Weight files clients may name.")
@click.option(
    "--user-package",
    "user_packages",
    multiple=True,
    default=("experiments",),
    show_default=True,
    help="Packages whose module:function models clients may name.",
)
@click.option("--max-models", default=4, show_default=True, help="Models kept loaded at once.")
@click.option("--max-message-mb", default=256, show_default=True, help="Largest request accepted.")
@click.option("--max-sessions", default=2, show_default=True, help="Upload sessions open at once (each holds a model).")
@click.option("--max-chunk-mb", default=16, show_default=True, help="Largest chunk of an upload accepted.")
@click.option(
    "--peer",
    "peers",
    multiple=True,
    help="A worker's tcp://HOST:PORT this one may forward to in a pipeline (with --keys, as client 'edge').",
)
@_ENERGY_OPTION
@_POWERCAP_OPTION
@click.option(
    "--supervise", is_flag=True, help="Run the worker as a child and start it again when it dies (no systemd)."
)
def serve(
    endpoint,
    keys,
    device,
    threads,
    weights_dir,
    user_packages,
    max_models,
    max_message_mb,
    max_sessions,
    max_chunk_mb,
    peers,
    energy,
    powercap_root,
    supervise,
):
    """Serve model segments to edge clients (and forward to --peer workers) until SIGTERM."""
    from harness.wire import Limits, client_keys, worker_keys
    from harness.wire.sockets import check_endpoint
    from harness.worker import ModelPolicy, Worker, WorkerConfig
    from harness.worker.supervisor import Supervisor, die_with_supervisor

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if supervise:
        arguments = [argument for argument in sys.argv[1:] if argument != "--supervise"]
        sys.exit(Supervisor([sys.executable, "-m", "harness.cli", *arguments]).run())
    die_with_supervisor()
    _set_threads(threads)
    config = WorkerConfig(
        endpoint=endpoint,
        keys=worker_keys(keys) if keys else None,
        device=device,
        limits=Limits(message_bytes=max_message_mb * 1024 * 1024),
        policy=ModelPolicy(tuple(user_packages), weights_dir),
        max_models=max_models,
        max_sessions=max_sessions,
        chunk_bytes=max_chunk_mb * 1024 * 1024,
        peers=tuple(check_endpoint(peer, "--peer") for peer in peers),
        peer_keys=client_keys(keys) if keys and peers else None,
        energy=energy,
        powercap=powercap_root,
    )
    daemon = Worker(config)
    daemon.stop_on_signals()
    security = "CurveZMQ, known clients only" if keys else "loopback, no keys"
    power = daemon.energy.name if daemon.energy is not None else "none"
    click.echo(
        f"worker listening on {daemon.endpoint} (pid {os.getpid()}, device {device}, {security}, energy {power})"
    )
    daemon.serve()


@worker.command()
@click.argument("endpoint")
@_KEYS_OPTION
@click.option("--client", "client_name", default="edge", show_default=True, help="Which client key pair to use.")
@click.option("--timeout", default=5.0, show_default=True, help="Seconds to wait for the answer.")
@click.option("--json", "as_json", is_flag=True)
def ping(endpoint, keys, client_name, timeout, as_json):
    """A worker's state: uptime, requests served, models loaded. Exit 1 if it does not answer."""
    from harness.worker import WorkerClient
    from harness.worker.present import state_lines, state_record

    with WorkerClient(endpoint, _client_keys(keys, client_name)) as client:
        state = client.ping(timeout)
    click.echo(
        json.dumps(state_record(endpoint, state), indent=2) if as_json else "\n".join(state_lines(endpoint, state))
    )


@worker.command()
@_model_options
@click.option(
    "--connect",
    "endpoints",
    required=True,
    multiple=True,
    help="The worker's tcp://HOST:PORT; repeated, the workers of a pipeline in hop order.",
)
@_KEYS_OPTION
@click.option("--client", "client_name", default="edge", show_default=True, help="Which client key pair to use.")
@click.option(
    "--cuts",
    default="all",
    show_default=True,
    help="'all' or comma-separated cut indices; for a pipeline, its cuts, one per worker.",
)
@click.option("--repeats", default=5, show_default=True, help="Recorded inferences per cut.")
@click.option("--warmup", default=1, show_default=True, help="Unrecorded inferences per cut first.")
@click.option(
    "--inputs", "input_count", default=1, show_default=True, help="Synthetic inputs, taken in turn by the repeats."
)
@click.option("--rate", default=None, help="Emulate a link of this rate (4MB/s, 32mbit); default: unshaped.")
@click.option("--delay", default="0", show_default=True, help="One-way delay added by the emulated link (20ms).")
@click.option("--compression", default="none", show_default=True, help="none, lz4, zstd:3, lz4:5:bit ...")
@click.option(
    "--codec", "cut_codec", default="none", show_default=True, help="Cut codec: fp16, int8, int8-channel, topk:0.1 ..."
)
@_ENERGY_OPTION
@_POWERCAP_OPTION
@click.option("--threads", type=int, default=None, help="torch threads (default: torch's own choice).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write records as JSON lines.")
@click.option("--json", "as_json", is_flag=True, help="Print records as JSON lines instead of a table.")
def edge(
    model,
    granularity,
    input_shape,
    weights,
    endpoints,
    keys,
    client_name,
    cuts,
    repeats,
    warmup,
    input_count,
    rate,
    delay,
    compression,
    cut_codec,
    energy,
    powercap_root,
    threads,
    out,
    as_json,
):
    """Run heads here and tails on a worker, for every chosen cut; one record per inference.

    With several --connect, one pipeline: the edge runs to the first of --cuts, each worker to the
    next (each must list the next with --peer), the last replies here."""
    from rich.progress import Progress

    from harness.energy import open_meter
    from harness.partition import cyclic
    from harness.wire import Compression, CutCodec, ModelSpec, parse_delay, parse_rate
    from harness.worker import EdgeDriver, LinkSettings, sweep, synthetic_inputs
    from harness.worker.edge import connect_pipeline
    from harness.worker.present import edge_table, hop_table

    if repeats < 1 or warmup < 0 or input_count < 1:
        raise BadInput(f"--repeats {repeats} --warmup {warmup} --inputs {input_count}: expected >= 1, >= 0, >= 1")
    codec = Compression.parse(compression)
    cut_coding = CutCodec.parse(cut_codec)
    link = LinkSettings("emulated", parse_rate(rate), parse_delay(delay)) if rate else LinkSettings()
    _set_threads(threads)
    _, split = _split(model, granularity, input_shape, weights)
    chosen = [cut.index for cut in split.cuts] if cuts == "all" else [split.cut(i).index for i in _parse_ints(cuts)]
    pipeline = len(endpoints) > 1
    if pipeline and cuts == "all":
        raise BadInput(f"--cuts all: a pipeline of {len(endpoints)} workers takes its cuts, one per worker, like 3,13")
    spec = ModelSpec(name=model, granularity=granularity, input_shape=split.input_shape, weights=weights or "none")
    inputs = synthetic_inputs(split.input_shape, input_count)
    records, hops = [], []
    with ExitStack() as stack:
        clients = connect_pipeline(endpoints, _client_keys(keys, client_name))
        for client in clients:
            stack.callback(client.close)
        sink = stack.enter_context(out.open("w")) if out else None
        progress = stack.enter_context(Progress(console=stderr_console(), transient=True))
        plans = [tuple(chosen)] if pipeline else chosen
        task = progress.add_task(f"{model} via {' then '.join(endpoints)}", total=len(plans) * repeats)
        meter = open_meter(energy, powercap=powercap_root)
        if meter is not None:
            stack.callback(meter.close)
        driver = EdgeDriver(clients, split, spec, codec, link, codec=cut_coding, energy=meter)
        for record, _, record_hops in sweep(driver, cyclic(plans, repeats), inputs, warmup):
            records.append(record)
            hops += record_hops
            line = json.dumps(record.as_dict())
            if sink:
                sink.write(line + "\n")
                sink.flush()
            if as_json:
                click.echo(line)
            progress.update(task, advance=1, description=f"cut {record.cut}: {record.e2e_ns / 1e6:.1f} ms")
    if not as_json:
        stdout_console().print(edge_table(records))
        if pipeline:
            stdout_console().print(hop_table(hops))


def _parse_ints(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise BadInput(f"--cuts '{text}': expected 'all' or comma-separated integers, like 0,3,13") from None


@cli.command("report")
@click.argument("results_dir", type=click.Path(path_type=Path))
def report_command(results_dir):
    """Rebuild summary.csv, the charts and report.html from a results folder's records."""
    from harness.results import build_report
    from harness.results.report import summary_tables

    for path in build_report(results_dir):
        click.echo(str(path))
    for table in summary_tables(results_dir):
        stdout_console().print(table)


@cli.group("results")
def results_group():
    """The results catalog: every sweep registered in ROOT/catalog.duckdb, its records read in place."""


_ROOT_OPTION = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="The results root whose catalog.duckdb is read.",
)


@results_group.command("ls")
@_ROOT_OPTION
@click.option("--manifest", "manifest_name", help="Only the sweeps of this manifest name.")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
def results_ls(root, manifest_name, as_json):
    """Registered sweeps, newest first."""
    from harness.results.catalog import Catalog
    from harness.results.catalog_tables import catalog_table, entry_record

    entries = Catalog(root).entries(manifest_name)
    if as_json:
        click.echo(json.dumps([entry_record(entry) for entry in entries], indent=2))
    else:
        stdout_console().print(catalog_table(root, entries))


@results_group.command("show")
@click.argument("run_id")
@_ROOT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the entry and the medians per cut as JSON.")
def results_show(run_id, root, as_json):
    """One sweep's catalog entry and its medians per run and cut, computed over its records.parquet."""
    from harness.results.catalog import Catalog
    from harness.results.catalog_tables import cut_medians_table, entry_record, entry_table

    catalog = Catalog(root)
    entry = catalog.entry(run_id)
    medians = catalog.cut_medians(run_id) if entry["rows"] else None
    if as_json:
        cuts = [] if medians is None else medians.to_dict(orient="records")
        click.echo(json.dumps({"entry": entry_record(entry), "cuts": cuts}, indent=2))
        return
    stdout_console().print(entry_table(entry))
    if medians is None:
        click.echo(f"{run_id} recorded no inferences")
    else:
        stdout_console().print(cut_medians_table(run_id, medians))


@results_group.command("compare")
@click.argument("a")
@click.argument("b")
@_ROOT_OPTION
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), help="Where the chart goes (default: B's folder)."
)
def results_compare(a, b, root, out):
    """Median end-to-end time per run and cut of sweeps A and B, B/A, and a chart compare-A.png."""
    from harness.results.catalog import Catalog
    from harness.results.catalog_tables import comparison_table
    from harness.results.comparison import compare

    comparison = compare(Catalog(root), a, b, out)
    stdout_console().print(comparison_table(comparison))
    click.echo(str(comparison.chart))


@results_group.command("register")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    help="The results root whose catalog.duckdb gets the folder (default: the folder's parent, as a sweep does).",
)
@click.option("--status", default="ok", show_default=True, help="How the sweep ended: ok, failed, interrupted, ...")
def results_register(folder, root, status):
    """Add a results folder to the catalog, or update its entry (the folder's name is its run id)."""
    from harness.results.catalog import Catalog
    from harness.results.catalog_tables import entry_table

    folder = folder.resolve()
    catalog = Catalog(root or folder.parent)
    catalog.register(folder, status=status)
    stdout_console().print(entry_table(catalog.entry(folder.name)))


@results_group.command("sql")
@click.argument("query")
@_ROOT_OPTION
def results_sql(query, root):
    """Run a read-only SQL query on the catalog: tables sweeps, sweep_runs and link_matrices; views
    records, decisions, exits (one row per placement and threshold of a sweep with early exits) and links."""
    from harness.results.catalog import Catalog
    from harness.results.catalog_tables import query_table

    stdout_console().print(query_table(Catalog(root).query(query)))


_INVENTORY_OPTION = click.option(
    "-i",
    "--inventory",
    type=click.Path(path_type=Path),
    default=Path("inventory/local"),
    show_default=True,
    help="The lab: an Ansible inventory with the manifest's groups.",
)
_SET_OPTION = click.option(
    "--set", "sets", multiple=True, metavar="KEY=VALUE", help="A manifest variable (repeatable)."
)


def _relay(inventory: Path) -> None:
    """A lab's hosts are reached only from inside its observer namespace: run this command there."""
    from harness.lab import lab_state_dir
    from harness.lab.relay import relay_to_observer

    status = relay_to_observer(lab_state_dir(inventory), sys.argv[1:])
    if status is not None:
        sys.exit(status)


def _run_manifest(
    manifest: Path,
    inventory: Path,
    sets: tuple[str, ...],
    out: Path | None,
    dry_run: bool = False,
    resume: Path | None = None,
):
    """The sweep of MANIFEST as `harness sweep` runs it, with its outcome printed; None on a dry run."""
    from harness.sweep.controller import prepare, run_sweep
    from harness.sweep.present import outcome_lines

    _relay(inventory)
    loaded = prepare(manifest, inventory, list(sets))
    if dry_run:
        from harness.manifest.present import runs_table

        stdout_console().print(runs_table(loaded.runs))
        if loaded.manifest.pipelined:
            from harness.sweep.pipelines import choose_pipelines
            from harness.sweep.present import pipelines_table

            stdout_console().print(pipelines_table(choose_pipelines(loaded, inventory)))
        click.echo(f"dry run: {len(loaded.runs)} runs on {inventory}; nothing was started")
        return None
    outcome = run_sweep(loaded, inventory, out, stderr_console(), resume)
    click.echo("\n".join(outcome_lines(outcome)))
    return outcome


@cli.command("sweep")
@click.argument("manifest", type=click.Path(path_type=Path))
@_INVENTORY_OPTION
@_SET_OPTION
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), help="Results folder (default results/NAME-TIME)."
)
@click.option("--dry-run", is_flag=True, help="Render, validate and list the runs; start nothing.")
@click.option(
    "--resume",
    type=click.Path(file_okay=False, path_type=Path),
    help="Continue the stopped sweep that wrote this results folder, running only what it did not record.",
)
def sweep_command(manifest, inventory, sets, out, dry_run, resume):
    """Provision, shape, deploy, sweep every run of MANIFEST, collect and tear down, through Ansible."""
    if resume is not None and out is not None:
        raise BadInput("--resume DIR continues in DIR; expected no --out with it")
    _run_manifest(manifest, inventory, sets, out, dry_run, resume)


@cli.command("regress")
@click.argument("manifest", type=click.Path(path_type=Path))
@_INVENTORY_OPTION
@click.option("--baseline", required=True, help="The results folder to compare with, or 'latest' from the catalog.")
@click.option("--tolerance", default="10%", show_default=True, help="Slowdown of the median that matters (10% or 0.1).")
@_SET_OPTION
@click.option(
    "--results",
    type=click.Path(file_okay=False, path_type=Path),
    help="Judge this finished results folder instead of running MANIFEST.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where regress.xml and regress.md go (default: the candidate's folder).",
)
@click.option("--alpha", type=float, default=0.01, show_default=True, help="Significance level of the one-sided test.")
def regress_command(manifest, inventory, baseline, tolerance, sets, results, out, alpha):
    """Run MANIFEST (or take --results) and flag the cuts slower than a baseline beyond noise; exit 1 if any."""
    from harness.manifest import load_manifest
    from harness.results.regression import compare, find_baseline, parse_tolerance
    from harness.results.regression_report import regression_table, write_outputs
    from harness.sweep.controller import RESULTS_ROOT

    fraction = parse_tolerance(tolerance)
    name = load_manifest(manifest, list(sets)).manifest.name
    if results is not None:
        chosen = find_baseline(baseline, results.parent, name, results)
    else:
        chosen = find_baseline(baseline, RESULTS_ROOT, name)
    candidate = results or _run_manifest(manifest, inventory, sets, None).folder.path
    comparison = compare(chosen, candidate, fraction, alpha, name)
    click.echo(f"{comparison.candidate} against baseline {comparison.baseline}")
    stdout_console().print(regression_table(comparison))
    if note := comparison.power_note():
        click.echo(note)
    for path in write_outputs(comparison, out or candidate):
        click.echo(str(path))
    if comparison.failed:
        raise ExperimentFailed(comparison.verdict_line())
    click.echo(comparison.verdict_line())


@bench.command("regress")
@click.option("--manifest", type=click.Path(path_type=Path), default=Path("manifests/alexnet.yml"), show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=10, show_default=True, help="Sweeps after the baseline.")
@_INVENTORY_OPTION
@_SET_OPTION
@click.option("--tolerance", default="10%", show_default=True, help="As for `harness regress`.")
@click.option("--alpha", type=float, default=0.01, show_default=True, help="As for `harness regress`.")
@click.option("--results", "from_results", is_flag=True, help="Judge FOLDERS (the baseline first); run nothing.")
@click.argument("folders", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
def bench_regress(manifest, repeats, inventory, sets, tolerance, alpha, from_results, folders):
    """False-alarm rate of `harness regress`: a baseline sweep, then unchanged repeats compared with it."""
    from harness.bench.regress import false_alarm_lines, judge_repeats, sweep_folders
    from harness.bench.tables import false_alarm_table
    from harness.results.regression import parse_tolerance

    fraction = parse_tolerance(tolerance)
    if from_results and len(folders) < 2:
        raise BadInput("--results: expected the baseline folder and at least one repeat, like --results BASE DIR1 DIR2")
    if folders and not from_results:
        raise BadInput(f"'{folders[0]}': results folders are read only after --results; expected no arguments")
    if not from_results:
        folders = [_run_manifest(manifest, inventory, sets, out).folder.path for out in sweep_folders(repeats)]
    rows = judge_repeats(list(folders), fraction, alpha)
    stdout_console().print(false_alarm_table(rows, fraction, alpha))
    click.echo("\n".join(false_alarm_lines(rows, fraction, alpha)))


def _profiles_option(help_text: str):
    """``--profile RESULTS_DIR``: a sweep's folder whose per-layer profiles are used instead of profiling."""
    return click.option("--profile", "profile_dir", type=click.Path(file_okay=False, path_type=Path), help=help_text)


_PROFILING_REPEATS = click.option(
    "--repeats", type=click.IntRange(min=1), default=10, show_default=True, help="Profiling runs here."
)


@cli.command("plan")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(path_type=Path))
@_SET_OPTION
@click.option(
    "-i",
    "--inventory",
    type=click.Path(path_type=Path),
    help="Profile on this inventory's hosts (one inference per run, results kept); default: here.",
)
@_profiles_option("Take the profiles (and measured records) of this results folder instead of profiling.")
@_PROFILING_REPEATS
@click.option("--upload", is_flag=True, help="The manifest's upload plans (IONN, seed 004) instead of cuts.")
@click.option("--simulate", is_flag=True, help="With --upload: replay each plan with the link and worker shared.")
@click.option(
    "--published",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --upload: plan on this per-layer profile (CSV, as published with a paper) instead of the model's.",
)
@click.option("--json", "as_json", is_flag=True, help="Print decisions and predictions as JSON.")
def plan_command(manifest_path, sets, inventory, profile_dir, repeats, upload, simulate, published, as_json):
    """Each partitioner's pick and predicted latency per cut for MANIFEST's runs; with --upload, each
    upload plan's partitions and the queries it lets finish during the upload."""
    from harness.manifest import load_manifest
    from harness.manifest.cuts import check_models, require_two_groups
    from harness.partition.planning import plan, profiles_folder
    from harness.partition.present import decision_lines, plan_record, plan_table

    if inventory and profile_dir:
        raise BadInput("--inventory and --profile: give one (profile on the hosts, or read saved profiles)")
    if (simulate or published) and not upload:
        raise BadInput("--simulate and --published: expected with --upload")
    if published and (inventory or profile_dir):
        raise BadInput("--published with --inventory or --profile: give one source of profiles")
    if inventory:
        _relay(inventory)
    loaded = load_manifest(manifest_path, list(sets))
    require_two_groups(loaded, "harness plan")
    if published is None:
        check_models(loaded)
    _set_threads(loaded.manifest.threads)
    if upload:
        profiles = None if published else profiles_folder(loaded, inventory, profile_dir, stderr_console())
        _print_upload_plans(loaded, profiles, published, simulate, repeats, as_json)
        return
    judged = plan(loaded, profiles_folder(loaded, inventory, profile_dir, stderr_console()), repeats)
    if as_json:
        click.echo(json.dumps([plan_record(item) for item in judged], indent=2))
        return
    console = stdout_console()
    for item in judged:
        console.print(plan_table(item))
        click.echo("\n".join(decision_lines(item)))


def _print_upload_plans(loaded, profiles, published, simulate, repeats, as_json) -> None:
    from harness.partition.upload.planning import upload_plans
    from harness.partition.upload.present import partition_lines, upload_record, upload_table

    planned = upload_plans(loaded, profiles, published, simulate, repeats)
    if as_json:
        click.echo(json.dumps([upload_record(item) for item in planned], indent=2))
        return
    groups: dict[str, list] = {}
    for item in planned:
        groups.setdefault(item.run.id.removesuffix("-" + item.run.upload.plans[0].label), []).append(item)
    console = stdout_console()
    for title, items in groups.items():
        console.print(upload_table(title, items))
        for item in items:
            click.echo("\n".join(partition_lines(item)))


@cli.group()
def links():
    """The link matrix between a lab's hosts."""


@links.command("measure")
@click.option(
    "--worker",
    "workers",
    multiple=True,
    metavar="HOST=ENDPOINT",
    help="A host and its running worker's tcp://HOST:PORT (repeated, one per host; each lists the others as --peer).",
)
@_KEYS_OPTION
@click.option(
    "-i",
    "--inventory",
    type=click.Path(path_type=Path),
    help="Instead of --worker: start a worker on each host of this inventory, measure, stop them.",
)
@click.option(
    "--group",
    "groups",
    multiple=True,
    help="With --inventory: only this group's hosts (repeatable); default: every host but the observer.",
)
@click.option(
    "--port",
    "base_port",
    type=click.IntRange(1024, 65000),
    default=5600,
    show_default=True,
    help="With --inventory: the workers' port (hosts sharing an address take the next ones).",
)
@click.option("--echoes", type=click.IntRange(1, 100), default=5, show_default=True, help="Round trips per pair.")
@click.option(
    "--bulk-mb",
    type=click.FloatRange(min=0.001, max=1024),
    default=4.0,
    show_default=True,
    help="MiB of the bulk transfer per pair.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds one echo or the bulk transfer may take before the pair is a gap.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("links.parquet"),
    show_default=True,
    help="Where the matrix is written (Parquet).",
)
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="The results root whose catalog registers the matrix (view `links` of `harness results sql`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the matrix's rows as JSON.")
def links_measure(workers, keys, inventory, groups, base_port, echoes, bulk_mb, timeout_s, out, root, as_json):
    """Measure every ordered pair of hosts, in rounds of disjoint pairs; a pair that fails is a gap."""
    from harness.links.lab import measure_inventory
    from harness.links.measure import ProbeSettings, measure_links
    from harness.links.present import matrix_table
    from harness.results.catalog import Catalog
    from harness.wire.sockets import check_endpoint

    if bool(workers) == bool(inventory):
        raise BadInput("harness links measure: expected either --worker HOST=ENDPOINT (repeated) or -i INVENTORY")
    if inventory is None and groups:
        raise BadInput("harness links measure: --group needs -i INVENTORY")
    named = {}
    for entry in workers:
        host, equals, endpoint = entry.partition("=")
        if not equals or not host or host in named:
            raise BadInput(f"--worker '{entry}': expected HOST=tcp://ADDRESS:PORT, each host once")
        named[host] = check_endpoint(endpoint, f"--worker {host}")
    settings = ProbeSettings(echoes, round(bulk_mb * 2**20), timeout_s)
    console = stderr_console()
    if inventory is not None:
        _relay(inventory)
    with console.status("probing") as status:
        if inventory is not None:
            measured = measure_inventory(inventory, tuple(groups), settings, base_port, status.update)
        else:
            measured = measure_links(named, _client_keys(keys, "edge"), settings, status.update)
    for warning in measured.warnings:
        console.print(f"warning: {warning}", markup=False, highlight=False)
    measured.matrix.write(out)
    Catalog(root).register_links(out, inventory=str(inventory or ""), seconds=measured.seconds)
    if as_json:
        click.echo(measured.matrix.frame().to_json(orient="records"))
    else:
        stdout_console().print(matrix_table(measured))
        click.echo(f"written to {out}")


@cli.command("place")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(path_type=Path))
@_SET_OPTION
@click.option(
    "-i",
    "--inventory",
    required=True,
    type=click.Path(path_type=Path),
    help="Whose tier groups' hosts to place on (harness_speed, harness_memory_bytes per host).",
)
@click.option(
    "--links",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A link matrix (Parquet from `harness links measure`); default: the manifest's link for every pair.",
)
@click.option(
    "--strategy",
    "strategies",
    multiple=True,
    help="Only these strategies (repeatable); default: all, and the manifest's placement.",
)
@click.option("--objective", type=click.Choice(["latency", "throughput"]), help="Default: the manifest's, or latency.")
@_profiles_option("A sweep's results folder: its hosts' own per-layer profiles replace the scaled one here.")
@_PROFILING_REPEATS
@click.option("--json", "as_json", is_flag=True, help="Print every placement and its stages as JSON.")
def place_command(manifest_path, sets, inventory, links, strategies, objective, profile_dir, repeats, as_json):
    """The placement each strategy chooses for MANIFEST's tiers, and its predicted latency per stage."""
    from harness.manifest import load_manifest
    from harness.manifest.cuts import check_models
    from harness.partition.placement.present import placement_records, placement_table, stages_table
    from harness.partition.placing import place_runs
    from harness.results import ResultsFolder

    loaded = load_manifest(manifest_path, list(sets))
    check_models(loaded)
    _set_threads(loaded.manifest.threads)
    layers = ResultsFolder.open(profile_dir).layers if profile_dir else None
    found = place_runs(loaded, inventory, links, list(strategies) or None, objective, repeats, layers)
    if as_json:
        click.echo(json.dumps([record for run in found for record in placement_records(run)], indent=2))
        return
    console = stdout_console()
    for run in found:
        console.print(placement_table(run))
        stages = stages_table(run)
        if stages is not None:
            console.print(stages)


def _phase_command(name: str, summary: str):
    @cli.command(name, help=summary)
    @_INVENTORY_OPTION
    @click.option("--manifest", type=click.Path(path_type=Path), help="Take groups and worker settings from it.")
    @_SET_OPTION
    @click.option("--purge", is_flag=True, hidden=name != "teardown", help="Also remove the hosts' venvs and files.")
    @click.option(
        "--keys",
        type=click.Path(file_okay=False, path_type=Path),
        hidden=name == "teardown",
        help="Key directory from `harness keys gen`: shipped by provision, used by deploy (needed off loopback).",
    )
    def command(inventory, manifest, sets, purge, keys):
        from harness.manifest import load_manifest
        from harness.sweep.controller import run_phase

        _relay(inventory)
        loaded = load_manifest(manifest, list(sets)) if manifest else None
        result = run_phase(name, inventory, loaded, {"harness_purge": purge}, keys)
        click.echo(f"{name}: ok on {inventory}, {result.changed()} changed")

    return command


_phase_command("provision", "Provision the hosts: the runtime and the experiment code.")
_phase_command("deploy", "Start the worker daemons and wait until they answer.")
_phase_command("teardown", "Stop workers and sweeps, remove shaping and temporary files (--purge: everything).")


@cli.command("unlock")
@_INVENTORY_OPTION
@click.option("--force", is_flag=True, help="Also remove a lock held by a sweep still running on this machine.")
def unlock_command(inventory, force):
    """Remove the lab lock a sweep that is gone left on the hosts of INVENTORY."""
    from harness.sweep.lock import unlock

    _relay(inventory)
    result = unlock(inventory, force)
    click.echo(f"unlock: ok on {inventory}, {result.changed()} locks removed")


@cli.command("host-info")
def host_info_command():
    """What this host runs the harness with, as JSON (versions, accelerators)."""
    from harness.worker.hostinfo import host_info

    click.echo(json.dumps(host_info()))


@worker.command("run-plan")
@click.argument("plan_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--connect", "endpoint", required=True, help="The worker's tcp://HOST:PORT.")
@click.option("--observer", required=True, help="Where records are pushed, tcp://HOST:PORT.")
@_KEYS_OPTION
@click.option("--shaping", type=click.Choice(["emulated", "tc", "none"]), default="emulated", show_default=True)
@click.option("--spool", type=click.Path(dir_okay=False, path_type=Path), help="Also append records here.")
@click.option("--pidfile", type=click.Path(dir_okay=False, path_type=Path), help="Hold this process's id here.")
@click.option("--host", "host_name", default=None, help="This host's inventory name (default: its hostname).")
@_ENERGY_OPTION
@_POWERCAP_OPTION
@click.option(
    "--run", "run_ids", multiple=True, metavar="ID", help="Only this run of the plan (repeatable; default: all)."
)
def run_plan_command(
    plan_path, endpoint, observer, keys, shaping, spool, pidfile, host_name, energy, powercap_root, run_ids
):
    """The edge host's part of a sweep (run by the sweep playbook, once per link under tc)."""
    import socket

    from harness.energy import open_meter
    from harness.sweep.plan import EdgeContext, PidFile, read_plan, run_plan
    from harness.wire import client_keys
    from harness.wire.keys import OBSERVER
    from harness.wire.sockets import is_loopback

    plan = read_plan(plan_path)
    if unknown := [run for run in run_ids if run not in {planned.id for planned in plan.runs}]:
        known = ", ".join(planned.id for planned in plan.runs)
        raise BadInput(f"plan {plan_path}: --run {unknown[0]}: no such run; expected one of {known}")
    if run_ids:
        plan = plan.model_copy(update={"runs": [run for run in plan.runs if run.id in run_ids]})
    host = host_name or socket.gethostname()
    stream_keys = client_keys(keys, "edge", OBSERVER) if keys and not is_loopback(observer) else None
    meter = open_meter(energy, powercap=powercap_root)
    context = EdgeContext(endpoint, observer, host, shaping, _client_keys(keys, "edge"), spool, stream_keys, meter)
    try:
        with PidFile(pidfile):
            count = run_plan(plan, context)
    finally:
        if meter is not None:
            meter.close()
    click.echo(f"{count} records from {len(plan.runs)} runs")


@cli.group("exits")
def exits_group():
    """Early exits: train them for a manifest's models."""


@exits_group.command("train")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="A manifest variable, read as YAML.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where each model's folder goes (default: results/<manifest name>-exits).",
)
@_profile_options
def exits_train(manifest_path, sets, out, profile_dir, profile_run):
    """Train MANIFEST's backbone (unless model.weights gives it) and then its exits on the frozen
    backbone; write the weights the sweep ships, each exit's source and the training record."""
    from harness.exits.present import trained_table
    from harness.exits.trained import trained_root
    from harness.exits.trainer import Profiles, train_manifest
    from harness.manifest import load_manifest
    from harness.manifest.cuts import check_models

    loaded = load_manifest(manifest_path, list(sets))
    check_models(loaded)
    _set_threads(loaded.manifest.threads)
    folder = trained_root(loaded.manifest.name, out)
    profiles = Profiles(profile_dir, profile_run) if profile_dir else None
    for trained in train_manifest(loaded, folder, lambda line: stderr_console().print(line), profiles):
        stdout_console().print(trained_table(trained))


@cli.group()
def manifest():
    """Render and check experiment manifests."""


@manifest.command("render")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="A manifest variable, read as YAML.")
@click.option("--json", "as_json", is_flag=True, help="Print the rendered text and the runs as JSON.")
def manifest_render(manifest_path, sets, as_json):
    """The YAML a manifest renders to, and the runs it expands to."""
    from harness.manifest import load_manifest
    from harness.manifest.cuts import check_models
    from harness.manifest.present import manifest_record, runs_table

    loaded = load_manifest(manifest_path, list(sets))
    check_models(loaded)
    if as_json:
        click.echo(json.dumps(manifest_record(loaded), indent=2))
    else:
        click.echo(loaded.rendered.text, nl=not loaded.rendered.text.endswith("\n"))
        stdout_console().print(runs_table(loaded.runs))


@cli.command("doctor")
@_INVENTORY_OPTION
@click.option("--manifest", type=click.Path(path_type=Path), help="Also say what each host lacks for it.")
@_SET_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the facts as JSON instead of a table.")
def doctor_command(inventory, manifest, sets, as_json):
    """Reach every host and show what it has; exit 1 if something is missing. Changes nothing."""
    from harness.ansible.doctor import examine
    from harness.ansible.present import doctor_record, doctor_table, missing_lines, summary
    from harness.manifest import load_manifest

    if sets and not manifest:
        raise BadInput("--set needs --manifest: it sets the manifest's variables")
    _relay(inventory)
    loaded = load_manifest(manifest, list(sets)) if manifest else None
    with stderr_console().status(f"examining the hosts of {inventory}"):
        report = examine(inventory, loaded)
    if as_json:
        click.echo(json.dumps(doctor_record(report), indent=2))
    else:
        stdout_console().print(doctor_table(report))
        click.echo("\n".join(missing_lines(report) or [summary(report)]))
    if report.missing:
        raise ExperimentFailed(summary(report))


@cli.group()
def lab():
    """A virtual lab on this machine (root): namespace hosts with their own sshd, for the SSH and tc path."""


_LAB_STATE_OPTION = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the lab records what it made (default /var/lib/split-harness-lab).",
)


@lab.command("up")
@click.option(
    "--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path), help="Lab spec YAML (default: built in)."
)
@_LAB_STATE_OPTION
@click.option(
    "--inventory-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the lab's inventory is written (default inventory/vlab).",
)
def lab_up(spec_path, state_dir, inventory_dir):
    """Make the lab: namespaces, veth links to a bridge, an sshd per host, CPU quotas, the inventory."""
    from harness import lab as virtual_lab
    from harness.lab.present import links_table, next_steps, status_table

    state_dir = state_dir or virtual_lab.DEFAULT_STATE_DIR
    inventory_dir = inventory_dir or virtual_lab.DEFAULT_INVENTORY_DIR
    virtual_lab.up(virtual_lab.load_spec(spec_path), state_dir, inventory_dir)
    current = virtual_lab.status(state_dir)
    stdout_console().print(status_table(current))
    if current.pairs:
        stdout_console().print(links_table(current.pairs))
    click.echo("\n".join(next_steps(current, inventory_dir)))


@lab.command("status")
@_LAB_STATE_OPTION
def lab_status(state_dir):
    """Each lab host: namespace present, address, sshd alive, CPU quota; and whether the lab is up."""
    from harness import lab as virtual_lab
    from harness.lab.present import links_table, status_table

    current = virtual_lab.status(state_dir or virtual_lab.DEFAULT_STATE_DIR)
    if current.recorded:
        stdout_console().print(status_table(current))
        if current.pairs:
            stdout_console().print(links_table(current.pairs))
    else:
        click.echo(f"no lab recorded in {current.state_dir}: the virtual lab is not up")


@lab.command("link")
@click.argument("src")
@click.argument("dst", required=False)
@click.option("--rate", help="Shape SRC -> DST to this TCP payload rate (4MB/s, 32mbit, unlimited).")
@click.option("--down", "switch", flag_value="down", help="Drop every packet (without DST: to and from SRC).")
@click.option(
    "--up", "switch", flag_value="up", help="Carry traffic again at the spec's rate (without DST: SRC's links)."
)
@_LAB_STATE_OPTION
def lab_link(src, dst, rate, switch, state_dir):
    """Change the link from SRC to DST in the running lab; without DST, every link to and from SRC."""
    from harness import lab as virtual_lab
    from harness.lab import links
    from harness.lab.present import links_table
    from harness.wire.link import parse_rate

    if (rate is None) == (switch is None):
        raise BadInput("harness lab link: expected one of --rate RATE, --down or --up")
    if rate is not None and dst is None:
        raise BadInput("harness lab link: --rate needs DST (the link from SRC to DST)")
    state_dir = state_dir or virtual_lab.DEFAULT_STATE_DIR
    if rate is not None:
        changed = links.set_rate(state_dir, src, dst, parse_rate(rate))
    elif switch == "down":
        changed = links.cut(state_dir, src, dst)
    else:
        changed = links.restore(state_dir, src, dst)
    stdout_console().print(links_table(changed, "lab link: read back from tc"))


@lab.command("down")
@_LAB_STATE_OPTION
def lab_down(state_dir):
    """Remove everything the lab made, and nothing else (also what a failed `lab up` left)."""
    from harness import lab as virtual_lab

    state_dir = state_dir or virtual_lab.DEFAULT_STATE_DIR
    if virtual_lab.down(state_dir):
        click.echo(f"lab down: removed the lab recorded in {state_dir}")
    else:
        click.echo(f"lab down: no lab recorded in {state_dir}, nothing to remove")


def main() -> None:
    cli(prog_name="harness")


if __name__ == "__main__":
    sys.exit(main())
