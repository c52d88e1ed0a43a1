"""Write the tables of `tables.py` from a run's records, as CSV or Parquet, streaming.

Records are read one line at a time and rows go out in batches, so a registry-scale run never
sits in memory whole. Each table is written to a temporary file and renamed when complete: an
interrupted export leaves the previous tables (or none), never a truncated one.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

from pipeline.errors import ExportError
from pipeline.evaluate.records import iter_record_lines
from pipeline.export.tables import TABLES, Column, Table
from pipeline.schema import TrialRecord

Format = Literal["csv", "parquet"]
BATCH_ROWS = 20_000


class _Sink(Protocol):
    def add(self, rows: list[dict[str, Any]]) -> None: ...


class _CsvSink:
    """RFC 4180 CSV with a header row; null is an empty cell, booleans `true`/`false`."""

    def __init__(self, handle: Any, columns: tuple[Column, ...]) -> None:
        self.names = [c.name for c in columns]
        self.writer = csv.writer(handle, lineterminator="\n")
        self.writer.writerow(self.names)

    def add(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.writer.writerow(["" if (v := row[n]) is None else str(v).lower() if v is True or v is False else v
                                  for n in self.names])


class _ParquetSink:
    """Parquet with the column types of `tables.py` (pyarrow, the `parquet` extra)."""

    def __init__(self, path: Path, columns: tuple[Column, ...]) -> None:
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        self.pa = pa
        types = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_()}
        self.schema = pa.schema([pa.field(c.name, types[c.type]) for c in columns])
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")

    def add(self, rows: list[dict[str, Any]]) -> None:
        self.writer.write_table(self.pa.Table.from_pylist(rows, schema=self.schema))

    def close(self) -> None:
        self.writer.close()


def require_pyarrow() -> None:
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ExportError('Parquet needs pyarrow: pip install -e ".[parquet]" (or use --format csv)') from None


@contextmanager
def _table_file(folder: Path, table: Table, fmt: Format) -> Iterator[_Sink]:
    """A sink writing `table` to a temporary file in `folder`, renamed to `<name>.<fmt>` on success."""
    target = folder / f"{table.name}.{fmt}"
    temp = folder / f".{target.name}.{os.getpid()}.tmp"
    try:
        if fmt == "csv":
            with temp.open("w", encoding="utf-8", newline="") as handle:
                yield _CsvSink(handle, table.columns)
        else:
            sink = _ParquetSink(temp, table.columns)
            yield sink
            sink.close()
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _records(run: Path) -> Iterator[TrialRecord]:
    file = run / "records.jsonl" if run.is_dir() else run
    if not file.is_file():
        raise ExportError(f"{file}: no such file (expected a run directory holding records.jsonl)")
    for _, record in iter_record_lines(file):
        yield record


def export_tables(run: Path, folder: Path, fmt: Format) -> dict[str, int]:
    """Write documents, criteria and entities of the run at `run` into `folder`; returns rows per table."""
    if fmt == "parquet":
        require_pyarrow()
    folder.mkdir(parents=True, exist_ok=True)
    counts = {table.name: 0 for table in TABLES}
    with ExitStack() as stack:
        sinks = [stack.enter_context(_table_file(folder, table, fmt)) for table in TABLES]
        batches: list[list[dict[str, Any]]] = [[] for _ in TABLES]
        for record in _records(run):
            for table, batch in zip(TABLES, batches, strict=True):
                batch.extend(table.rows_of(record))
            _flush(sinks, batches, counts, BATCH_ROWS)
        _flush(sinks, batches, counts, 0)
    return counts


def _flush(sinks: Iterable[_Sink], batches: list[list[dict[str, Any]]], counts: dict[str, int], at: int) -> None:
    for sink, batch, table in zip(sinks, batches, TABLES, strict=True):
        if batch and len(batch) >= at:
            sink.add(batch)
            counts[table.name] += len(batch)
            batch.clear()
