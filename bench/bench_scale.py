"""Scale (issue 13): hour-long recordings in flat memory, long-file accuracy beside its pieces', studio batches.

Three tables, each with its peer measured in the same run:

* ``scale-long``: a 1-hour recording with its transcript and without, through the real command
  (`viseme animate ... -o out.json -o out.csv`), CPU seconds (one core) and peak RSS measured in a
  subprocess (``os.wait4``), beside raw PocketSphinx aligning the same file in one utterance (its
  forced alignment, `bench.peers.pocketsphinx_forced`, under a memory cap and a time limit); our
  peak RSS at 2, 8 and 30 minutes too (it must not grow with the length); and a Spanish hour
  (espeak-ng voices, `bench.corpus.SPANISH_SENTENCES`, ``--lang es``: the universal aligner's path).
* ``scale-accuracy``: TIMIT dev's 40 utterances laid end to end with pauses of 0.4-1.2 s of
  room noise into one 2.5-minute file, aligned as one recording and scored like the single files
  (`bench.accuracy.with_transcript` on the same utterances, same run).
* ``scale-batch``: 1,000 voice lines of ~3 s through `viseme batch --jobs 2`, beside a shell
  loop of single `viseme animate` commands (a 50-line subset, scaled to 1,000) and the same batch
  on a local Dask cluster (two worker processes, started before the clock).

The material (cached in ``.cache/bench_scale``; ``--fresh`` makes it again) comes from
`bench.corpus`: the English clips of ``../shared/data/speech/transcribed`` (real speakers with
their transcripts: read speech, conversation, disfluencies, whisper) and espeak-ng speaking
their transcripts in twelve voices and five rates.  The hour-long file lays the clips and two
espeak-ng renderings of each transcript end to end, in a seeded order that goes through all of
them before repeating, with 0.3-1.2 s pauses of room noise.  The voice lines are the clips up to
6 s, then espeak-ng speaking their transcripts (two joined when one is short).

    python -m bench.bench_scale [--minutes 60] [--lines 1000] [--only long|accuracy|batch]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench import accuracy
from bench.corpus import (FALLBACK_SENTENCES, SPANISH_SENTENCES, SPANISH_VOICES, espeak_pieces, real_pieces, voice_lines,
                          write_long_recording)
from bench.peers import pocketsphinx_build
from bench.report import Column, Table, finish

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench_scale"
PY = sys.executable
VISEME = [PY, "-m", "toolkit.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
RAW_PS_MEMORY_GB = 8.0  # raw PocketSphinx's phone pass over an hour needs far more: capped, so the machine lives
RAW_PS_TIMEOUT_S = 420.0

LONG_COLUMNS = [Column("cpu_s", "CPU s", "{:.1f}", lower_is_better=True),
                Column("rss_mb", "peak RSS MB", "{:.0f}", lower_is_better=True),
                Column("rss_growth_mb", "RSS - 2 min's", "{:+.0f}", lower_is_better=True),
                Column("wall_s", "wall s", "{:.1f}", lower_is_better=True),
                Column("speed_x", "x real time", "{:.0f}"),
                Column("confidence", "confidence", "{:.2f}")]
ACC_COLUMNS = [Column("mae_ms", "MAE ms", "{:.1f}", lower_is_better=True),
               Column("within_20ms", "within 20 ms", "{:.3f}"),
               Column("matched", "phones matched", "{:.3f}"),
               Column("top1", "viseme top-1", "{:.3f}"),
               Column("delta_mae_ms", "MAE - pieces'", "{:+.2f}", lower_is_better=True),
               Column("delta_within", "within - pieces'", "{:+.3f}")]
BATCH_COLUMNS = [Column("wall_s", "wall s", "{:.1f}", lower_is_better=True),
                 Column("cpu_s", "CPU s", "{:.1f}", lower_is_better=True),
                 Column("lines_per_s", "lines/s", "{:.1f}"),
                 Column("vs_loop", "x faster than the loop", "{:.1f}"),
                 Column("vs_local", "wall / local pool", "{:.2f}", lower_is_better=True),
                 Column("failed", "failed", "{:.0f}", lower_is_better=True)]


# -- measuring a command --------------------------------------------------------------------------

def measured(cmd: list[str], timeout_s: float = 3600, memory_gb: float | None = None) -> dict:
    """Run ``cmd``; its own CPU seconds (user + system), peak RSS (MB), wall seconds and exit status
    (``os.wait4``: the rusage of that child alone), with stdout/stderr."""
    import tempfile

    def limit():
        if memory_gb:
            cap = int(memory_gb * 2 ** 30)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=out, stderr=err, text=True, preexec_fn=limit)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t0 > timeout_s:
                p.kill()
                timed_out = True
                pid, status, usage = os.wait4(p.pid, 0)
                break
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"rc": p.returncode, "wall_s": wall, "timed_out": timed_out, "out": out.read(), "err": err.read(),
                "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024.0}


# -- material -------------------------------------------------------------------------------------

def long_recording(minutes: float, fresh: bool = False) -> tuple[Path, Path]:
    """The long file and its transcript (see the module notes), made once and cached."""
    wav, txt = CACHE / f"long_{minutes:g}min.wav", CACHE / f"long_{minutes:g}min.txt"
    if wav.is_file() and txt.is_file() and not fresh:
        return wav, txt
    CACHE.mkdir(parents=True, exist_ok=True)
    real = real_pieces()
    texts = [p.text for p in real] or FALLBACK_SENTENCES
    pieces = real + espeak_pieces(texts, 2 * len(texts), seed=13)
    write_long_recording(pieces, minutes * 60.0, wav, txt, seed=13)
    return wav, txt


def long_recording_es(minutes: float, fresh: bool = False) -> tuple[Path, Path]:
    """A Spanish hour (espeak-ng voices, `bench.corpus.SPANISH_SENTENCES`), for the universal aligner's path."""
    wav, txt = CACHE / f"long_es_{minutes:g}min.wav", CACHE / f"long_es_{minutes:g}min.txt"
    if wav.is_file() and txt.is_file() and not fresh:
        return wav, txt
    CACHE.mkdir(parents=True, exist_ok=True)
    pieces = espeak_pieces(SPANISH_SENTENCES, 3 * len(SPANISH_SENTENCES), seed=17, voices=SPANISH_VOICES)
    write_long_recording(pieces, minutes * 60.0, wav, txt, seed=17)
    return wav, txt


