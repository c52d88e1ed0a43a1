"""Flat tables of a run for analysis in pandas, Polars or DuckDB: `trialstruct export`.

`tables.py` defines the three tables (documents, criteria, entities) and their columns once and
flattens records into rows; `write.py` writes them as CSV (standard library) or Parquet (pyarrow,
the optional `parquet` extra).
"""
