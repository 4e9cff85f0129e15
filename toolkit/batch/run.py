"""Run a batch: every line of a manifest through the pipeline, on a local process pool or a Dask cluster.

`run_batch` reads and checks the manifest, the output formats and the options before any work
(`toolkit.batch.manifest`), skips the lines the ledger says are done and unchanged
(`toolkit.batch.ledger`), runs the rest, records each line in the ledger as it finishes, and
writes the QA report (`toolkit.batch.report`).  Outputs go to ``OUTDIR/<id>.<ext>`` through the
output-format registry (`toolkit.export.registry`), each written atomically by the worker.

* Local (default): a process pool of ``jobs`` workers (the number of cores), each loading the
  models once (`toolkit.batch.work.prepare` as the pool's initializer) and keeping them.  A
  worker that dies takes only its line down: the others are run again in a fresh pool.
* Dask (``scheduler="tcp://host:8786"``): the same `toolkit.batch.work.run_line` on a
  `dask.distributed` cluster.  A worker plugin (`LoadModels`) loads the models once per worker;
  a task is idempotent (its outputs are written atomically, the ledger is kept by this client),
  so a task the scheduler re-runs after a worker died still completes its line exactly once.
  Workers need the toolkit installed and the audio at the same paths (a shared file system).

Example
-------
>>> result = run_batch("lines.csv", "out", formats=["json", "csv"], jobs=2)   # doctest: +SKIP
>>> result.failed, result.report_csv                                            # doctest: +SKIP
(0, PosixPath('out/report.csv'))
"""
from __future__ import annotations

import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.batch import work
from toolkit.batch.ledger import FOLDER, Ledger, line_key, toolkit_version
from toolkit.batch.manifest import ManifestError, read_manifest, select
from toolkit.batch.report import write_report

DEFAULT_FORMATS = ("json",)
TEMP_MARK = ".part"  # `toolkit.files.atomic_write`'s temporary files: .<name>.<random>.part<suffix>


@dataclass
class BatchResult:
    total: int
    done: int
    skipped: int
    failed: int
    report_csv: Path
    report_json: Path
    rows: list[dict] = field(default_factory=list)
    wall_s: float = 0.0


def output_formats(tokens) -> list[tuple[str, str]]:
    """(format name, file ending) of each requested format: a registry name (json, livelink,
    rhubarb-tsv...) or a file ending (csv, .tsv, glb...).  Unknown ones raise ValueError."""
    from toolkit.export.registry import BY_NAME, format_for

    out = []
    for tok in tokens:
        tok = tok.strip()
        if not tok:
            continue
        try:
            f = BY_NAME.get(tok) or format_for("x." + tok.lstrip("."))
        except ValueError:
            raise ValueError(f"unknown output format {tok!r}; use a format name ({', '.join(BY_NAME)}) or a file "
                             "ending (json, csv, tsv, textgrid, glb, vrma...)") from None
        if not f.suffixes:
            raise ValueError(f"format {tok!r} has no file of its own; use one of "
                             f"{', '.join(n for n, g in BY_NAME.items() if g.suffixes)}")
        suffix = f.suffixes[0] if f.suffixes[0].startswith(".") else "." + f.suffixes[0]
        if (f.name, suffix) not in out:
            out.append((f.name, suffix))
    if not out:
        raise ValueError("no output format given")
    return out