def batch_lines(n: int, fresh: bool = False) -> Path:
    """``n`` voice lines as WAV files and a TSV manifest (id, audio, text); made once and cached."""
    from toolkit.audio import write_wav

    folder = CACHE / f"lines_{n}"
    manifest = folder / "lines.tsv"
    if manifest.is_file() and not fresh:
        return manifest
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "audio").mkdir(parents=True)
    rows = ["id\taudio\ttext"]
    for i, p in enumerate(voice_lines(n, seed=13)):
        write_wav(folder / "audio" / f"line{i:04d}.wav", p.samples)
        rows.append(f"vo/line{i:04d}\taudio/line{i:04d}.wav\t{' '.join(p.text.split())}")
    manifest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return manifest


# -- 1. the hour-long file --------------------------------------------------------------------------

_RAW_PS = r"""
import sys, soundfile as sf
from pocketsphinx import Decoder
from bench.peers import PS_CONFIGS, pocketsphinx_forced
from bench.timit import transcript_words
x, sr = sf.read(sys.argv[1], dtype="float32")
words = transcript_words(open(sys.argv[2]).read())
dec = Decoder(**PS_CONFIGS["PocketSphinx 100 frames/s"])
words = [w for w in words if dec.lookup_word(w) is not None]
phones = pocketsphinx_forced(dec, x, words)
print("phones", -1 if phones is None else len(phones))
"""


SPANISH_ROW = "ours, Spanish with transcript (universal aligner, --lang es)"


