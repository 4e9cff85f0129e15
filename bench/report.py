"""The benches' output: one table per area (ours and every peer, same run) and the targets check.

Each bench returns `Table` objects; `finish` prints them and checks the documented
targets in ``bench/targets.toml`` against their cells, so a run ends by saying
plainly which targets are met, missed or could not be measured.

Example
-------
>>> t = Table("alignment", "Phone boundaries", [Column("mae_ms", "MAE ms", "{:.1f}", lower_is_better=True)])
>>> t.add("ours", "ours", mae_ms=13.8); t.add("a peer", "peer", mae_ms=15.1)
>>> print(t.text())                                       # doctest: +NORMALIZE_WHITESPACE
== alignment: Phone boundaries
system    MAE ms
ours        13.8
a peer      15.1
>>> [(r.met, r.text) for r in check_targets([t], [{"area": "alignment", "system": "ours", "metric": "mae_ms",
...                                                  "beats": "peers"}])]
[(True, 'alignment / ours / MAE ms = 13.8 better than every peer (best: a peer 15.1)')]
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

TARGETS_FILE = Path(__file__).resolve().parent / "targets.toml"
FLOORS_FILE = Path(__file__).resolve().parent / "floors.toml"


@dataclass
class Column:
    key: str
    header: str
    fmt: str = "{:.3f}"
    lower_is_better: bool = False

    def cell(self, value) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        return self.fmt.format(value)


@dataclass
class Table:
    """One area's figures: a row per system (``kind`` "ours", "ours (variant)" or "peer")."""

    area: str
    title: str
    columns: list[Column]
    rows: list[tuple[str, str, dict]] = field(default_factory=list)  # (system, kind, {key: value})
    notes: list[str] = field(default_factory=list)
    skipped: str = ""  # why nothing was measured (data absent)

    def add(self, system: str, kind: str, **values) -> None:
        self.rows.append((system, kind, values))

    def value(self, system: str, key: str):
        return next((v.get(key) for s, _, v in self.rows if s == system), None)

    def column(self, key: str) -> Column:
        return next(c for c in self.columns if c.key == key)

    def text(self) -> str:
        lines = [f"== {self.area}: {self.title}"]
        if self.skipped:
            return "\n".join(lines + [f"   not measured: {self.skipped}"])
        width = max([len("system")] + [len(s) for s, _, _ in self.rows])
        cells = [[c.cell(v.get(c.key)) for c in self.columns] for _, _, v in self.rows]
        widths = [max([len(c.header)] + [len(r[i]) for r in cells]) for i, c in enumerate(self.columns)]
        lines.append(f"{'system':<{width}}  " + "  ".join(f"{c.header:>{w}}" for c, w in zip(self.columns, widths)))
        for (system, _, _), row in zip(self.rows, cells):
            lines.append(f"{system:<{width}}  " + "  ".join(f"{x:>{w}}" for x, w in zip(row, widths)))
        return "\n".join(lines + [f"   {n}" for n in self.notes])


def load_toml(path: Path) -> dict:
    with open(path, "rb") as f:
        return tomllib.load(f)


@dataclass
class TargetResult:
    met: bool | None  # None: not measured
    text: str


def check_targets(tables: list[Table], targets: list[dict]) -> list[TargetResult]:
    """Each target (area, system, metric, and ``min``, ``max`` or ``beats = "peers"``) against the tables."""
    by_area = {t.area: t for t in tables}
    out = []
    for tg in targets:
        table = by_area.get(tg["area"])
        name = f"{tg['area']} / {tg['system']} / {tg['metric']}"
        value = table.value(tg["system"], tg["metric"]) if table is not None else None
        if value is None or (isinstance(value, float) and math.isnan(value)):
            why = table.skipped if table is not None and table.skipped else "no such figure in this run"
            out.append(TargetResult(None, f"{name}: not measured ({why})"))
            continue
        col = table.column(tg["metric"])
        name = f"{tg['area']} / {tg['system']} / {col.header}"
        shown = col.cell(value)
        eps = 1e-9 * max(1.0, abs(value))  # 60.000000001 ms is 60 ms
        if "min" in tg:
            out.append(TargetResult(value >= tg["min"] - eps, f"{name} = {shown} >= {tg['min']}"))
        if "max" in tg:
            out.append(TargetResult(value <= tg["max"] + eps, f"{name} = {shown} <= {tg['max']}"))
        if tg.get("beats") == "peers":
            peers = [(s, v[tg["metric"]]) for s, kind, v in table.rows
                     if kind == "peer" and v.get(tg["metric"]) is not None and not math.isnan(v[tg["metric"]])]
            if not peers:
                out.append(TargetResult(None, f"{name}: no peer measured in this run"))
                continue
            best = (min if col.lower_is_better else max)(peers, key=lambda p: p[1])
            ok = value < best[1] if col.lower_is_better else value > best[1]
            out.append(TargetResult(ok, f"{name} = {shown} better than every peer (best: {best[0]} {col.cell(best[1])})"))
    return out


def finish(tables: list[Table], failed: list[str] = (), targets_file: Path = TARGETS_FILE) -> int:
    """Print every table and the targets check; 0 = all met, 1 = a target missed or a bench failed,
    2 = all measured ones met but some could not be measured (data absent)."""
    print("\n" + "=" * 100)
    print("RESULTS (ours and every peer, this run)")
    for t in tables:
        print()
        print(t.text())
    areas = {t.area for t in tables}  # a bench not run here has no say (one that failed is listed below)
    results = check_targets(tables, [t for t in load_toml(targets_file).get("target", []) if t["area"] in areas])
    print(f"\n== targets ({targets_file.name})")
    for r in results:
        print(f"  {'met' if r.met else 'NOT MEASURED' if r.met is None else 'MISSED'}: {r.text}")
    for name in failed:
        print(f"  FAILED: bench {name} did not finish (see above)")
    missed = sum(r.met is False for r in results)
    unmeasured = sum(r.met is None for r in results)
    print(f"\n{len(results) - missed - unmeasured} of {len(results)} targets met, {missed} missed, "
          f"{unmeasured} not measured" + (f"; {len(failed)} bench(es) failed" if failed else ""))
    if missed or failed:
        return 1
    return 2 if unmeasured else 0
