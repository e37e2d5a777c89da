"""Energy in the records: an edge and a worker each sampling a meter of a known power, so each
inference's joules on each host are that power over its own window; a worker without a source
records empty energy, never zero. (The powercap counters are tested in tests/unit/test_energy.py,
where the test writes them at the moment they are read.)"""

import torch

from harness.energy import EnergyMeter, open_source
from harness.model import Granularity, build_split_graph, load_model
from harness.wire import ModelSpec
from harness.worker import EdgeDriver, WorkerClient, synthetic_inputs
from tests.unit.test_energy import WATTS

METER = "tests.unit.test_energy:twelve_watts"
SHAPE = (1, 3, 448, 448)
"""ResNet-18 at four times its usual pixels: windows of a tenth of a second and more on each host."""


def test_each_inference_is_charged_each_hosts_power_over_its_own_window(start_worker):
    torch.set_num_threads(1)
    split = build_split_graph(load_model("resnet18"), Granularity.MODULE, SHAPE)
    spec = ModelSpec(name="resnet18", granularity="module", input_shape=SHAPE)
    middle = next(cut.index for cut in split.cuts if cut.after == "layer2.1.relu" and cut.single_tensor)
    worker = start_worker("--energy", METER, "--threads", "1")
    meter = EnergyMeter(open_source(METER))
    (example,) = synthetic_inputs(SHAPE, 1, seed=2)
    with WorkerClient(worker.endpoint) as client:
        driver = EdgeDriver(client, split, spec, energy=meter)
        driver.infer(middle, example)
        records = [driver.infer(middle, example, repeat)[1] for repeat in range(3)]
    _, local, _ = EdgeDriver([], split, spec, energy=meter).run_pipeline((), example)
    meter.close()
    for record in records:
        edge_window_s = (record.edge_ns + record.encode_ns) / 1e9
        assert abs(record.edge_joules / (WATTS * edge_window_s) - 1) <= 0.02, record
        busy_s = (record.cloud_decode_ns + record.cloud_ns + record.cloud_encode_ns) / 1e9
        assert abs(record.cloud_joules / (WATTS * busy_s) - 1) <= 0.02, record
    assert abs(local.edge_joules / (WATTS * local.edge_ns / 1e9) - 1) <= 0.02
    assert local.cloud_joules is None, "nothing was sent"


def test_a_worker_without_a_source_records_empty_energy(start_worker):
    split = build_split_graph(load_model("alexnet"), Granularity.MODULE, (1, 3, 224, 224))
    spec = ModelSpec(name="alexnet", granularity="module", input_shape=(1, 3, 224, 224))
    worker = start_worker("--energy", "none")
    with WorkerClient(worker.endpoint) as client:
        _, record = EdgeDriver(client, split, spec).infer(3, synthetic_inputs((1, 3, 224, 224), 1)[0])
    assert record.edge_joules is None and record.cloud_joules is None