def long_table(minutes: float, fresh: bool) -> Table:
    wav, txt = long_recording(minutes, fresh)
    dur = _duration(wav)
    table = Table("scale-long", f"a {dur / 60:.0f}-minute recording (real speech + espeak-ng), one core",
                  LONG_COLUMNS, notes=[pocketsphinx_build()])
    out = CACHE / "out"
    out.mkdir(exist_ok=True)
    runs = [("ours, with transcript (viseme animate -o .json -o .csv)", "ours",
             VISEME + ["animate", str(wav), "--transcript", str(txt), "-o", str(out / "long.json"), "-o",
                       str(out / "long.csv"), "--quiet"]),
            ("ours, audio only (viseme animate -o .json)", "ours (variant)",
             VISEME + ["animate", str(wav), "-o", str(out / "long_audio.json"), "--quiet"])]
    for name, kind, cmd in runs:
        r = measured(cmd)
        conf = None
        if r["rc"] == 0 and name.startswith("ours, with"):
            conf = json.loads((out / "long.json").read_text())["meta"].get("confidence")
        print(f"{name}: rc {r['rc']}, CPU {r['cpu_s']:.1f} s, peak RSS {r['rss_mb']:.0f} MB, wall {r['wall_s']:.1f} s"
              + ("" if r["rc"] == 0 else f"\n{r['err'][-2000:]}"))
        table.add(name, kind, cpu_s=r["cpu_s"], rss_mb=r["rss_mb"], wall_s=r["wall_s"], speed_x=dur / r["cpu_s"],
                  confidence=conf)
    # raw PocketSphinx: its forced alignment of the whole file in one utterance, as its own tools do
    r = measured([PY, "-c", _RAW_PS, str(wav), str(txt)], timeout_s=RAW_PS_TIMEOUT_S, memory_gb=RAW_PS_MEMORY_GB)
    done = r["rc"] == 0 and "phones" in r["out"] and "phones -1" not in r["out"]
    if done:
        why = "finished"
    elif r["timed_out"]:
        why = f"did not finish in {RAW_PS_TIMEOUT_S:g} s"
    elif r["rc"] == 0:
        why = "gave up: no alignment (the decoder found no path through the hour)"
    else:
        why = "failed: " + (r["err"].strip().splitlines() or [f"exit {r['rc']}"])[-1][:120]
    print(f"raw PocketSphinx on the same file: {why}; CPU {r['cpu_s']:.1f} s, peak RSS {r['rss_mb']:.0f} MB")
    table.add("raw PocketSphinx 100 frames/s, whole file" + ("" if done else " (did not finish)"), "peer",
              cpu_s=r["cpu_s"], rss_mb=r["rss_mb"], wall_s=r["wall_s"], speed_x=dur / max(r["cpu_s"], 1e-9))
    table.notes.append(f"raw PocketSphinx: {why} (memory capped at {RAW_PS_MEMORY_GB:g} GB, {RAW_PS_TIMEOUT_S:g} s)")
    # peak memory against the length (ours, with the transcript)
    for m in (2, 8, 30):
        if m >= minutes:
            continue
        w, t = long_recording(m, fresh)
        r = measured(VISEME + ["animate", str(w), "--transcript", str(t), "-o", str(out / f"long{m}.json"), "--quiet"])
        print(f"ours, {m} min: CPU {r['cpu_s']:.1f} s, peak RSS {r['rss_mb']:.0f} MB")
        table.add(f"ours, with transcript, {m} min", "ours (variant)", cpu_s=r["cpu_s"], rss_mb=r["rss_mb"],
                  wall_s=r["wall_s"], speed_x=m * 60 / r["cpu_s"])
    # another language: the universal aligner's path (read block by block, its scores kept)
    w, t = long_recording_es(minutes, fresh)
    r = measured(VISEME + ["animate", str(w), "--transcript", str(t), "--lang", "es", "-o", str(out / "long_es.json"),
                           "--quiet"])
    print(f"ours, Spanish: rc {r['rc']}, CPU {r['cpu_s']:.1f} s, peak RSS {r['rss_mb']:.0f} MB"
          + ("" if r["rc"] == 0 else f"\n{r['err'][-2000:]}"))
    table.add(SPANISH_ROW, "ours (variant)", cpu_s=r["cpu_s"], rss_mb=r["rss_mb"], wall_s=r["wall_s"],
              speed_x=_duration(w) / r["cpu_s"],
              confidence=json.loads((out / "long_es.json").read_text())["meta"].get("confidence") if r["rc"] == 0 else None)
    short = table.value("ours, with transcript, 2 min", "rss_mb")
    if short is not None:  # the peak must not grow with the length
        for system, _, values in table.rows:
            if system.startswith("ours, with transcript"):
                values["rss_growth_mb"] = values["rss_mb"] - short
    return table


