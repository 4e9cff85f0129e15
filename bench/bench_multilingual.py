"""Alignment and visemes in 15 languages: the VoxAngeles dev words, beside PocketSphinx used directly.

Each recording is one word with its IPA as the transcript (`bench.voxangeles`).
Systems in the same run (how each peer is run: `bench.peers`):

* ours: `toolkit.alignment.align` with the word's IPA and its language code, then the
  coarticulation at 30 fps as the pipeline does it (`bench.accuracy.multilingual`);
* PocketSphinx forced alignment used directly at 100 and 200 frames/s (frame-centre
  correction), each IPA phone given as its nearest English phone (the same table
  ours uses, `toolkit.phonemes.inventory.ipa_to_arpabet`), scored as held shapes;
* even spreading: the word's phones spread over the detected speech by typical
  durations (`toolkit.alignment.even_alignment`, what is left without an aligner).

Prints, per language and pooled: boundary error (mean, share within 20 ms), mid-phone
viseme accuracy (top-1/top-2), bilabial closure recall, fallbacks and speed.  The
reference boundaries are MFA's, audited and about half corrected by hand, so an
aligner that behaves like MFA is favoured: compare methods on the same files.

    python -m bench.bench_multilingual [--every N]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from bench import accuracy  # noqa: E402
from bench.metrics import HELD_FPS, score_visemes, stepwise_weights  # noqa: E402
from bench.peers import PS_CONFIGS, pocketsphinx_forced  # noqa: E402
from bench.report import Column, Table, finish  # noqa: E402
from bench.voxangeles import MULTILINGUAL_DEV, load_words, score_boundaries  # noqa: E402
from toolkit.animation import Segment  # noqa: E402

COLUMNS = [Column("mae_ms", "MAE ms", "{:.1f}", lower_is_better=True), Column("within_20ms", "<= 20 ms", "{:.1%}"),
           Column("top1", "top-1"), Column("top2", "top-2"), Column("bilabial", "bilabial"),
           Column("fallbacks", "fallbacks", "{:.0f}", lower_is_better=True), Column("speed_x", "x real time", "{:.0f}")]
OURS = "ours (toolkit.alignment + coarticulation)"


def _arpabet(phones: list[str]) -> list[str]:
    from toolkit.phonemes.inventory import ipa_to_arpabet

    out = []
    for p in phones:
        try:
            out.append(ipa_to_arpabet(p))
        except KeyError:
            out.append("AH")  # as ours does: a phone with no English counterpart is a neutral vowel
    return out


def pocketsphinx(words, settings: dict) -> accuracy.Scored:
    from pocketsphinx import Decoder

    dec = Decoder(**settings)
    out = accuracy.Scored()
    for k, w in enumerate(words):
        entries = [(f"w{k}_{i}", _arpabet(phones)) for i, (_, phones) in enumerate(w.transcript) if phones]
        t = time.process_time()
        hyp = pocketsphinx_forced(dec, w.samples, entries)
        out.cpu_s += time.process_time() - t
        out.audio_s += w.duration_s
        if hyp is None:
            out.fallbacks += 1
            hyp = []
        # the labels it gives back are English phones: score against the word's own IPA, phone for phone
        ipa = iter([p for _, phones in w.transcript for p in phones])
        hyp = [Segment(next(ipa, s.label) if s.label else "", s.start, s.end) for s in hyp]
        out.add(w.lang, score_boundaries(w.phones, hyp), score_visemes(stepwise_weights(hyp, w.duration_s), HELD_FPS,
                                                                       w.phones))
    return out


def even(words) -> accuracy.Scored:
    from toolkit.alignment import even_alignment

    out = accuracy.Scored()
    for w in words:
        t = time.process_time()
        al = even_alignment(w.transcript, w.duration_s, samples=w.samples)
        out.cpu_s += time.process_time() - t
        out.audio_s += w.duration_s
        out.add(w.lang, score_boundaries(w.phones, al.phonemes),
                score_visemes(stepwise_weights(al.phonemes, w.duration_s), HELD_FPS, w.phones))
    return out


def tables(argv=None) -> list[Table]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=str(MULTILINGUAL_DEV))
    ap.add_argument("--every", type=int, default=1, help="every n-th word of each language (quick looks)")
    args = ap.parse_args(argv)
    title = "15 languages, VoxAngeles dev words (IPA transcript), boundaries and visemes (ours at 30 fps)"
    if not os.path.isdir(args.root):
        print(f"skip: {args.root} not found (the multilingual development set lives in ../shared/data)")
        return [Table("multilingual", title, COLUMNS, skipped=f"{args.root} not found")]
    words = load_words(args.root, every=args.every)
    runs = {OURS: ("ours", accuracy.multilingual(words))}
    for name in ("PocketSphinx 100 frames/s", "PocketSphinx 200 frames/s"):
        runs[name + ", English phones, held shapes"] = ("peer", pocketsphinx(words, PS_CONFIGS[name]))
    runs["even spreading over the speech, held shapes"] = ("peer", even(words))
    langs = sorted({w.lang for w in words})
    print(f"{len(words)} words in {len(langs)} languages, {sum(w.duration_s for w in words):.0f} s")
    print(f"{'MAE ms / top-1':<52}" + "".join(f"{x:>11}" for x in langs))
    for name, (_, scored) in runs.items():
        cells = [scored.figures(x) for x in langs]
        print(f"{name:<52}" + "".join(f"{f['mae_ms']:5.0f}/{f['top1']:.2f}" for f in cells))
    table = Table("multilingual", title, COLUMNS, notes=[
        f"{len(words)} words, {len(langs)} languages; reference: MFA boundaries audited by hand (about half moved); "
        "fallbacks: words spread evenly because PocketSphinx found no path"])
    for name, (kind, scored) in runs.items():
        table.add(name, kind, **scored.figures())
    return [table]


def main(argv=None) -> int:
    return finish(tables(argv))


if __name__ == "__main__":
    raise SystemExit(main())
