"""A published per-layer profile as an upload chain, so a paper's result can be replayed without its
hardware: one row per layer in execution order with ``layer``, ``type``, ``param_floats`` (float32
weights and biases), ``out_elems`` (elements of its output), ``num_output``, ``client_ms`` and
``server_ms``. The first row's output is the input that crosses at boundary 0.

The server's time to build a layer is IONN's model of Caffe's: a convolution ``3.0e-3 · num_output +
0.7`` ms, a fully connected layer ``3.0e-7 · num_output · input bytes + 1.3`` ms, anything else none.
"""

from pathlib import Path

import pandas as pd

from harness.errors import BadInput
from harness.partition.upload.chain import Unit, UploadChain

COLUMNS = ("layer", "type", "param_floats", "out_elems", "num_output", "client_ms", "server_ms")
FLOAT_BYTES = 4


def build_ms(kind: str, num_output: int, input_bytes: int) -> float:
    if kind == "Convolution":
        return 3.0e-3 * num_output + 0.7
    if kind == "InnerProduct":
        return 3.0e-7 * num_output * input_bytes + 1.3
    return 0.0


def published_chain(path: Path, rate_bytes_per_ms: float, model: str | None = None) -> UploadChain:
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise BadInput(f"{path}: cannot read a per-layer profile ({error})") from error
    missing = [column for column in COLUMNS if column not in table.columns]
    if missing or table.empty:
        raise BadInput(f"{path}: columns {', '.join(missing) or 'present'} but no rows; expected {', '.join(COLUMNS)}")
    outputs = [int(value) * FLOAT_BYTES for value in table["out_elems"]]
    inputs = [outputs[0], *outputs[:-1]]
    units = tuple(
        Unit(
            name=str(row.layer),
            client_ms=float(row.client_ms),
            server_ms=float(row.server_ms),
            param_bytes=int(row.param_floats) * FLOAT_BYTES,
            build_ms=build_ms(str(row.type), int(row.num_output), inputs[position]),
            first=position,
            last=position,
        )
        for position, row in enumerate(table.itertuples(index=False))
    )
    return UploadChain(model or path.stem, units, (outputs[0], *outputs), rate_bytes_per_ms)