def _duration(wav: Path) -> float:
    import soundfile as sf

    return sf.info(str(wav)).duration


# -- 2. accuracy of a long file against its pieces ----------------------------------------------------

def accuracy_table() -> Table:
    from bench.boundaries import pooled
    from bench.timit import load_timit, score_boundaries
    from toolkit import pipeline
    from toolkit.animation import Segment

    title = "TIMIT dev laid end to end (one 2.5-minute file) against the same utterances one by one"
    if not accuracy.TIMIT_DEV.is_dir():
        return Table("scale-accuracy", title, ACC_COLUMNS, skipped=f"{accuracy.TIMIT_DEV} not found")
    utts = load_timit(accuracy.TIMIT_DEV)
    pieces = accuracy.with_transcript(utts)
    rng = np.random.default_rng(13)
    parts, offsets, t = [], [], 0.0
    for u in utts:
        gap = (rng.standard_normal(int(rng.uniform(0.4, 1.2) * 16000)) * 3e-4).astype(np.float32)
        parts += [gap, u.samples]
        t += len(gap) / 16000
        offsets.append(t)
        t += u.duration_s
    parts.append((rng.standard_normal(8000) * 3e-4).astype(np.float32))
    x = np.concatenate(parts)
    text = "\n".join(u.text for u in utts)
    cpu = time.process_time()
    anim = pipeline.animate(x, text, sample_rate=16000, engine="align", blinks=False, head_motion=False,
                            source="timit_dev laid end to end")
    cpu = time.process_time() - cpu
    scores = []
    for u, off in zip(utts, offsets):
        mine = [Segment(p.label, p.start - off, p.end - off) for p in anim.phonemes
                if off - 0.3 < (p.start + p.end) / 2 < off + u.duration_s + 0.3]
        scores.append(score_boundaries(u.phones, mine))
    long_b = pooled(scores)
    fig = pieces.figures()
    table = Table("scale-accuracy", title, ACC_COLUMNS, notes=[
        f"long file: {len(x) / 16000:.0f} s aligned as one recording in {cpu:.1f} s CPU (chunked: it is longer "
        f"than {30:.0f} s); its phones scored per utterance like the single files"])
    table.add("the utterances one by one", "ours", mae_ms=fig["mae_ms"], within_20ms=fig["within_20ms"],
              matched=fig["matched"], top1=fig.get("top1"))
    mae, within = long_b.mean_abs_error_s * 1000, long_b.share_within()
    table.add("one long file", "ours (variant)", mae_ms=mae, within_20ms=within,
              matched=long_b.n_matched / max(1, long_b.n_ref_phones),
              delta_mae_ms=mae - fig["mae_ms"], delta_within=within - fig["within_20ms"])
    print(table.text())
    return table


# -- 3. batches -----------------------------------------------------------------------------------------

