"""Ingest + segmentation throughput over the shared data sets (prints a table; not a test).

    python benchmarks/bench_segment.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipeline.ingest import Document, iter_documents
from pipeline.segment import segment

REPEATS = 3
DATASETS = {
    "ctgov (100 studies)": "ctgov",
    "hint (3,686 trials)": "hint/hint-trials.jsonl",
    "chia-dev texts": "chia-dev",
}


def measure(path: Path) -> dict[str, object]:
    started = time.perf_counter()
    documents = [d for d in iter_documents([path]) if isinstance(d, Document)]
    ingest_seconds = time.perf_counter() - started
    slowest, slowest_id, criteria, with_criteria = 0.0, "", 0, 0
    started = time.perf_counter()
    for document in documents:
        elapsed = float("inf")
        for _ in range(REPEATS):  # the minimum of a few runs filters out scheduler and GC noise
            t0 = time.perf_counter()
            record = segment(document)
            elapsed = min(elapsed, time.perf_counter() - t0)
        criteria += len(record.criteria)
        with_criteria += bool(record.criteria)
        if elapsed > slowest:
            slowest, slowest_id = elapsed, record.doc_id
    segment_seconds = (time.perf_counter() - started) / REPEATS
    return {"documents": len(documents), "segmented": with_criteria, "criteria": criteria,
            "ingest docs/s": len(documents) / ingest_seconds, "segment docs/s": len(documents) / segment_seconds,
            "slowest": f"{slowest_id} ({slowest * 1000:.1f} ms)"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: shared data not found at {args.data}", file=sys.stderr)
        return 0
    table = Table(title="ingest + segment (one core)")
    for column in ("data set", "documents", "with criteria", "criteria", "ingest docs/s", "segment docs/s",
                   "slowest document"):
        table.add_column(column, justify="left" if column in ("data set", "slowest document") else "right")
    for name, relative in DATASETS.items():
        row = measure(args.data / relative)
        table.add_row(name, str(row["documents"]), str(row["segmented"]), str(row["criteria"]),
                      f"{row['ingest docs/s']:.0f}", f"{row['segment docs/s']:.0f}", str(row["slowest"]))
    Console(width=160).print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
