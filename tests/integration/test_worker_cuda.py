"""The cloud worker on a CUDA device (``worker.device: cuda``): the tail's output agrees with the CPU
model, each record is what a CPU worker records, and the worker's compute time is the GPU's own
(synchronised before each reading), not the time to queue its kernels.

On a machine without a CUDA device these tests skip; they are run wherever one is present."""

import pytest
import torch

from harness.wire import ModelSpec
from harness.worker import EdgeDriver, LinkSettings, WorkerClient, synthetic_inputs
from harness.worker.agreement import GPU_TOLERANCE, relative_error
from tests.integration.conftest import pipeline_clients

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device for worker.device: cuda")


def _spec(split) -> ModelSpec:
    return ModelSpec(name=split.name, granularity=str(split.granularity), input_shape=split.input_shape)


def test_every_alexnet_cut_on_a_cuda_worker_matches_the_cpu_model_and_is_fully_recorded(start_worker, alexnet_split):
    gpu = start_worker("--device", "cuda")
    cpu = start_worker()
    assert "device cuda" in gpu.banner
    example = synthetic_inputs(alexnet_split.input_shape, 1, seed=3)[0]
    with torch.no_grad():
        reference = alexnet_split.graph_module(example)
    records, errors, profiles = {}, [], {}
    for name, worker in (("cuda", gpu), ("cpu", cpu)):
        with WorkerClient(worker.endpoint) as client:
            driver = EdgeDriver(client, alexnet_split, _spec(alexnet_split), link=LinkSettings("none"))
            ours = []
            for cut in alexnet_split.cuts:
                driver.prepare(cut.index)
                tries = [driver.infer(cut.index, example) for _ in range(3)]
                for output, _ in tries:
                    assert output.device.type == "cpu" and output.dtype == reference.dtype
                    assert relative_error(output, reference) < GPU_TOLERANCE, (name, cut.index)
                if name == "cuda":
                    errors.append(max(relative_error(output, reference) for output, _ in tries))
                ours.append(min((record for _, record in tries), key=lambda record: record.cloud_ns))
            state = client.ping()
            # The sweep's per-layer profile, asked for after the segments are on the device.
            profiled = client.profile(_spec(alexnet_split), repeats=3, warmup=1)
        assert len(profiled.layers) == len(alexnet_split.layers)
        assert all(layer.median_ns > 0 for layer in profiled.layers), profiled.layers
        profiles[name] = profiled.layers
        assert state.device == ("cuda" if name == "cuda" else "cpu") and state.errors == 0
        records[name] = ours
    for on_gpu, on_cpu in zip(records["cuda"], records["cpu"], strict=True):
        same = ("cut", "layer", "bytes_raw", "bytes_wire", "reply_bytes_raw", "compression")
        assert {field: getattr(on_gpu, field) for field in same} == {field: getattr(on_cpu, field) for field in same}
        # The reply's header carries the worker's timings, whose integers take more or fewer bytes.
        assert abs(on_gpu.reply_bytes_wire - on_cpu.reply_bytes_wire) < 64
        if on_gpu.cut < alexnet_split.cuts[-1].index:
            assert on_gpu.cloud_ns > 0 and on_gpu.cloud_decode_ns > 0 and on_gpu.cloud_encode_ns > 0
        parts = on_gpu.edge_ns + on_gpu.encode_ns + on_gpu.transfer_ns + on_gpu.decode_ns
        assert 0 < parts + on_gpu.cloud_decode_ns + on_gpu.cloud_ns + on_gpu.cloud_encode_ns <= on_gpu.e2e_ns
    print("\nlayer            cuda profile us  cpu profile us")
    for on_gpu, on_cpu in zip(profiles["cuda"], profiles["cpu"], strict=True):
        print(f"{on_gpu.name:<16} {on_gpu.median_ns / 1e3:>15.1f} {on_cpu.median_ns / 1e3:>15.1f}")
    print("\ncut  layer            cuda cloud us  cpu cloud us  cuda decode us  cuda encode us  relative error")
    for on_gpu, on_cpu, error in zip(records["cuda"], records["cpu"], errors, strict=True):
        print(
            f"{on_gpu.cut:>3}  {on_gpu.layer:<15} {on_gpu.cloud_ns / 1e3:>13.1f} {on_cpu.cloud_ns / 1e3:>13.1f}"
            f" {on_gpu.cloud_decode_ns / 1e3:>15.1f} {on_gpu.cloud_encode_ns / 1e3:>15.1f} {error:>15.2e}"
        )
    assert gpu.stop() == 0 and cpu.stop() == 0