def batch_table(n_lines: int, fresh: bool) -> Table:
    manifest = batch_lines(n_lines, fresh)
    lines = [r.split("\t") for r in manifest.read_text(encoding="utf-8").splitlines()[1:]]
    audio_s = sum(_duration(manifest.parent / a) for _, a, _ in lines)
    table = Table("scale-batch", f"{len(lines)} voice lines ({audio_s / len(lines):.1f} s each on average), "
                  "2 cores", BATCH_COLUMNS)
    out = CACHE / "batch_out"
    shutil.rmtree(out, ignore_errors=True)
    r = measured(VISEME + ["batch", str(manifest), "-o", str(out / "local"), "--jobs", "2", "--quiet"])
    local_wall, local_cpu = r["wall_s"], r["cpu_s"]  # CPU: the command and its workers (all its children)
    failed = json.loads((out / "local" / "report.json").read_text())["summary"]["failed"] if r["rc"] < 126 else None
    print(f"viseme batch --jobs 2: {local_wall:.1f} s wall, {local_cpu:.1f} s CPU, {failed} failed")
    # a shell loop of single commands, on a 50-line subset, scaled
    subset = lines[:: max(1, len(lines) // 50)][:50]
    (out / "loop").mkdir(parents=True, exist_ok=True)
    t0, cpu0 = time.perf_counter(), _children_cpu_s()
    for ident, audio, text in subset:
        subprocess.run(VISEME + ["animate", str(manifest.parent / audio), "--text", text, "-o",
                                 str(out / "loop" / (ident.replace("/", "_") + ".json")), "--quiet"],
                       env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    loop_wall = (time.perf_counter() - t0) * len(lines) / len(subset)
    loop_cpu = (_children_cpu_s() - cpu0) * len(lines) / len(subset)
    print(f"shell loop of viseme animate: {loop_wall:.1f} s wall, {loop_cpu:.1f} s CPU for {len(lines)} lines "
          "(50 measured, scaled)")
    dask_wall, dask_failed = _dask_batch(manifest, out / "dask")
    table.add("viseme batch --jobs 2 (local pool)", "ours", wall_s=local_wall, cpu_s=local_cpu,
              lines_per_s=len(lines) / local_wall,
              vs_loop=loop_wall / local_wall, vs_local=1.0, failed=failed)
    if dask_wall is not None:
        table.add("viseme batch --scheduler (local Dask, 2 workers)", "ours (variant)", wall_s=dask_wall,
                  lines_per_s=len(lines) / dask_wall, vs_loop=loop_wall / dask_wall, vs_local=dask_wall / local_wall,
                  failed=dask_failed)
    table.notes.append("CPU s: the command and every process it ran; the Dask workers run in this process's "
                       "LocalCluster, not under the command, so theirs is not counted")
    table.add("shell loop of viseme animate (50 lines, scaled)", "peer", wall_s=loop_wall, cpu_s=loop_cpu,
              lines_per_s=len(lines) / loop_wall, vs_loop=1.0)
    return table


def _children_cpu_s() -> float:
    """CPU seconds (user + system) of this process's finished children so far."""
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def _dask_batch(manifest: Path, out: Path) -> tuple[float | None, int | None]:
    try:
        from distributed import LocalCluster
    except ImportError:
        print("skip Dask: dask.distributed not installed (pip install 'viseme-toolkit[cluster]')")
        return None, None
    os.environ.update({k: ENV[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        r = measured(VISEME + ["batch", str(manifest), "-o", str(out), "--scheduler", cluster.scheduler_address,
                               "--quiet"])
    failed = json.loads((out / "report.json").read_text())["summary"]["failed"] if (out / "report.json").is_file() else None
    print(f"viseme batch --scheduler (LocalCluster, 2 workers): {r['wall_s']:.1f} s wall, {failed} failed"
          + ("" if r["rc"] < 126 else f"\n{r['err'][-2000:]}"))
    return r["wall_s"], failed


def tables(argv=None) -> list[Table]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--lines", type=int, default=1000)
    ap.add_argument("--only", choices=["long", "accuracy", "batch"])
    ap.add_argument("--fresh", action="store_true", help="make the audio again")
    args = ap.parse_args(argv)
    out = []
    if args.only in (None, "long"):
        out.append(long_table(args.minutes, args.fresh))
    if args.only in (None, "accuracy"):
        out.append(accuracy_table())
    if args.only in (None, "batch"):
        out.append(batch_table(args.lines, args.fresh))
    return out


def main(argv=None) -> int:
    return finish(tables(argv))


if __name__ == "__main__":
    raise SystemExit(main())