def run_batch(manifest, outdir, *, formats=DEFAULT_FORMATS, jobs: int | None = None, scheduler: str | None = None,
              force: bool = False, only: list[str] | None = None, lang: str = "en", fps: float = 30.0,
              quiet: bool = True, **options) -> BatchResult:
    """Run every line of ``manifest`` (a table or a folder) into ``outdir``; see the module notes.

    ``options`` are pipeline options for every line (engine, seed, blinks, head_motion, intensity...);
    ``lang`` and ``fps`` are the defaults for lines whose manifest row gives none."""
    from toolkit.pipeline import Options

    t0 = time.perf_counter()
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ManifestError(f"{outdir}: is a file, not a folder (-o names the folder the outputs go to)")
    fmts = output_formats(formats)
    Options.of({**options, "lang": lang, "fps": fps})  # bad options fail now, naming the option
    every = read_manifest(manifest, exclude=outdir)
    lines = select(every, only, manifest) if only else every
    for line in lines:  # a line's own fps is checked the same way
        if line.fps is not None:
            Options.of({**options, "fps": line.fps})
    outdir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(outdir)
    version = toolkit_version()
    names = [n for n, _ in fmts]
    tasks, rows, made = [], [], {}
    for line in lines:
        outputs = [(str(outdir / f"{line.id}{suffix}"), name) for name, suffix in fmts]
        key = line_key(line, {**options, "lang": lang, "fps": fps}, names, version)
        if not force and ledger.is_done(line.id, key, [p for p, _ in outputs]):
            rows.append({**ledger.records[line.id].get("row", {}), "id": line.id, "status": "unchanged"})
            continue
        made[line.id] = _make_folders(outdir, [p for p, _ in outputs])
        tasks.append(work.Task(line.id, str(line.audio), line.text, line.lang or lang, line.fps or fps, line.model,
                               line.rig, dict(options), outputs, key))

    def finished(row: dict) -> None:
        ledger.record({"id": row["id"], "key": row["key"], "status": row["status"], "outputs": row["outputs"],
                       "row": {k: v for k, v in row.items() if k != "key"}})
        rows.append(row)

    if tasks:
        with _bar(len(tasks), quiet) as bar:
            def on_result(row: dict) -> None:
                finished(row)
                bar.update(1)

            if scheduler:
                _run_dask(tasks, scheduler, on_result)
            else:
                _run_local(tasks, jobs or os.cpu_count() or 1, on_result)
    ledger.compact()
    _remove_temporaries(outdir)
    for row in rows:
        if row["status"] == "failed":
            _remove_if_empty(made.get(row["id"], []))
    failed = sum(r["status"] == "failed" for r in rows)
    earlier = _earlier_rows(ledger, every, lines)
    summary = {"manifest": str(manifest), "lines": len(lines), "done": len(tasks), "unchanged": len(lines) - len(tasks),
               "failed": failed, "earlier": len(earlier), "formats": names, "toolkit": version,
               "wall_s": round(time.perf_counter() - t0, 2),
               "runner": f"dask {scheduler}" if scheduler else f"local, {jobs or os.cpu_count()} jobs"}
    csv_path, json_path = write_report(outdir, rows + earlier, summary)
    return BatchResult(len(lines), len(tasks), len(lines) - len(tasks), failed, csv_path, json_path, rows,
                       time.perf_counter() - t0)


def _earlier_rows(ledger: Ledger, every: list, lines: list) -> list[dict]:
    """The report rows of the manifest's lines this run left out (``only``), with the latest status the
    ledger has for them: a run on a few lines rewrites the report, which must still show the others
    (a line that failed before and was not retried would vanish from it)."""
    ran = {line.id for line in lines}
    return [{**ledger.records[line.id].get("row", {}), "id": line.id, "status": ledger.records[line.id].get("status")}
            for line in every if line.id not in ran and line.id in ledger.records]


# -- local process pool -------------------------------------------------------------------------------

def _run_local(tasks: list, jobs: int, on_result) -> None:
    """Each worker loads the models once (initializer); a pool broken by a dying worker is replaced
    and its unfinished lines run again, a line that kills two workers fails."""
    import multiprocessing

    left, attempts = list(tasks), {t.id: 0 for t in tasks}
    while left:
        ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ProcessPoolExecutor(max_workers=max(1, min(jobs, len(left))), mp_context=ctx,
                                 initializer=_start_worker) as pool:
            futures = {pool.submit(work.run_line, t): t for t in left}
            left = []
            for fut in as_completed(futures):
                task = futures[fut]
                try:
                    on_result(fut.result())
                except BrokenProcessPool:
                    attempts[task.id] += 1
                    if attempts[task.id] >= 2:
                        on_result(work.failed_row(task, "the worker running this line died (twice)"))
                    else:
                        left.append(task)


