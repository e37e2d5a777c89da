"""Records go to disk as they happen; columnar files are made from them once the sweep is done.

Each record is appended to ``records.csv`` and synced before the next inference starts, so a crashed
sweep loses at most the inference in flight. Parquet, with a schema fixed by ``InferenceRecord``, is
what analysis reads; it is written on close, or later from a CSV a crash left behind.
"""

import contextlib
import csv
import io
import logging
import numbers
import os
from dataclasses import MISSING, asdict, fields
from pathlib import Path
from types import TracebackType
from typing import TextIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from harness.errors import BadInput
from harness.results.folder import ResultsFolder
from harness.results.records import FailedInference, HopRecord, InferenceRecord

log = logging.getLogger(__name__)

_ARROW_TYPES = {int: pa.int64(), float: pa.float64(), str: pa.string(), bool: pa.bool_()}
_OPTIONAL = {float | None: float, int | None: int}
_EMPTY_ALLOWED = {field.name for field in fields(InferenceRecord) if field.type in _OPTIONAL}
"""Fields that may be empty (None here, empty in the CSV, null in Parquet): they say nothing for
most inferences, such as an exit's confidence in a run without exits."""
RECORD_FIELDS: dict[str, type] = {
    field.name: _OPTIONAL.get(field.type, field.type) for field in fields(InferenceRecord)
}
RECORD_SCHEMA = pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in RECORD_FIELDS.items()])
_DEFAULTS = {field.name: field.default for field in fields(InferenceRecord) if field.default is not MISSING}
"""Fields added after the first records were written: a CSV an older sweep left lacks them at its end."""

LAYER_SCHEMA = pa.schema(
    [
        ("host", pa.string()),
        ("role", pa.string()),
        ("run", pa.string()),
        ("model", pa.string()),
        ("layer", pa.string()),
        ("op", pa.string()),
        ("median_ns", pa.int64()),
        ("p95_ns", pa.int64()),
        ("repeats", pa.int64()),
    ]
)
ROLES = ("edge", "cloud", "worker")
"""``worker``: a worker of a pipeline over tiers, named by its host."""


_ACCEPTED = {int: numbers.Integral, float: numbers.Real, str: str}


def _check_value(path: Path, name: str, value: object, kind: type) -> None:
    if isinstance(value, bool) or not isinstance(value, _ACCEPTED[kind]):
        raise BadInput(f"{path}: record field '{name}' is {type(value).__name__} ({value!r}), expected {kind.__name__}")


def _row(path: Path, record: InferenceRecord | dict) -> list:
    values = record.as_dict() if isinstance(record, InferenceRecord) else record
    missing = [name for name in RECORD_FIELDS if name not in values]
    unknown = [name for name in values if name not in RECORD_FIELDS]
    if missing or unknown:
        raise BadInput(
            f"{path}: record lacks {', '.join(missing) or 'nothing'} and has unknown "
            f"{', '.join(unknown) or 'nothing'}; expected exactly the InferenceRecord fields"
        )
    for name, kind in RECORD_FIELDS.items():
        if not (values[name] is None and name in _EMPTY_ALLOWED):
            _check_value(path, name, values[name], kind)
    return [values[name] for name in RECORD_FIELDS]