def test_a_pipeline_from_a_cpu_worker_to_a_cuda_worker_matches_the_unsplit_model(start_worker, resnet18_nodes):
    """A Jetson-to-GPU-server hop: tensors computed on one worker's CPU, forwarded, finished on CUDA."""
    split = resnet18_nodes
    last = start_worker("--device", "cuda")
    middle = start_worker("--peer", last.endpoint)
    single = [cut.index for cut in split.cuts if len(cut.live) == 1]
    cuts = [single[len(single) // 3], single[2 * len(single) // 3]]
    inputs = synthetic_inputs(split.input_shape, 5, seed=5)
    with pipeline_clients([middle.endpoint, last.endpoint]) as clients:
        driver = EdgeDriver(clients, split, _spec(split))
        results = [driver.run_pipeline(cuts, example, 0, number) for number, example in enumerate(inputs)]
    with torch.no_grad():
        for example, (output, _, _) in zip(inputs, results, strict=True):
            assert relative_error(output, split.graph_module(example)) < GPU_TOLERANCE
    _, record, hops = results[-1]
    assert [(hop.start_cut, hop.end_cut) for hop in hops] == [(cuts[0], cuts[1]), (cuts[1], -1)]
    assert all(hop.compute_ns > 0 and hop.busy_ns >= hop.compute_ns for hop in hops)
    assert record.cloud_ns == sum(hop.compute_ns for hop in hops)
    assert middle.stop() == 0 and last.stop() == 0


def test_a_cuda_worker_charges_each_inference_the_gpus_nvml_energy(start_worker, alexnet_split):
    """NVML's counter steps every 20 to 100 ms, far longer than one inference on the GPU: each record
    is still charged (the step's power over its window), never zero, at a GPU's power."""
    worker = start_worker("--device", "cuda", "--energy", "nvml")
    example = synthetic_inputs(alexnet_split.input_shape, 1, seed=3)[0]
    cut = alexnet_split.cuts[1].index
    with WorkerClient(worker.endpoint) as client:
        driver = EdgeDriver(client, alexnet_split, _spec(alexnet_split), link=LinkSettings("none"))
        driver.prepare(cut)
        records = [driver.infer(cut, example, repeat)[1] for repeat in range(200)]
    watts = []
    for record in records:
        busy_s = (record.cloud_decode_ns + record.cloud_ns + record.cloud_encode_ns) / 1e9
        assert record.cloud_joules is not None and record.cloud_joules > 0, record
        watts.append(record.cloud_joules / busy_s)
    watts.sort()
    median = watts[len(watts) // 2]
    mean_joules = sum(record.cloud_joules for record in records) / len(records)
    print(f"\nNVML, {len(records)} inferences: {watts[0]:.0f} / {median:.0f} / {watts[-1]:.0f} W (min / median / max)")
    print(f"joules per inference {mean_joules:.4f}")
    assert 20 <= median <= 1500, "a data-centre GPU draws tens to hundreds of watts"
    assert worker.stop() == 0


def test_an_upload_to_a_cuda_worker_answers_as_the_whole_model_at_every_stage(start_worker):
    """Incremental upload to a GPU server: each partition's weights go to the device as they are
    committed, and every query, at every stage, agrees with the whole model run on the edge (within
    the GPU's tolerance, which the experiment takes from the worker's own ping)."""
    from tests.integration.test_upload_worker import _experiment

    worker = start_worker("--device", "cuda")
    experiment = _experiment(worker, "alexnet", (1, 3, 224, 224), "layerwise", first_query="local", after=2)
    outcome = experiment.run(0, synthetic_inputs((1, 3, 224, 224), 2, seed=4))
    assert experiment.worker_device.startswith("cuda")
    assert outcome.digest == experiment.split.weights_digest
    assert outcome.queries and all(query.agrees for query in outcome.queries)
    stages = [query.stage for query in outcome.queries]
    assert stages == sorted(stages) and stages[-1] == len(outcome.partitions)
    print(f"\nupload to cuda: {len(outcome.partitions)} partitions, {len(outcome.queries)} queries, all agree")
    assert worker.stop() == 0


def test_every_cut_codec_is_undone_on_the_gpu_as_on_the_cpu(start_worker, alexnet_split):
    """The worker moves a codec's payload to its device before decoding it, so each built-in codec's
    decoding runs on the GPU: its answer is the CPU worker's (given the same payload) within the
    GPU's tolerance, its bytes the same, and its decoding timed."""
    from harness.wire.codecs import CutCodec

    gpu, cpu = start_worker("--device", "cuda"), start_worker()
    example = synthetic_inputs(alexnet_split.input_shape, 1, seed=6)[0]
    pool1 = next(cut.index for cut in alexnet_split.cuts if cut.after == "features.2")
    print("\ncodec          cuda decode us  cpu decode us  relative error")
    for name in ("fp16", "bf16", "int8", "int8-channel", "int4-channel", "topk:0.25"):
        answers = {}
        for device, worker in (("cuda", gpu), ("cpu", cpu)):
            with WorkerClient(worker.endpoint) as client:
                codec = CutCodec.parse(name)
                driver = EdgeDriver(client, alexnet_split, _spec(alexnet_split), codec=codec)
                driver.prepare(pool1)
                answers[device] = [driver.infer(pool1, example, repeat) for repeat in range(3)]
        (on_gpu, gpu_record), (on_cpu, cpu_record) = answers["cuda"][-1], answers["cpu"][-1]
        error = relative_error(on_gpu, on_cpu)
        assert error < GPU_TOLERANCE, name
        assert gpu_record.bytes_wire == cpu_record.bytes_wire and gpu_record.codec == cpu_record.codec
        assert all(record.cloud_codec_ns > 0 for _, record in answers["cuda"]), name
        decode_us = [record.cloud_codec_ns / 1e3 for record in (gpu_record, cpu_record)]
        print(f"{name:<14} {decode_us[0]:>14.1f} {decode_us[1]:>14.1f} {error:>15.2e}")
    assert gpu.stop() == 0 and cpu.stop() == 0