def _start_worker() -> None:
    """A pool worker: the default signal handling, then the models.  A forked worker inherits the
    command's handler (`toolkit.cleanup.handle_signals`), which raises in the line it runs: the pool
    took that as the line's error and the worker went on with the queue, writing lines the ledger never
    got, until killed.  Now SIGTERM (the command stopping its children) ends it at once; Ctrl-C, which
    the terminal sends the whole group, is left to the command."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
    work.prepare()


# -- Dask ---------------------------------------------------------------------------------------------

try:
    from distributed.diagnostics.plugin import WorkerPlugin as _WorkerPlugin
except ImportError:  # dask is the [cluster] extra
    _WorkerPlugin = object


class LoadModels(_WorkerPlugin):
    """A Dask worker plugin: every worker (and every worker that joins later) loads the models once."""

    name = "viseme-toolkit-models"

    def setup(self, worker=None) -> None:
        work.prepare()


def _run_dask(tasks: list, address: str, on_result) -> None:
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError:
        raise RuntimeError("--scheduler needs dask.distributed: pip install 'viseme-toolkit[cluster]'") from None
    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as e:
        raise RuntimeError(f"cannot reach the Dask scheduler at {address} ({e})") from None
    try:
        plugin = LoadModels()
        if hasattr(client, "register_plugin"):
            client.register_plugin(plugin)
        else:  # older distributed
            client.register_worker_plugin(plugin)
        # a task's key names its line and content: a task the scheduler runs again is the same task
        futures = client.map(work.run_line, tasks, key=[f"viseme-line-{t.key[:20]}-{i}" for i, t in enumerate(tasks)],
                             pure=False, retries=2)
        done: set[str] = set()
        for fut in dask_completed(futures):
            row = fut.result()
            if row["id"] not in done:  # each line is recorded exactly once
                done.add(row["id"])
                on_result(row)
    finally:
        client.close()


# -- helpers ------------------------------------------------------------------------------------------

class _bar:
    """Lines done, with ETA, on a terminal (nothing otherwise or when quiet)."""

    def __init__(self, total: int, quiet: bool):
        self._tqdm = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self._tqdm = tqdm(total=total, unit="line", file=sys.stderr, dynamic_ncols=True, leave=False)

    def __enter__(self):
        return self

    def update(self, n: int) -> None:
        if self._tqdm is not None:
            self._tqdm.update(n)

    def __exit__(self, *exc) -> None:
        if self._tqdm is not None:
            self._tqdm.close()


def _make_folders(outdir: Path, outputs: list[str]) -> list[Path]:
    """Make the folders of a line's outputs (the writers check them before any work); the ones this
    made, deepest first, so that a line that fails leaves none of them behind, empty."""
    made = []
    for p in outputs:
        folder = Path(p).parent
        while folder != outdir and not folder.exists() and folder not in made:
            made.append(folder)
            folder = folder.parent
        Path(p).parent.mkdir(parents=True, exist_ok=True)
    return sorted(made, key=lambda f: len(f.parts), reverse=True)


def _remove_if_empty(folders: list[Path]) -> None:
    """Remove the folders a failed line made that are still empty (removed once every line is done:
    another line may be about to write into one)."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (another line's outputs), or already gone
            pass


def _remove_temporaries(outdir: Path) -> None:
    """Temporary files a killed worker left half-written (the real outputs were never touched)."""
    for p in outdir.rglob(f".*{TEMP_MARK}*"):
        if p.is_file() and FOLDER not in p.parts:
            p.unlink(missing_ok=True)
