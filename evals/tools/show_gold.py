"""Print gold records as a readable listing, to review what the builder located.

    python -m evals.tools.show_gold evals/gold/NCT04402008.json [...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.schema import TrialRecord


def describe(record: TrialRecord) -> list[str]:
    """One line per criterion and per entity, with value/temporal text and normalisation."""
    lines = [f"# {record.doc_id}"]
    for criterion in record.criteria:
        lines.append(f"[{criterion.id}] {criterion.text[:100]!r}")
        for e in criterion.entities:
            parts = [f"  {e.id} {e.type} {e.text!r}" + (" NEG" if e.negated else "")]
            if e.value:
                v = e.value
                parts.append(f"value {v.text!r} {v.comparator} {v.low} {v.high} {v.unit}")
            if e.temporal:
                t = e.temporal
                parts.append(f"temporal {t.text!r}@{t.start} {t.direction} {t.anchor} {t.min_days} {t.max_days}")
            lines.append(" | ".join(parts))
    return lines


def main(argv: list[str] | None = None) -> int:
    for name in argv if argv is not None else sys.argv[1:]:
        record = TrialRecord.model_validate_json(Path(name).read_text(encoding="utf-8"))
        print("\n".join(describe(record)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
