"""Peak memory of reading inputs as they grow: a registry export must cost the memory of one study.

    python benchmarks/bench_ingest_memory.py [--scales 1 10 100 700] [--whole-up-to 100]

For each scale k, the 100 studies of ../shared/data/ctgov are written k times with new NCT ids as
one `{"studies": [...], "nextPageToken": ...}` file (700x is about 1 GB), as a zip of one JSON
file per study (ClinicalTrials.gov's bulk download), as a folder of the same files, and as a CSV
of the same criteria. A child
process reads each with `pipeline.ingest.iter_documents` (ingest only: no segmentation or
extraction) and reports its peak resident set (VmHWM) before it exits. For comparison, the
CT.gov file is also parsed whole with `json.loads` (what reading it used to cost) up to
`--whole-up-to`. Targets: the streamed peaks stay flat (the largest scale within 1.2x of 1x), but
for a zip, whose directory of members `zipfile` holds whole (about 0.75 KB a member).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

DEFAULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ctgov" / "nsclc-ctg-studies.json"
# The child reports its own peak: VmHWM counts from its exec, while ru_maxrss (what wait4 gives) also
# counts the forked copy of this parent before the exec, which grows with the archive written here.
PEAK = """
from pathlib import Path
status = Path("/proc/self/status")
lines = status.read_text().splitlines() if status.exists() else []
import resource
print(next((int(line.split()[1]) for line in lines if line.startswith("VmHWM:")),
           resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
"""
READ = """
import sys
from pathlib import Path
from pipeline.ingest import Document, iter_documents
print(sum(isinstance(item, Document) for item in iter_documents([Path(sys.argv[1])], max_bytes=20_000_000)))
""" + PEAK
WHOLE = """
import json, sys
print(len(json.load(open(sys.argv[1], encoding="utf-8"))["studies"]))
""" + PEAK


def renamed(studies: list[dict[str, Any]], copy: int) -> list[dict[str, Any]]:
    """The studies with NCT ids unique to this copy (the ids' first digits replaced)."""
    out = []
    for study in studies:
        text = json.dumps(study, ensure_ascii=False)
        nct_id = study["protocolSection"]["identificationModule"]["nctId"]
        out.append(json.loads(text.replace(nct_id, f"NCT{copy:04d}{nct_id[7:]}")))
    return out


def write_inputs(studies: list[dict[str, Any]], scale: int, folder: Path) -> dict[str, Path]:
    """The same scale x len(studies) studies as one CT.gov page, a zip and a folder of per-study
    files, and a CSV."""
    page, archive, table = folder / f"page-x{scale}.json", folder / f"studies-x{scale}.zip", folder / f"x{scale}.csv"
    per_study = folder / f"studies-x{scale}"
    per_study.mkdir()
    with page.open("w", encoding="utf-8") as out, zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped, \
            table.open("w", encoding="utf-8", newline="") as rows:
        writer = csv.writer(rows)
        writer.writerow(["nct_id", "criteria"])
        out.write('{"studies": [')
        for copy in range(scale):
            for number, study in enumerate(renamed(studies, copy)):
                text = json.dumps(study, ensure_ascii=False)
                out.write(("," if copy or number else "") + text)
                section = study["protocolSection"]
                nct_id = section["identificationModule"]["nctId"]
                zipped.writestr(f"{nct_id}.json", text)
                (per_study / f"{nct_id}.json").write_text(text, encoding="utf-8")
                writer.writerow([nct_id, section.get("eligibilityModule", {}).get("eligibilityCriteria", "")])
        out.write('], "nextPageToken": "NF0g5JGBlPMuwQY"}')
    return {"ctgov json": page, "zip of json": archive, "folder of json": per_study, "csv": table}


def peak_rss_mb(code: str, path: Path) -> tuple[float, float, str]:
    """(peak RSS in MB, wall seconds, documents read) of one read in a fresh process."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0 or len(done.stdout.split()) != 2:
        return float("nan"), seconds, "failed"
    documents, peak_kb = done.stdout.split()
    return int(peak_kb) / 1024, seconds, documents


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100, 700])
    parser.add_argument("--whole-up-to", type=int, default=100, help="largest scale also parsed whole with json.load")
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(f"SKIP: {args.source} not found (the CT.gov file of ../shared/data is needed)")
        return 0
    studies = json.loads(args.source.read_text(encoding="utf-8"))
    print(f"{'input':<22} {'scale':>6} {'documents':>10} {'file MB':>9} {'peak RSS MB':>12} {'vs 1x':>6} "
          f"{'seconds':>8}")
    first: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-memory-") as scratch:
        for scale in args.scales:
            inputs = write_inputs(studies, scale, Path(scratch))
            readers = [(name, READ, path) for name, path in inputs.items()]
            if scale <= args.whole_up_to:
                readers.append(("json.load, whole", WHOLE, inputs["ctgov json"]))
            for name, code, path in readers:
                peak, seconds, printed = peak_rss_mb(code, path)
                ratio = peak / first.setdefault(name, peak)
                size = sum(f.stat().st_size for f in path.iterdir()) if path.is_dir() else path.stat().st_size
                print(f"{name:<22} {scale:>5}x {printed:>10} {size / 1e6:>9.1f} {peak:>12.1f} "
                      f"{ratio:>5.2f}x {seconds:>8.1f}", flush=True)
            for path in inputs.values():
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
