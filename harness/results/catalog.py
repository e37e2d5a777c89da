"""The results catalog: every sweep's folder registered in one DuckDB file, its records read in place.

A results folder stays the source of truth. The catalog keeps what identifies a sweep (manifest,
hosts, versions, git revision, status, times, counts) and a few figures per run, and reads records
straight from each folder's ``records.parquet``, so nothing is copied and a folder registered again
after a fix is seen as it is now. DuckDB lets one process at a time write a database file, so every
operation opens the file only for as long as it needs it and retries briefly while another process
holds it. A sweep's results never depend on the catalog: ``register`` warns instead of failing.
"""

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import yaml

from harness.errors import BadInput, ExperimentFailed
from harness.links.matrix import COLUMNS as LINK_COLUMNS
from harness.results.decisions import DECISION_COLUMNS
from harness.results.folder import ResultsFolder
from harness.results.progressive import EXITS_COLUMNS
from harness.results.summary import PARTS
from harness.results.uploads import PartitionRecord, QueryRecord
from harness.results.writer import RECORD_SCHEMA

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("results")
CATALOG_FILE = "catalog.duckdb"
LOCK_RETRY_SECONDS = (0.1, 0.2, 0.4, 0.8)
"""Waits between attempts to open a catalog another process holds: about 1.5 s in all."""
HOST_VERSIONS = ("harness", "python", "torch")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    run_id VARCHAR PRIMARY KEY,
    folder VARCHAR NOT NULL,
    manifest VARCHAR NOT NULL,
    manifest_path VARCHAR NOT NULL,
    inventory VARCHAR NOT NULL,
    hosts VARCHAR[] NOT NULL,
    edge_hosts VARCHAR[] NOT NULL,
    cloud_hosts VARCHAR[] NOT NULL,
    versions MAP(VARCHAR, VARCHAR) NOT NULL,
    git_revision VARCHAR,
    git_dirty BOOLEAN,
    status VARCHAR NOT NULL,
    started_at TIMESTAMP,
    ended_at TIMESTAMP,
    rows BIGINT NOT NULL,
    expected BIGINT,
    median_e2e_ms DOUBLE,
    registered_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS sweep_runs (
    run_id VARCHAR NOT NULL,
    run VARCHAR NOT NULL,
    rows BIGINT NOT NULL,
    cuts BIGINT NOT NULL,
    best_cut BIGINT NOT NULL,
    best_layer VARCHAR NOT NULL,
    best_e2e_ms DOUBLE NOT NULL,
    median_e2e_ms DOUBLE NOT NULL,
    PRIMARY KEY (run_id, run)
);
ALTER TABLE sweep_runs ADD COLUMN IF NOT EXISTS best_pipeline VARCHAR DEFAULT '';
CREATE TABLE IF NOT EXISTS link_matrices (
    matrix VARCHAR PRIMARY KEY,
    inventory VARCHAR NOT NULL,
    hosts VARCHAR[] NOT NULL,
    pairs BIGINT NOT NULL,
    gaps BIGINT NOT NULL,
    seconds DOUBLE,
    measured_at TIMESTAMP NOT NULL
);
"""
_SWEEP_COLUMNS = (
    "run_id",
    "folder",
    "manifest",
    "manifest_path",
    "inventory",
    "hosts",
    "edge_hosts",
    "cloud_hosts",
    "versions",
    "git_revision",
    "git_dirty",
    "status",
    "started_at",
    "ended_at",
    "rows",
    "expected",
    "median_e2e_ms",
    "registered_at",
)
_RUN_COLUMNS = ("run", "rows", "cuts", "best_cut", "best_layer", "best_e2e_ms", "median_e2e_ms", "best_pipeline")
_MEDIANS = ", ".join(f"median({' + '.join(columns)}) / 1e6 AS {part}_ms_median" for part, columns in PARTS.items())
_CUT_MEDIANS_SQL = (
    f"SELECT run, pipeline, cut, min(layer) AS layer, count(*) AS n, {_MEDIANS} "
    "FROM {records} GROUP BY run, pipeline, cut ORDER BY run, pipeline, cut"
)
"""Per run, pipeline (empty in the two-group form) and cut: the layer, the count and the median
edge, transfer, cloud and total ms (as summary.csv); ``{records}`` from ``_records``."""
_RUN_FIGURES_SQL = """
WITH cuts AS ({cut_medians}),
ranked AS (
    SELECT run, pipeline, cut, layer, total_ms_median,
        row_number() OVER (PARTITION BY run ORDER BY total_ms_median, pipeline, cut) AS place,
        count(*) OVER (PARTITION BY run) AS cuts
    FROM cuts
),
runs AS (SELECT run, count(*) AS rows, median(e2e_ns) / 1e6 AS median_ms FROM read_parquet($file) GROUP BY run)
SELECT run, runs.rows, ranked.cuts, ranked.cut, ranked.layer, ranked.total_ms_median, runs.median_ms, ranked.pipeline
FROM ranked JOIN runs USING (run) WHERE place = 1 ORDER BY run
"""
_SWEEP_FIGURES_SQL = """
SELECT count(*), median(e2e_ns) / 1e6, min(started_at_ns), max(started_at_ns + e2e_ns) FROM read_parquet($file)
"""
_LINK_FIGURES_SQL = """
SELECT list_distinct(list(src) || list(dst)), count(*), count(*) FILTER (WHERE source = 'gap') FROM read_parquet($file)
"""
_SQL_TYPES = {"int64": "BIGINT", "double": "DOUBLE", "string": "VARCHAR", "float64": "DOUBLE"}


class CatalogUnavailable(ExperimentFailed):
    """The catalog file could not be opened: another process holds it, or it cannot be read or written."""


def _records(connection: duckdb.DuckDBPyConnection, file: str) -> str:
    """The records of ``file`` to select from, with a ``pipeline`` column also where the file was
    written before records had one (every record of such a sweep is of the two-group form)."""
    columns = {
        row[0] for row in connection.execute("DESCRIBE SELECT * FROM read_parquet($file)", {"file": file}).fetchall()
    }
    return "read_parquet($file)" if "pipeline" in columns else "(SELECT *, '' AS pipeline FROM read_parquet($file))"


def _cut_medians_sql(connection: duckdb.DuckDBPyConnection, file: str) -> str:
    return _CUT_MEDIANS_SQL.format(records=_records(connection, file))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _utc(nanoseconds: int | None) -> datetime | None:
    return None if nanoseconds is None else datetime.fromtimestamp(nanoseconds / 1e9, UTC).replace(tzinfo=None)


def _read_mapping(path: Path, reader) -> dict:
    """A folder's YAML or JSON file as a mapping; missing is empty, unreadable is empty with a warning."""
    if not path.is_file():
        return {}
    try:
        data = reader(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as error:
        log.warning("%s: cannot be read (%s); the catalog entry leaves its fields empty", path, error)
        return {}
    return data if isinstance(data, dict) else {}


def _host_roles(folder: ResultsFolder, environment: dict, connection: duckdb.DuckDBPyConnection) -> tuple[list, list]:
    """Edge and cloud host names: from layers.parquet where each host's role is written, else from
    the environment, where only edge hosts have a shaped link; empty when neither says."""
    if folder.layers.is_file():
        rows = connection.execute(
            "SELECT role, list(DISTINCT host ORDER BY host) FROM read_parquet($file) GROUP BY role",
            {"file": str(folder.layers)},
        ).fetchall()
        roles = dict(rows)
        return roles.get("edge", []), roles.get("cloud", [])
    edge = sorted(environment.get("links") or {})
    if not edge:
        return [], []
    return edge, sorted(set(environment.get("hosts") or {}) - set(edge))


def _versions(environment: dict) -> dict[str, str]:
    """Controller python and packages by name; each host's harness, python and torch as ``host.name``."""
    versions = {}
    if python := (environment.get("controller") or {}).get("python"):
        versions["python"] = str(python)
    versions |= {name: str(version) for name, version in (environment.get("packages") or {}).items() if version}
    for host, facts in sorted((environment.get("hosts") or {}).items()):
        if isinstance(facts, dict):
            versions |= {f"{host}.{name}": str(facts[name]) for name in HOST_VERSIONS if facts.get(name)}
    return versions


def _written_at(environment: dict) -> datetime | None:
    try:
        written = datetime.fromisoformat(str(environment["written_at"]))
    except (KeyError, ValueError):
        return None
    return written.astimezone(UTC).replace(tzinfo=None) if written.tzinfo else written


class Catalog:
    """The catalog of the sweeps under ``root`` (``root/catalog.duckdb``); the file is made on first write."""

    def __init__(self, root: Path = DEFAULT_ROOT):
        self.root = Path(root)
        self.path = self.root / CATALOG_FILE

    def __repr__(self) -> str:
        return f"Catalog({str(self.root)!r})"

    @contextmanager
    def _connection(self, *, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        for delay in (*LOCK_RETRY_SECONDS, None):
            try:
                if not read_only:
                    self.root.mkdir(parents=True, exist_ok=True)
                connection = duckdb.connect(str(self.path), read_only=read_only)
                break
            except (duckdb.Error, OSError) as error:
                if delay is None or "lock" not in str(error).lower():
                    raise CatalogUnavailable(
                        f"{self.path}: cannot open the results catalog ({error}); "
                        "expected a DuckDB file no other process is writing"
                    ) from None
                time.sleep(delay)
        try:
            if not read_only:
                connection.execute(_SCHEMA)
            yield connection
        finally:
            connection.close()

    @contextmanager
    def _reader(self) -> Iterator[duckdb.DuckDBPyConnection | None]:
        """A read-only connection, or None while nothing has been registered (no file yet)."""
        if not self.path.exists():
            yield None
            return
        with self._connection(read_only=True) as connection:
            yield connection

    def _folder(self, stored: str) -> Path:
        return (self.root / stored).resolve()

    def register(
        self,
        folder: Path,
        *,
        status: str,
        manifest_path: str = "",
        inventory: str = "",
        expected: int | None = None,
    ) -> None:
        """Add or replace the entry of ``folder`` (its name is the run id). ``expected`` is the number of
        inferences the sweep meant to record; unknown by default, except that an ``ok`` sweep recorded all
        of them. The link matrices a sweep over tiers left in the folder are registered with it. A catalog
        that cannot be written is a warning: the folder's results stay as they are."""
        results = ResultsFolder.open(folder)
        try:
            with self._connection(read_only=False) as connection:
                self._upsert(connection, results, status, manifest_path, inventory, expected)
        except (duckdb.Error, OSError, CatalogUnavailable) as error:
            log.warning("%s was not registered in the results catalog: %s", results.path, error)
            return
        for matrix in results.link_matrices():
            self.register_links(matrix, inventory=inventory)

    def register_links(self, matrix: Path, *, inventory: str = "", seconds: float | None = None) -> None:
        """Add or replace the entry of the link matrix at ``matrix`` (Parquet from ``LinkMatrix.write``),
        keyed by its path; a warning, never a failure, when the catalog cannot be written."""
        try:
            with self._connection(read_only=False) as connection:
                hosts, pairs, gaps = connection.execute(_LINK_FIGURES_SQL, {"file": str(matrix)}).fetchone()
                measured_at = datetime.fromtimestamp(matrix.stat().st_mtime, UTC).replace(tzinfo=None)
                stored = self._stored(matrix)
                connection.begin()
                connection.execute("DELETE FROM link_matrices WHERE matrix = ?", [stored])
                connection.execute(
                    "INSERT INTO link_matrices VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [stored, inventory, sorted(hosts), pairs, gaps, seconds, measured_at],
                )
                connection.commit()
        except (duckdb.Error, OSError, CatalogUnavailable) as error:
            log.warning("%s was not registered in the results catalog: %s", matrix, error)

    def _upsert(
        self,
        connection: duckdb.DuckDBPyConnection,
        folder: ResultsFolder,
        status: str,
        manifest_path: str,
        inventory: str,
        expected: int | None,
    ) -> None:
        """Times come from what the folder holds, so a folder copied elsewhere registers the same: the start
        is the earlier of the manifest's writing and the first inference, the end when the environment was
        written (the sweep's last step) or else when the last inference ended."""
        manifest = _read_mapping(folder.manifest, yaml.safe_load)
        environment = _read_mapping(folder.environment, json.loads)
        git = environment.get("git") or {}
        edge, cloud = _host_roles(folder, environment, connection)
        run_figures: list[tuple] = []
        rows, median_ms, first_ns, last_ns = 0, None, None, None
        if folder.records_parquet.is_file():
            source = {"file": str(folder.records_parquet)}
            rows, median_ms, first_ns, last_ns = connection.execute(_SWEEP_FIGURES_SQL, source).fetchone()
            cut_medians = _cut_medians_sql(connection, source["file"])
            run_figures = connection.execute(_RUN_FIGURES_SQL.format(cut_medians=cut_medians), source).fetchall()
        manifest_written = (
            datetime.fromtimestamp(folder.manifest.stat().st_mtime, UTC).replace(tzinfo=None)
            if folder.manifest.is_file()
            else None
        )
        entry = {
            "run_id": folder.path.resolve().name,
            "folder": self._stored(folder.path),
            "manifest": str(manifest.get("name") or ""),
            "manifest_path": manifest_path,
            "inventory": inventory or str(environment.get("inventory") or ""),
            "hosts": sorted(environment.get("hosts") or {}),
            "edge_hosts": edge,
            "cloud_hosts": cloud,
            "versions": _versions(environment),
            "git_revision": git.get("revision"),
            "git_dirty": git.get("dirty"),
            "status": status,
            "started_at": min(filter(None, (_utc(first_ns), manifest_written)), default=None),
            "ended_at": _written_at(environment) or _utc(last_ns),
            "rows": rows,
            "expected": rows if expected is None and status == "ok" else expected,
            "median_e2e_ms": median_ms,
            "registered_at": datetime.now(UTC).replace(tzinfo=None),
        }
        _replace(connection, entry, run_figures)

    def _stored(self, folder: Path) -> str:
        """Relative to the root when inside it, so a results root can be moved or copied whole."""
        resolved = folder.resolve()
        try:
            return str(resolved.relative_to(self.root.resolve()))
        except ValueError:
            return str(resolved)

    def entries(self, manifest_name: str | None = None) -> list[dict]:
        """Registered sweeps, newest first (by start, then run id), each as ``entry`` gives it."""
        with self._reader() as connection:
            if connection is None:
                return []
            return self._entries(connection, manifest_name)

    def _entries(
        self, connection: duckdb.DuckDBPyConnection, manifest_name: str | None = None, run_id: str | None = None
    ) -> list[dict]:
        sweeps = connection.execute(
            f"SELECT {', '.join(_SWEEP_COLUMNS)} FROM sweeps "
            "WHERE ($manifest IS NULL OR manifest = $manifest) AND ($run_id IS NULL OR run_id = $run_id) "
            "ORDER BY started_at DESC NULLS LAST, run_id DESC",
            {"manifest": manifest_name, "run_id": run_id},
        ).fetchall()
        runs: dict[str, list[dict]] = {}
        columns = {row[0] for row in connection.execute("DESCRIBE sweep_runs").fetchall()}
        selected = [column if column in columns else f"'' AS {column}" for column in _RUN_COLUMNS]
        for owner, *figures in connection.execute(
            f"SELECT run_id, {', '.join(selected)} FROM sweep_runs WHERE list_contains($ids, run_id) "
            "ORDER BY run_id, run",
            {"ids": [row[0] for row in sweeps]},
        ).fetchall():
            runs.setdefault(owner, []).append(dict(zip(_RUN_COLUMNS, figures, strict=True)))
        entries = []
        for row in sweeps:
            entry = dict(zip(_SWEEP_COLUMNS, row, strict=True))
            entry["folder"] = self._folder(entry["folder"])
            entry["runs"] = runs.get(entry["run_id"], [])
            entries.append(entry)
        return entries

    def entry(self, run_id: str) -> dict:
        """One sweep's entry: the ``sweeps`` columns, ``folder`` as a path, and ``runs``, its per-run figures."""
        with self._reader() as connection:
            found = self._entries(connection, run_id=run_id) if connection is not None else []
        if not found:
            raise BadInput(
                f"run id '{run_id}' is not in the results catalog {self.path}; expected a results folder's name "
                "as `harness results ls` lists it (`harness results register DIR` adds a folder)"
            )
        return found[0]

    def latest(self, manifest_name: str, *, status: str = "ok", exclude: Path | None = None) -> Path | None:
        """The newest registered folder of ``manifest_name`` that ended with ``status``, other than ``exclude``."""
        skipped = Path(exclude).resolve() if exclude is not None else None
        for entry in self.entries(manifest_name):
            if entry["status"] == status and entry["folder"] != skipped:
                return entry["folder"]
        return None

    def cut_medians(self, run_id: str) -> pd.DataFrame:
        """Per run and cut of one sweep, computed over its records.parquet: the columns of ``_CUT_MEDIANS_SQL``."""
        folder = ResultsFolder.open(self.entry(run_id)["folder"])
        if not folder.records_parquet.is_file():
            raise BadInput(
                f"{folder.records_parquet} does not exist; sweep '{run_id}' has no records to summarise "
                "(`harness report` makes the file from records.csv)"
            )
        with duckdb.connect() as connection:
            file = str(folder.records_parquet)
            return connection.execute(_cut_medians_sql(connection, file), {"file": file}).df()

    def query(self, sql: str) -> pd.DataFrame:
        """The result of ``sql`` on the catalog, read-only: tables ``sweeps``, ``sweep_runs`` and
        ``link_matrices``, and the views ``records``, ``decisions``, ``exits``, ``uploads`` and
        ``queries``, every registered folder's records.parquet, decisions.csv, exits.csv (one row per
        model, placement and threshold of a sweep with early exits), uploads.parquet and
        queries.parquet (each partition and each query of an incremental upload) with the ``run_id``
        of its folder, and ``links``, every registered link matrix's pairs with its ``matrix``."""
        with self._reader() as connection:
            if connection is None:
                raise BadInput(
                    f"{self.path} does not exist; expected a results catalog (every sweep registers in the one of "
                    "its results root; `harness results register DIR` adds a folder)"
                )
            folders = [
                (run_id, ResultsFolder.open(folder))
                for run_id, stored in connection.execute("SELECT run_id, folder FROM sweeps ORDER BY run_id").fetchall()
                if (folder := self._folder(stored)).is_dir()
            ]
            records = [(run_id, folder.records_parquet) for run_id, folder in folders]
            _folder_view(connection, "records", "read_parquet", records, _RECORD_COLUMNS)
            decisions = [(run_id, folder.decisions) for run_id, folder in folders]
            _folder_view(connection, "decisions", "read_csv", decisions, _DECISION_COLUMNS)
            exits = [(run_id, folder.exits) for run_id, folder in folders]
            _folder_view(connection, "exits", "read_csv", exits, EXITS_COLUMNS)
            uploads = [(run_id, folder.uploads) for run_id, folder in folders]
            _folder_view(connection, "uploads", "read_parquet", uploads, _columns_of(PartitionRecord))
            queries = [(run_id, folder.queries) for run_id, folder in folders]
            _folder_view(connection, "queries", "read_parquet", queries, _columns_of(QueryRecord))
            matrices = [
                (stored, self._folder(stored))
                for (stored,) in connection.execute("SELECT matrix FROM link_matrices ORDER BY matrix").fetchall()
            ]
            _folder_view(connection, "links", "read_parquet", matrices, _LINK_COLUMNS, owner="matrix")
            try:
                return connection.execute(sql).df()
            except duckdb.Error as error:
                raise BadInput(f"query on {self.path} failed: {error}") from None


_RECORD_COLUMNS = {field.name: _SQL_TYPES[str(field.type)] for field in RECORD_SCHEMA}
_PYTHON_SQL = {int: "BIGINT", float: "DOUBLE", str: "VARCHAR", bool: "BOOLEAN"}


def _columns_of(kind: type) -> dict[str, str]:
    """The SQL columns of a record dataclass, for its view when no folder has the table."""
    return {item.name: _PYTHON_SQL[item.type] for item in fields(kind)}


_LINK_COLUMNS = {column: _SQL_TYPES[kind] for column, kind in LINK_COLUMNS.items()}
_DECISION_COLUMNS = {
    column: "VARCHAR" if column in ("run", "partitioner", "layer", "note") else "DOUBLE" for column in DECISION_COLUMNS
}


def _folder_view(
    connection: duckdb.DuckDBPyConnection,
    name: str,
    reader: str,
    files: list[tuple[str, Path]],
    empty: dict,
    owner: str = "run_id",
) -> None:
    """View ``name`` over the files that exist, each row with the id of what it belongs to (column
    ``owner``: a folder's ``run_id``); defined per connection, from what is registered now, so that
    paths resolve from any directory. With no file, an empty view with the ``empty`` columns, so
    queries on it still run."""
    files = [(run_id, str(path)) for run_id, path in files if path.is_file()]
    if files:
        listing = ", ".join(_literal(file) for _, file in files)
        owners = ", ".join(f"({_literal(run_id)}, {_literal(file)})" for run_id, file in files)
        source = (
            f"SELECT owner.{owner}, contents.* EXCLUDE (filename) "
            f"FROM {reader}([{listing}], filename = true, union_by_name = true) AS contents "
            f"JOIN (VALUES {owners}) AS owner({owner}, file) ON contents.filename = owner.file"
        )
    else:
        columns = ", ".join(f"NULL::{kind} AS {column}" for column, kind in empty.items())
        source = f"SELECT NULL::VARCHAR AS {owner}, {columns} WHERE false"
    connection.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {source}")


def _replace(connection: duckdb.DuckDBPyConnection, entry: dict, run_figures: list[tuple]) -> None:
    """The sweep's row and its runs' rows, in place of any earlier ones, in one transaction."""
    values = ", ".join("MAP(?::VARCHAR[], ?::VARCHAR[])" if column == "versions" else "?" for column in _SWEEP_COLUMNS)
    parameters = []
    for column in _SWEEP_COLUMNS:
        value = entry[column]
        parameters += [list(value), list(value.values())] if column == "versions" else [value]
    connection.begin()
    connection.execute("DELETE FROM sweep_runs WHERE run_id = ?", [entry["run_id"]])
    connection.execute("DELETE FROM sweeps WHERE run_id = ?", [entry["run_id"]])
    connection.execute(f"INSERT INTO sweeps ({', '.join(_SWEEP_COLUMNS)}) VALUES ({values})", parameters)
    if run_figures:
        columns = ("run_id", *_RUN_COLUMNS)
        connection.executemany(
            f"INSERT INTO sweep_runs ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
            [(entry["run_id"], *figures) for figures in run_figures],
        )
    connection.commit()
