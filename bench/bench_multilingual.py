"""Alignment in every language: hand-corrected words in 15 languages, held-out sentences, English, peers in the same run.

1. **Words** (`bench.voxangeles`: the VoxAngeles dev words, one word per
   recording, hand-corrected IPA phone boundaries, languages the aligner never
   heard).  The words tier's IPA goes in as ``--ipa`` gives it
   (`toolkit.phonemes.g2p.words_from_ipa`).  Systems, per language and pooled:

   * ours: `toolkit.alignment.align`, method "auto", which is the universal aligner for an IPA
     transcript (`toolkit.alignment.universal`), then the coarticulation at 30 fps
     (`bench.accuracy.multilingual`);
   * the method before it: the toolkit's PocketSphinx route, each phone mapped to its nearest
     English phone, with the word's language code (same function, method "pocketsphinx");
   * PocketSphinx used directly at 100 and 200 frames/s, English phones (`bench.peers`), held shapes;
   * an even split: the word's phones over the detected speech by typical durations
     (`toolkit.alignment.even_alignment`, what is left without an aligner);
   * a loudness split: the universal aligner's Viterbi with a model that hears only loudness
     (vowels loud, sonorants less, fricatives less, stops and pauses quiet; `loudness_alignment`).

   Reference boundaries: MFA's, audited and about half corrected by hand.
2. **Sentences** with exact phone times, never trained on: espeak-ng in its held-out languages
   and voice variants, festival's Czech and second Finnish voices (real speakers), clean and
   degraded (`toolkit.train.audio2face.augment`); transcript: the synthesizer's own phones
   grouped in its words.  Universal, PocketSphinx-mapped and even split.
3. **English**, TIMIT dev: ``auto`` (PocketSphinx, the whole aligned job as `bench_align` runs
   it) beside the universal aligner on the same CMU-dictionary phones.

Speed: audio seconds per CPU second of this process (one core).

    python -m bench.bench_multilingual [--every N] [--no-sentences] [--no-timit]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from bench import accuracy  # noqa: E402
from bench.metrics import HELD_FPS, score_visemes, stepwise_weights  # noqa: E402
from bench.peers import PS_CONFIGS, pocketsphinx_forced  # noqa: E402
from bench.report import Column, Table, finish  # noqa: E402
from bench.voxangeles import MULTILINGUAL_DEV, load_words, score_boundaries  # noqa: E402
from toolkit.animation import Segment  # noqa: E402

COLUMNS = [Column("mae_ms", "MAE ms", "{:.1f}", lower_is_better=True), Column("within_20ms", "<= 20 ms", "{:.1%}"),
           Column("top1", "top-1"), Column("top2", "top-2"), Column("bilabial", "bilabial"),
           Column("worst_vs_before_ms", "worst lang vs before", "{:+.1f}", lower_is_better=True),
           Column("fallbacks", "fallbacks", "{:.0f}", lower_is_better=True), Column("speed_x", "x real time", "{:.0f}")]
OURS = "ours (universal aligner: auto for IPA, + coarticulation)"
BEFORE = "before: toolkit PocketSphinx, nearest English phones"
EVEN = "even split over the speech, held shapes"
LOUDNESS = "loudness split (Viterbi on loudness alone), held shapes"


# -- the loudness split: the universal aligner's Viterbi with a model that only hears loudness -------------

# Expected loudness (0 = the recording's floor, 1 = its loud speech) by manner: vowels loudest, then
# sonorants, fricatives, and the (mostly silent) stops.
_LOUDNESS_OF = {"sil": 0.0, "stop": 0.25, "fricative": 0.45, "nasal": 0.7, "lateral": 0.75, "rhotic": 0.75,
                "glide": 0.85, "vowel": 1.0}
_LOUDNESS_SPREAD = 0.2  # how far a frame's level may sit from its manner's before it scores badly


def loudness_alignment(samples: np.ndarray, words: list[tuple[str, list[str]]]) -> list[Segment]:
    """The phones placed by loudness alone: the same state graph and Viterbi as the universal aligner."""
    from toolkit.alignment.even import frame_energy_db
    from toolkit.alignment.universal import _segments, build_graph, viterbi

    db = frame_energy_db(np.concatenate([np.zeros(80, np.float32), samples]), 16000, 0.01, 0.01)
    floor, peak = np.percentile(db, 10), np.percentile(db, 97)
    level = np.clip((db - floor) / max(peak - floor, 6.0), 0, 1)
    g = build_graph([p for _, p in words])
    want = np.array([_LOUDNESS_OF[g.targets[t].manner] for t in g.target])
    emit = -((level[:, None] - want[None, :]) ** 2) / (2 * _LOUDNESS_SPREAD ** 2)
    zeros = np.zeros(len(level))
    path, _ = viterbi(emit, g, zeros, zeros)
    return [Segment(g.labels[p], s, e) for p, s, e in _segments(path, g, 0.0, len(samples) / 16000)]


# -- the words -----------------------------------------------------------------------------------------

def _ipa(w) -> list[tuple[str, list[str]]]:
    from toolkit.phonemes.g2p import words_from_ipa

    return [(x.text, x.phones) for x in words_from_ipa(" ".join(text for text, _ in w.transcript))]


def held_shapes(words, place) -> accuracy.Scored:
    """A timing method without coarticulation (``place(word) -> phones``), scored as held shapes."""
    out = accuracy.Scored()
    for w in words:
        t = time.process_time()
        phones = place(w)
        out.cpu_s += time.process_time() - t
        out.audio_s += w.duration_s
        out.add(w.lang, score_boundaries(w.phones, phones),
                score_visemes(stepwise_weights(phones, w.duration_s), HELD_FPS, w.phones))
    return out


def _arpabet(phones: list[str]) -> list[str]:
    from toolkit.phonemes.inventory import ipa_to_arpabet

    out = []
    for p in phones:
        try:
            out.append(ipa_to_arpabet(p))
        except KeyError:
            out.append("AH")  # as the toolkit's PocketSphinx route does: no English counterpart, a neutral vowel
    return out


def pocketsphinx_direct(words, settings: dict) -> accuracy.Scored:
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


def words_tables(words) -> list[Table]:
    from toolkit.alignment import even_alignment

    runs = {OURS: ("ours", accuracy.multilingual(words)),
            BEFORE: ("peer", accuracy.multilingual(words, method="pocketsphinx"))}
    for name in ("PocketSphinx 100 frames/s", "PocketSphinx 200 frames/s"):
        runs[name + " used directly, English phones, held shapes"] = ("peer", pocketsphinx_direct(words, PS_CONFIGS[name]))
    runs[EVEN] = ("peer", held_shapes(words, lambda w: even_alignment(_ipa(w), w.duration_s, samples=w.samples).phonemes))
    runs[LOUDNESS] = ("peer", held_shapes(words, lambda w: loudness_alignment(w.samples, _ipa(w))))
    langs = sorted({w.lang for w in words})
    title = "15 languages, VoxAngeles dev words, IPA transcript as --ipa gives it (ours at 30 fps)"
    table = Table("multilingual", title, COLUMNS, notes=[
        f"{len(words)} words, {len(langs)} languages, {sum(w.duration_s for w in words):.0f} s; reference: MFA "
        "boundaries audited by hand (about half moved); 'worst lang vs before': the largest per-language MAE "
        "difference to the method before (issue 16: <= +5 ms); fallbacks: words spread evenly"])
    by_lang = {key: Table(f"multilingual by language ({header})", "the same run, per language",
                          [Column(x, x, fmt, lower_is_better=(key == "mae_ms")) for x in langs + ["pooled"]])
               for key, header, fmt in (("mae_ms", "MAE ms", "{:.1f}"), ("within_20ms", "<= 20 ms", "{:.1%}"))}
    before = {x: runs[BEFORE][1].figures(x)["mae_ms"] for x in langs}
    for name, (kind, scored) in runs.items():
        figures = scored.figures()
        figures["worst_vs_before_ms"] = max(scored.figures(x)["mae_ms"] - before[x] for x in langs)
        table.add(name, kind, **figures)
        for key, t in by_lang.items():
            t.add(name, kind, pooled=figures[key], **{x: scored.figures(x)[key] for x in langs})
    return [table, *by_lang.values()]


# -- sentences ---------------------------------------------------------------------------------------

def sentence_set(n_espeak: int = 45, n_festival: int = 25, seed: int = 16):
    """(group, samples, reference phones, transcript) of held-out synthetic sentences, clean and degraded."""
    import random

    from toolkit.alignment.tts import synthesize
    from toolkit.train.audio2face import VAL_VARIANTS, augment
    from toolkit.train.speech import ESPEAK_HELD_OUT, festival_lang_voices, pseudo_text, synth_festival_langs

    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    out = []
    for k in range(n_espeak):
        lang = ESPEAK_HELD_OUT[k % len(ESPEAK_HELD_OUT)]
        text = pseudo_text(lang, rng, (6, 14))
        try:
            sp = synthesize(text, lang=lang, variant=rng.choice(VAL_VARIANTS), rate_wpm=rng.randint(130, 260),
                            pitch=rng.randint(20, 80))
        except ValueError:
            continue
        words = [(w.label, [p.label for p in sp.phonemes if p.label and w.start - 1e-6 <= p.start < w.end - 1e-6])
                 for w in sp.words]
        out.append(("espeak-ng", sp.samples, sp.phonemes, [w for w in words if w[1]]))
    for x, p, _, words in synth_festival_langs(n_festival, seed, voices=festival_lang_voices(held_out=True),
                                               progress=False, batch=5, with_words=True):
        out.append(("festival", x, p, words))
    degraded = []
    for g, x, p, words in out:
        y, q, _ = augment(x, p, nrng)
        degraded.append((g + " degraded", y, q, words))
    return out + degraded


def sentence_table() -> Table:
    from toolkit.alignment import align, even_alignment
    from toolkit.train.speech import ESPEAK_HELD_OUT, festival_lang_voices

    sents = sentence_set()
    groups = sorted({g for g, *_ in sents})
    methods = {"universal (ours)": lambda x, w: align(x, 16000, w, lang="und", method="universal").phonemes,
               "PocketSphinx, nearest English phones (before)":
                   lambda x, w: align(x, 16000, w, lang="und", method="pocketsphinx").phonemes,
               "even split": lambda x, w: even_alignment(w, len(x) / 16000, samples=x).phonemes}
    columns = [c for g in groups for c in (Column(f"{g} mae", f"{g} MAE ms", "{:.1f}", lower_is_better=True),
                                           Column(f"{g} w20", f"{g} <= 20 ms", "{:.1%}"))]
    table = Table("multilingual sentences", "sentences never trained on, exact phone times", columns + [
        Column("speed_x", "x real time", "{:.0f}")], notes=[
        f"espeak-ng {' '.join(ESPEAK_HELD_OUT)} in held-out voice variants; festival "
        f"{' '.join(festival_lang_voices(held_out=True)) or '(no held-out voice installed)'}; "
        "sentences: " + ", ".join(f"{g} {sum(x == g for x, *_ in sents)}" for g in groups)
        + f", {sum(len(x) for _, x, *_ in sents) / 16000:.0f} s; degraded: noise, reverb, EQ, band limits, codecs"])
    for name, fn in methods.items():
        scored = accuracy.Scored()
        for g, x, ref, words in sents:
            t = time.process_time()
            hyp = fn(x, words)
            scored.cpu_s += time.process_time() - t
            scored.audio_s += len(x) / 16000
            scored.add(g, score_boundaries([s for s in ref if s.label], hyp))
        values = {"speed_x": scored.figures()["speed_x"]}
        for g in groups:
            f = scored.figures(g)
            values.update({f"{g} mae": f["mae_ms"], f"{g} w20": f["within_20ms"]})
        table.add(name, "ours" if "ours" in name else "peer", **values)
    return table


# -- English -----------------------------------------------------------------------------------------

def timit_table() -> Table:
    from bench.timit import load_timit
    from bench.timit import score_boundaries as timit_boundaries
    from toolkit.alignment import align
    from toolkit.phonemes.g2p import words_to_phonemes

    cols = [Column("mae_ms", "MAE ms", "{:.1f}", lower_is_better=True), Column("within_20ms", "<= 20 ms", "{:.1%}"),
            Column("speed_x", "x real time", "{:.0f}")]
    title = "English, TIMIT dev with its transcripts: why auto keeps PocketSphinx for English"
    if not accuracy.TIMIT_DEV.is_dir():
        return Table("multilingual TIMIT", title, cols, skipped=f"{accuracy.TIMIT_DEV} not found")
    utts = load_timit(accuracy.TIMIT_DEV)
    table = Table("multilingual TIMIT", title, cols, notes=[
        f"{len(utts)} utterances; auto: the aligned job as bench_align runs it (unchanged by issue 16); "
        "universal: the same CMU-dictionary phones, alignment only"])
    auto = accuracy.with_transcript(utts).figures()
    table.add("auto: PocketSphinx (English text)", "ours", **auto)
    scored = accuracy.Scored()
    for u in utts:
        words = words_to_phonemes(u.text, "en")
        t = time.process_time()
        al = align(u.samples, 16000, words, lang="en", method="universal", source=u.name)
        scored.cpu_s += time.process_time() - t
        scored.audio_s += u.duration_s
        scored.add(u.speaker, timit_boundaries(u.phones, al.phonemes))
    table.add("universal aligner alone", "ours (variant)", **scored.figures())
    return table


def tables(argv=None) -> list[Table]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=str(MULTILINGUAL_DEV))
    ap.add_argument("--every", type=int, default=1, help="every n-th word of each language (quick looks)")
    ap.add_argument("--no-sentences", action="store_true")
    ap.add_argument("--no-timit", action="store_true")
    args = ap.parse_args(argv)
    out = []
    if os.path.isdir(args.root):
        out += words_tables(load_words(args.root, every=args.every))
    else:
        print(f"skip: {args.root} not found (the multilingual development set lives in ../shared/data)")
        out.append(Table("multilingual", "15 languages, VoxAngeles dev words", COLUMNS, skipped=f"{args.root} not found"))
    if not args.no_sentences:
        out.append(sentence_table())
    if not args.no_timit:
        out.append(timit_table())
    return out


def main(argv=None) -> int:
    return finish(tables(argv))


if __name__ == "__main__":
    raise SystemExit(main())
