"""Phone-boundary accuracy and speed with a transcript, on TIMIT's hand-aligned phones, beside PocketSphinx.

Systems, all in the same run (how each peer is run: `bench.peers`):

* ours: `toolkit.pipeline.animate` with the transcript (engine "align"), as a user
  runs it (`bench.accuracy.with_transcript`), and the same on the audio with
  bursts of digital noise added (no utterance may end up without an alignment; a
  fallback is an utterance with words spread evenly, a masked burst only warns);
* PocketSphinx forced alignment used directly (`bench.peers.PS_CONFIGS`): at its
  default 100 frames/s, at 200 frames/s (its best rate), and with our decoder's
  settings (5 ms frames, ds=2, topn=5), each with the frame-centre correction.

Prints, per speaker and pooled, the mean absolute boundary error, the share of
boundaries within 20 ms, the share of reference phones paired, fallbacks and
speed (audio seconds per CPU second, one core).  Targets: ``bench/targets.toml``.
TIMIT is a yardstick only: nothing is fitted on it.

    .venv/bin/python -m bench.bench_align [--timit DIR] [--sweep]

``--sweep`` also measures PocketSphinx at 100/125/160/200 frames/s with and
without the correction (how its best rate was found).
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: speed is CPU time of this process

from bench import accuracy  # noqa: E402
from bench.peers import PS_CONFIGS, pocketsphinx_build, pocketsphinx_forced  # noqa: E402
from bench.report import Column, Table, finish  # noqa: E402
from bench.timit import load_timit, score_boundaries, transcript_words  # noqa: E402
from toolkit.alignment.pocketsphinx import frame_offset_s  # noqa: E402
from toolkit.animation import Segment  # noqa: E402

COLUMNS = [Column("mae_ms", "MAE ms", "{:.1f}", lower_is_better=True), Column("within_20ms", "<= 20 ms", "{:.1%}"),
           Column("matched", "paired", "{:.1%}"), Column("fallbacks", "fallbacks", "{:.0f}", lower_is_better=True),
           Column("speed_x", "x real time", "{:.0f}")]
OURS, NOISY = "ours (toolkit.alignment)", "ours, noise bursts added"


def forced_alignments(utts, settings: dict) -> tuple[list, float]:
    """PocketSphinx forced alignment of each utterance (None where it fails) and the CPU seconds it took."""
    from pocketsphinx import Decoder

    dec = Decoder(**settings)
    hyps, cpu_s = [], 0.0
    for u in utts:
        t = time.process_time()
        hyps.append(pocketsphinx_forced(dec, u.samples, transcript_words(u.text)))
        cpu_s += time.process_time() - t
    return hyps, cpu_s


def pocketsphinx(utts, settings: dict, offset: bool = True) -> accuracy.Scored:
    """PocketSphinx's phone boundaries scored; ``offset=False``: at frame starts (the sweep only)."""
    hyps, cpu_s = forced_alignments(utts, settings)
    out = accuracy.Scored(audio_s=sum(u.duration_s for u in utts), cpu_s=cpu_s)
    d = 0.0 if offset else frame_offset_s(int(settings["frate"]))
    for u, hyp in zip(utts, hyps):
        out.fallbacks += hyp is None
        out.add(u.speaker, score_boundaries(u.phones, [Segment(s.label, s.start - d, s.end - d) for s in hyp or []]))
    return out


def _detail(name: str, scored: accuracy.Scored) -> None:
    print(f"\n{name}")
    for spk in sorted(set(scored.groups)):
        f = scored.figures(spk)
        print(f"  {spk:<12} MAE {f['mae_ms']:5.1f} ms   within 20 ms {f['within_20ms']:6.1%}   "
              f"paired {f['matched']:6.1%}")


def sweep(utts) -> Table:
    t = Table("alignment sweep", "PocketSphinx frame rates, boundaries at frame starts vs frame centres",
              [Column("mae_ms", "MAE ms", "{:.1f}", True), Column("within_20ms", "<= 20 ms", "{:.1%}"),
               Column("speed_x", "x real time", "{:.0f}")])
    base = PS_CONFIGS["PocketSphinx 100 frames/s"]
    for frate in (100, 125, 160, 200):
        for offset in (False, True):
            f = pocketsphinx(utts, dict(base, frate=frate), offset=offset).figures()
            t.add(f"{frate} frames/s, {'centres' if offset else 'starts'}", "sweep", **f)
    return t


def tables(argv=None) -> list[Table]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--timit", default=str(accuracy.TIMIT_DEV))
    ap.add_argument("--sweep", action="store_true", help="PocketSphinx at several frame rates, with and without correction")
    args = ap.parse_args(argv)
    title = "phone boundaries, TIMIT dev (4 speakers, 40 utterances), with a transcript"
    if not os.path.isdir(args.timit):
        print(f"skip: {args.timit} not found (the hand-aligned TIMIT recordings live in ../shared/data)")
        return [Table("alignment", title, COLUMNS, skipped=f"{args.timit} not found")]
    utts = load_timit(args.timit)
    audio_s = sum(u.duration_s for u in utts)
    runs = {OURS: ("ours", accuracy.with_transcript(utts)), NOISY: ("ours (variant)", accuracy.with_transcript(utts, noise=True))}
    for name, settings in PS_CONFIGS.items():
        runs[name] = ("peer", pocketsphinx(utts, settings))
    print(f"TIMIT dev: {len(utts)} utterances, {audio_s:.0f} s; speed = audio s / CPU s (one core)")
    table = Table("alignment", title, COLUMNS, notes=[
        "ours: the whole aligned job (toolkit.pipeline.animate, engine align); PocketSphinx: two-pass forced alignment, "
        "wide beams, its dictionary, boundaries at frame centres (bench/peers.py)", pocketsphinx_build()])
    for name, (kind, scored) in runs.items():
        _detail(name, scored)
        table.add(name, kind, **scored.figures())
    out = [table]
    if args.sweep:
        out.append(sweep(utts))
    return out


def main(argv=None) -> int:
    return finish(tables(argv))


if __name__ == "__main__":
    raise SystemExit(main())