class RecordWriter:
    """Appends records to a folder's ``records.csv``; ``close`` makes ``records.parquet`` from it.

    ``resume=True`` continues a CSV an interrupted sweep left: its unfinished last row, if any, is
    cut off and the new rows follow the old ones, so the folder ends with one set of records."""

    def __init__(self, folder: ResultsFolder, *, resume: bool = False):
        self.folder = folder
        self.rows = 0
        self._file: TextIO | None = None
        self._closed = False
        if folder.records_csv.exists():
            if not resume:
                raise BadInput(
                    f"{folder.records_csv} already exists; expected a folder without records "
                    "(convert_records turns a CSV left by a crash into parquet)"
                )
            complete = _complete_lines(folder.records_csv)
            if complete:
                folder.records_csv.write_bytes(complete)
                self.rows = complete.count(b"\n") - 1
                self._file = folder.records_csv.open("a", newline="", encoding="utf-8")
            else:
                folder.records_csv.unlink()

    def append(self, record: InferenceRecord | dict) -> None:
        path = self.folder.records_csv
        if self._closed:
            raise ValueError(f"{path}: the record writer is closed; expected append before close")
        row = _row(path, record)
        if self._file is None:
            self._file = path.open("x", newline="", encoding="utf-8")
            csv.writer(self._file, lineterminator="\n").writerow(RECORD_FIELDS)
        csv.writer(self._file, lineterminator="\n").writerow(row)
        self._file.flush()
        os.fsync(self._file.fileno())
        self.rows += 1

    def close(self) -> Path | None:
        """The parquet file, or None when nothing was recorded. Closing again does nothing."""
        if self._closed:
            return self.folder.records_parquet if self.folder.records_parquet.exists() else None
        self._closed = True
        if self._file is None:
            return None
        self._file.close()
        return convert_records(self.folder)

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
            return
        # Leaving on an error (a full disk, say): the CSV is complete up to its last synced row, and
        # making parquet now could fail again and hide that error; `harness report` makes it later.
        # Only a row that failed to be written can be lost in the close, and the edge spooled it.
        self._closed = True
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()


