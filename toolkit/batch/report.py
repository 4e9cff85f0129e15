"""The per-line QA report of a batch: ``OUTDIR/report.csv`` and ``OUTDIR/report.json``, worst first.

Each row: id, status (``failed``, ``ok``, or ``unchanged`` when a re-run skipped the line; a line
a run with ``only`` left out keeps the status of its last run, from the ledger), engine, alignment
confidence, warnings, audio duration, compute seconds (CPU in the worker), the audio file and, for
a failed line, the reason.  Worst first: failed lines, then the lowest
confidence, then the most warnings, so the lines to look at come first.

Example
-------
>>> rows = [{"id": "a", "status": "ok", "confidence": 0.95, "warnings": []},
...         {"id": "b", "status": "failed", "confidence": None, "warnings": [], "error": "file not found"},
...         {"id": "c", "status": "ok", "confidence": 0.41, "warnings": ["low confidence"]}]
>>> [r["id"] for r in worst_first(rows)]
['b', 'c', 'a']
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from toolkit.files import atomic_write

FIELDS = ["id", "status", "engine", "confidence", "warnings", "duration_s", "compute_s", "audio", "error"]


def worst_first(rows: list[dict]) -> list[dict]:
    def badness(r: dict):
        conf = r.get("confidence")
        return (r.get("status") != "failed", conf if conf is not None else 2.0, -len(r.get("warnings") or []),
                r.get("id", ""))

    return sorted(rows, key=badness)


def write_report(outdir: str | Path, rows: list[dict], summary: dict) -> tuple[Path, Path]:
    """Write report.csv (warnings joined by " | ") and report.json ({"summary", "lines"}); their paths."""
    outdir = Path(outdir)
    rows = worst_first(rows)
    buf = io.StringIO()
    w = csv.DictWriter(buf, FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "warnings": " | ".join(r.get("warnings") or []),
                    "confidence": "" if r.get("confidence") is None else r["confidence"]})
    csv_path, json_path = outdir / "report.csv", outdir / "report.json"
    atomic_write(csv_path, buf.getvalue())
    lines = [{k: r.get(k) for k in FIELDS + ["outputs"]} for r in rows]
    atomic_write(json_path, json.dumps({"summary": summary, "lines": lines}, indent=1, ensure_ascii=False))
    return csv_path, json_path
