"""The main job with a transcript: viseme curves on TIMIT's hand-aligned phones, beside its peers.

Prints, per speaker and pooled: mid-phone viseme accuracy (top-1 and top-2), 10 ms
frame accuracy, coarse mouth-class accuracy, bilabial closure recall, vowels shut,
the mouth's lag, failures and speed.  Systems in the same run (how each peer is
run: `bench.peers`):

* ours: `toolkit.pipeline.animate` (engine "align", 30 fps), the same on the audio
  with bursts of digital noise added (`bench.accuracy.with_transcript`), and the
  same at 100 fps (the held-shape peers below are exact steps, at no frame rate);
* PocketSphinx forced alignment used directly, each of `bench.peers.PS_CONFIGS`,
  scored as held shapes (one viseme per phone, switched at its corrected boundaries);
* openfacefx (PyPI) in its offline mode: text spread over the audio (no aligner);
* loudness only: the mouth opens with loudness (what many add-ons do).

    python -m bench.bench_pipeline [--fps 30] [--limit N]
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from bench import accuracy  # noqa: E402
from bench.metrics import HELD_FPS, score_visemes, stepwise_weights  # noqa: E402
from bench.peers import PS_CONFIGS, loudness_only, openfacefx_naive  # noqa: E402
from bench.report import Column, Table, finish  # noqa: E402
from bench.timit import load_timit  # noqa: E402

VISEME_COLUMNS = [Column("top1", "top-1"), Column("top2", "top-2"), Column("frame", "frame"),
                  Column("coarse", "coarse"), Column("bilabial", "bilabial"),
                  Column("vowel_shut", "vowel shut", lower_is_better=True), Column("lag_ms", "lag ms", "{:+.0f}")]
COLUMNS = VISEME_COLUMNS + [Column("failures", "failures", "{:.0f}", lower_is_better=True),
                            Column("speed_x", "x real time", "{:.0f}")]
OURS, NOISY = "ours (toolkit.animate)", "ours, noise bursts added"


def held_pocketsphinx(utts, settings: dict) -> accuracy.Scored:
    """PocketSphinx forced alignment as held viseme shapes."""
    from bench.bench_align import forced_alignments

    hyps, cpu_s = forced_alignments(utts, settings)
    out = accuracy.Scored(audio_s=sum(u.duration_s for u in utts), cpu_s=cpu_s)
    for u, hyp in zip(utts, hyps):
        if hyp is None:
            out.failures += 1
            continue
        out.add(u.speaker, visemes=score_visemes(stepwise_weights(hyp, u.duration_s), HELD_FPS, u.phones61))
    return out


def baseline(utts, fps: float, make) -> accuracy.Scored | None:
    """A peer that needs no aligner: ``make(utterance)`` -> viseme curves at ``fps`` (None: not installed)."""
    out = accuracy.Scored()
    for u in utts:
        w = make(u)
        if w is None:
            return None
        out.add(u.speaker, visemes=score_visemes(w, fps, u.phones61))
    return out


def _detail(name: str, scored: accuracy.Scored) -> None:
    print(f"\n{name}")
    for spk in sorted(set(scored.groups)):
        f = scored.figures(spk)
        print(f"  {spk:<12} " + "  ".join(f"{c.header} {c.cell(f.get(c.key))}" for c in VISEME_COLUMNS))


def tables(argv=None) -> list[Table]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fps", type=float, default=30)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--root", default=str(accuracy.TIMIT_DEV))
    args = ap.parse_args(argv)
    title = f"viseme curves with a transcript, TIMIT dev, 61-label reference (ours at {args.fps:g} fps)"
    if not os.path.isdir(args.root):
        print(f"skip: {args.root} not found (the hand-aligned TIMIT recordings live in ../shared/data)")
        return [Table("visemes", title, COLUMNS, skipped=f"{args.root} not found")]
    utts = load_timit(args.root)
    if args.limit:
        utts = utts[: args.limit]
    runs = {OURS: ("ours", accuracy.with_transcript(utts, fps=args.fps)),
            NOISY: ("ours (variant)", accuracy.with_transcript(utts, fps=args.fps, noise=True)),
            "ours at 100 fps": ("ours (variant)", accuracy.with_transcript(utts, fps=100))}
    for name, settings in PS_CONFIGS.items():
        runs[name + ", held shapes"] = ("peer", held_pocketsphinx(utts, settings))
    ofx = baseline(utts, args.fps, lambda u: openfacefx_naive(u.text, u.duration_s, args.fps))
    if ofx is not None:
        runs["openfacefx 0.24 (offline, text spread)"] = ("peer", ofx)
    runs["loudness only"] = ("peer", baseline(utts, args.fps, lambda u: loudness_only(u.samples, args.fps)))
    print(f"TIMIT dev: {len(utts)} utterances, {len({u.speaker for u in utts})} speakers")
    table = Table("visemes", title, COLUMNS, notes=[
        "top-1/top-2: reference viseme strongest / among the two strongest mid-phone; bilabial: lips shut during "
        "/p b m/; held shapes: one viseme per phone, exact steps (sampled every 1 ms); ours blends neighbours "
        "(coarticulation), which costs top-1 and buys top-2"])
    if ofx is None:
        table.notes.append("openfacefx not installed (make bench installs it): not run")
    for name, (kind, scored) in runs.items():
        _detail(name, scored)
        table.add(name, kind, **scored.figures())
    return [table]


def main(argv: list[str] | None = None) -> int:
    return finish(tables(argv))


if __name__ == "__main__":
    raise SystemExit(main())