def _complete_lines(path: Path) -> bytes:
    """The CSV up to its last full line: a crash while writing leaves a partial row that must not be parsed."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        kept = data[: data.rfind(b"\n") + 1]
        log.warning("%s: ignoring an unfinished last row (%d bytes), left by a crash", path, len(data) - len(kept))
        data = kept
    return data


def convert_records(folder: ResultsFolder) -> Path:
    """Write ``records.parquet`` from ``records.csv``; safe to run on the CSV of a sweep that crashed."""
    source, target = folder.records_csv, folder.records_parquet
    if not source.is_file():
        raise BadInput(f"{source} does not exist; expected the records.csv a sweep writes")
    data = _complete_lines(source)
    header = next(csv.reader(io.StringIO(data.decode("utf-8", errors="replace"))), [])
    later = list(RECORD_FIELDS)[len(header) :]
    if header != list(RECORD_FIELDS)[: len(header)] or not header or not set(later) <= set(_DEFAULTS):
        raise BadInput(f"{source}: header is {','.join(header) or 'missing'}; expected {','.join(RECORD_FIELDS)}")
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types=RECORD_SCHEMA, strings_can_be_null=False),
        )
    except pa.ArrowException as error:
        raise BadInput(f"{source}: cannot read records ({error}); expected one InferenceRecord per row") from None
    for name in later:
        table = table.append_column(name, pa.array([_DEFAULTS[name]] * table.num_rows, RECORD_SCHEMA.field(name).type))
    partial = target.with_name(target.name + ".partial")
    pq.write_table(table.select(RECORD_SCHEMA.names), partial)
    partial.replace(target)
    return target


FAILURE_FIELDS = [field.name for field in fields(FailedInference)]


def append_failures(folder: ResultsFolder, failures: list[FailedInference]) -> Path | None:
    """Failed inferences, appended to ``failures.csv`` (a resumed sweep adds to the first one's)."""
    return _append_rows(folder.failures, FAILURE_FIELDS, [failure.as_dict() for failure in failures])


def write_layers(folder: ResultsFolder, rows: list[dict]) -> Path:
    """Per-layer timings of every host, in one call: the file is written once and never appended to."""
    path = folder.layers
    if path.exists():
        raise BadInput(f"{path} already exists; expected one write_layers call with the rows of every host")
    expected = set(LAYER_SCHEMA.names)
    for index, row in enumerate(rows):
        if set(row) != expected:
            missing = sorted(expected - set(row))
            unknown = sorted(set(row) - expected)
            raise BadInput(
                f"{path}: layer row {index} lacks {', '.join(missing) or 'nothing'} and has unknown "
                f"{', '.join(unknown) or 'nothing'}; expected columns {', '.join(LAYER_SCHEMA.names)}"
            )
        if row["role"] not in ROLES:
            raise BadInput(f"{path}: layer row {index} has role {row['role']!r}; expected one of {', '.join(ROLES)}")
    try:
        table = pa.Table.from_pylist(rows, schema=LAYER_SCHEMA)
    except (pa.ArrowException, TypeError) as error:
        raise BadInput(f"{path}: layer rows do not fit the expected types ({error}); expected {LAYER_SCHEMA}") from None
    pq.write_table(table, path)
    return path


def write_hops(folder: ResultsFolder, hops: list[HopRecord]) -> Path | None:
    """Every worker's share of every inference through a pipeline (one row per inference and hop),
    written once when the sweep ends; None when no inference went through a pipeline."""
    return write_records(folder.hops, hops, HopRecord)


def read_hops(folder: ResultsFolder) -> list[HopRecord]:
    """The hops a stopped sweep already kept, so a resumed one writes them again with its own."""
    return read_records(folder.hops, HopRecord)


def write_records(path: Path, records: list, kind: type) -> Path | None:
    """Records of dataclass ``kind`` as a Parquet table at ``path`` (replaced whole, never half
    written); None when there are none."""
    if not records:
        return None
    schema = pa.schema([(item.name, _ARROW_TYPES[item.type]) for item in fields(kind)])
    table = pa.Table.from_pylist([asdict(record) for record in records], schema=schema)
    partial = path.with_name(path.name + ".partial")
    pq.write_table(table, partial)
    partial.replace(path)
    return path


def read_records(path: Path, kind: type) -> list:
    """What ``write_records`` wrote, as records again; none when the table is not there."""
    if not path.is_file():
        return []
    table = pq.read_table(path)
    return [kind(**row) for row in table.select([item.name for item in fields(kind)]).to_pylist()]


def append_replans(folder: ResultsFolder, rows: list[dict]) -> Path | None:
    """Re-planning rounds and link events, appended to ``replans.csv`` (a resumed sweep adds to it)."""
    return _append_rows(folder.replans, list(rows[0]) if rows else [], rows)


def _append_rows(path: Path, columns: list[str], rows: list[dict]) -> Path | None:
    """``rows`` appended to the CSV at ``path``, its header written first when the file is new.

    A file an earlier version wrote (a sweep resumed after an upgrade) may lack columns added
    since: it is rewritten once with them, its own rows empty there, rather than getting rows
    longer than its header. The rewrite goes to a temporary file first, so nothing recorded is
    lost if it fails."""
    if not rows:
        return None
    header = _csv_header(path)
    if header is not None and header != columns:
        missing = [column for column in columns if column not in header]
        if missing:
            _rewrite_with(path, header + missing)
            header += missing
        columns = header
    with path.open("a", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=columns, lineterminator="\n", restval="")
        if header is None:
            writer.writeheader()
        writer.writerows(rows)
    return path


def _csv_header(path: Path) -> list[str] | None:
    """The columns of the CSV at ``path``; None where there is no file (or not even a header)."""
    try:
        with path.open(newline="", encoding="utf-8") as file:
            return next(csv.reader(file), None)
    except FileNotFoundError:
        return None


def _rewrite_with(path: Path, columns: list[str]) -> None:
    temporary = path.with_name(path.name + ".partial")
    with path.open(newline="", encoding="utf-8") as source, temporary.open("w", newline="", encoding="utf-8") as target:
        writer = csv.DictWriter(target, fieldnames=columns, lineterminator="\n", restval="")
        writer.writeheader()
        writer.writerows(csv.DictReader(source))
    os.replace(temporary, path)
