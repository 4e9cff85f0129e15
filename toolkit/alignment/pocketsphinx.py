"""Forced alignment with PocketSphinx 5 and its US-English acoustic model.

Each stretch of audio is aligned in two passes: a word pass (``set_align_text``:
the transcript as a grammar with optional silences and noises between words)
and a phone pass (``set_alignment``: Viterbi over the HMM states of the chosen
word sequence).  Settings that matter for timing:

* 200 frames/s instead of the model's usual 100: a phone can then be as short
  as 15 ms (three HMM states x 5 ms) instead of 30 ms, which halves the error
  on short consonants;
* Gaussian scores computed on every second frame (``ds=2``) with the 5 best
  Gaussians per codebook (``topn=5``): the HMM keeps its 5 ms steps at half
  the scoring cost, and the extra Gaussians pay back the accuracy;
* frame times are moved by half an analysis window minus half a hop, so a
  boundary lands between the centres of the two frames it separates;
* wide beams (the word pass must not prune the true path).

Around the decoder (`toolkit.alignment.refine`): noise bursts (full-scale digital
noise) are replaced by quiet noise before decoding, so no phone is anchored on
them, and afterwards each phone boundary moves by at most 10 ms to the nearby
peak of spectral change.  A chunk the 200 frames/s decoder finds no path
through is tried again at 100 frames/s (longer minimum phone durations, other
pruning) before it falls back to even spreading.

Long recordings are aligned window by window (`WINDOW_S`): a grammar that
accepts any prefix of the remaining words finds how far the speech in the
window gets, the window is cut at the last pause, and that chunk is aligned
on its own, so time and memory grow linearly with the length.

Words are added to the decoder's dictionary with the pronunciation the
transcript's g2p gave (`toolkit.phonemes.g2p`), so the IPA labels that come back
are exactly the transcript's phones.  Languages other than English are aligned
with the English model: each IPA phone is replaced by its nearest English
phone (`inventory.ipa_to_arpabet`) for the acoustic match and keeps its own
label in the result; the timing is coarser, and a warning says so.

A chunk whose decoding fails (no path through the grammar, a transcript that
does not fit the audio, noise) falls back to `even_alignment` for that chunk
with a warning and a lower confidence: alignment never raises for bad audio.

Example
-------
>>> from toolkit.alignment.tts import synthesize                 # doctest: +SKIP
>>> sp = synthesize("the birch canoe slid on the smooth planks", "en")  # doctest: +SKIP
>>> al = align_pocketsphinx(sp.samples, sp.sample_rate, "the birch canoe slid on the smooth planks")  # doctest: +SKIP
>>> al.method, [w.label for w in al.words][:3]              # doctest: +SKIP
('pocketsphinx', ['the', 'birch', 'canoe'])
"""
from __future__ import annotations

import functools
import threading
import warnings
from dataclasses import dataclass, field

import numpy as np

from toolkit.alignment.even import _fill_silence, even_alignment, phone_weight, speech_regions
from toolkit.alignment.result import EVEN_CONFIDENCE, Alignment, _word_parts
from toolkit.alignment.refine import EDGE_SHIFT_S, mask_noise_bursts, refine_boundaries, refine_speech_edges, spectral_novelty
from toolkit.animation import Segment
from toolkit.phonemes import cmu
from toolkit.phonemes.inventory import arpabet_to_ipa, ipa_to_arpabet

SAMPLE_RATE = 16000
FRATE = 200  # frames per second
RETRY_FRATE = 100  # second try for a chunk the FRATE decoder finds no path through
WLEN_S = 0.025625  # PocketSphinx's analysis window


def frame_offset_s(frate: int) -> float:
    """A boundary at frame k lies between the centres of frames k-1 and k: k / frate + this."""
    return WLEN_S / 2 - 0.5 / frate


FRAME_OFFSET_S = frame_offset_s(FRATE)
MIN_PHONE_FRAMES = 3  # one frame per HMM state
REFINE = True  # move boundaries to nearby spectral changes after decoding (`toolkit.alignment.refine`)
EDGES = True  # ... and silence/speech edges to loudness threshold crossings first
SINGLE_PASS_S = 30.0  # recordings up to this length are aligned in one piece
WINDOW_S = 24.0  # window length for long recordings
DECODER_SETTINGS = dict(lm=None, beam=1e-120, wbeam=1e-100, pbeam=1e-120, bestpath=False,
                        frate=FRATE, ds=2, topn=5, loglevel="FATAL")
# Above this share of phones at the minimum length a chunk counts as a transcript mismatch
# (the decoder crushed words it could not find).  Matching speech stays well below.
SQUEEZED_MISMATCH = 0.45

_FILLERS = ("<sil>", "<s>", "</s>", "[NOISE]", "[SPEECH]")
_lock = threading.Lock()  # one decoder, one utterance at a time


@dataclass
class _Entry:
    text: str
    phones: list[str]  # IPA labels, one per ARPAbet phone
    arpabet: list[str]
    name: str  # dictionary key in the decoder
    # other dictionary pronunciations ("the": DH AH0 / DH IY0): (ARPAbet, IPA); the decoder picks
    variants: list[tuple[list[str], list[str]]] = field(default_factory=list)

    def labels(self, variant: int) -> list[str]:
        """IPA labels of pronunciation ``variant`` (1 = the transcript's own)."""
        return self.phones if variant <= 1 else self.variants[variant - 2][1]


# Syllabic consonants: an unstressed vowel before a final /m n l/ is often not said at all
# ("button" [bʌtn̩], "pass him" [pæsm̩], "and" [n̩d]); offering the decoder the vowel-less
# pronunciation as well keeps the nasal from being pushed late when the vowel is missing.
_REDUCED_VOWELS = ("AH0", "IH0")
_SYLLABIC = ("M", "N", "L")
_VOWEL_ARPA = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}


def syllabic_variants(pron: list[str]) -> list[list[str]]:
    """Pronunciations (ARPAbet with stress) with one reduced vowel before a final syllabic consonant dropped.

    The vowel must be AH0/IH0 and be followed by M, N or L with only
    consonants after it, and not follow another vowel.

    >>> syllabic_variants(["HH", "IH1", "M"]), syllabic_variants(["IH0", "M"])
    ([], [['M']])
    >>> syllabic_variants(["B", "AH1", "T", "AH0", "N", "Z"])
    [['B', 'AH1', 'T', 'N', 'Z']]
    """
    out = []
    for i, ph in enumerate(pron[:-1]):
        if ph not in _REDUCED_VOWELS or pron[i + 1] not in _SYLLABIC:
            continue
        if i > 0 and pron[i - 1].rstrip("012") in _VOWEL_ARPA:
            continue
        if any(q.rstrip("012") in _VOWEL_ARPA for q in pron[i + 2:]):
            continue
        out.append(pron[:i] + pron[i + 1:])
    return out


@dataclass
class _Chunk:
    words: list[Segment]
    phones: list[Segment]
    squeezed: float  # share of phones at the minimum duration
    score_per_frame: float
    word_phones: list[int] = field(default_factory=list)  # how many of `phones` each word has
    acoustic: bool = True  # False for an even-spread fallback


@functools.lru_cache(maxsize=2)
def _decoder(frate: int = FRATE):
    from pocketsphinx import Decoder

    settings = dict(DECODER_SETTINGS, frate=frate)
    if frate <= 100:
        settings["ds"] = 1  # at 100 frames/s every frame is scored
    return Decoder(**settings)


def _entries(words, lang: str) -> tuple[list[_Entry], list[str]]:
    """Dictionary entries for the words; warnings about phones without an English counterpart."""
    english = lang.lower().replace("_", "-") in ("en", "en-us", "english")
    out, unknown = [], set()
    for w in words:
        text, phones = _word_parts(w)
        if not phones:
            from toolkit.phonemes.g2p import words_to_phonemes

            sub = words_to_phonemes(text, lang)
            phones = [p for x in sub for p in x.phones]
            arpa_given = [a for x in sub for a in x.arpabet]
        else:
            arpa_given = list(getattr(w, "arpabet", []) or [])
        if not phones:
            continue
        variants = []
        if english and len(arpa_given) == len(phones):
            arpa = [a.rstrip("012").upper() for a in arpa_given]
            prons = [list(arpa_given)]
            if getattr(w, "source", "") == "cmudict":
                prons += [list(v) for v in cmu.pronunciations(text.lower())]
            for v in prons + [r for q in prons for r in syllabic_variants(q)]:
                try:
                    vv = ([a.rstrip("012").upper() for a in v], arpabet_to_ipa(list(v)))
                except KeyError:
                    continue
                if vv[0] != arpa and vv not in variants:
                    variants.append(vv)
        else:
            arpa = []
            for p in phones:
                try:
                    arpa.append(ipa_to_arpabet(p))
                except KeyError:
                    unknown.add(p)
                    arpa.append("AH")
        if variants and text.replace("'", "").isalnum():
            name = "v_" + text.lower()  # own key: the variants belong to this word only
        else:
            name, variants = "p_" + "_".join(a.lower() for a in arpa), []
        out.append(_Entry(text, phones, arpa, name, variants))
    warns = []
    if unknown:
        warns.append(f"phones with no English counterpart were aligned as a neutral vowel: {' '.join(sorted(unknown))}")
    return out, warns


def _ensure_words(dec, entries: list[_Entry]) -> None:
    todo = []
    for e in {e.name: e for e in entries}.values():
        for k, arpa in enumerate([e.arpabet] + [v[0] for v in e.variants], 1):
            key = e.name if k == 1 else f"{e.name}({k})"
            if dec.lookup_word(key) is None:
                todo.append((key, " ".join(arpa)))
    for i, (key, pron) in enumerate(todo):
        dec.add_word(key, pron, i == len(todo) - 1)


def _pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def _decode(dec, pcm: bytes) -> None:
    # PocketSphinx's noise removal keeps its statistics from one utterance to the next: without
    # this reset the same audio aligns differently depending on what came before it (PocketSphinx
    # 5 calls start_stream deprecated and unnecessary; tests/test_align.py shows it is needed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        dec.start_stream()
    dec.start_utt()
    dec.process_raw(pcm, full_utt=True)
    dec.end_utt()


def _align_chunk(dec, samples: np.ndarray, entries: list[_Entry], start_s: float) -> _Chunk | None:
    """Two-pass alignment of one chunk; None when the decoder finds no path."""
    if not entries or len(samples) < SAMPLE_RATE * 0.02 * max(1, len(entries)):
        return None
    pcm = _pcm(samples)
    frate = int(dec.config["frate"])
    try:
        dec.set_align_text(" ".join(e.name for e in entries))
        _decode(dec, pcm)
        if dec.hyp() is None:
            return None
        dec.set_alignment()
        _decode(dec, pcm)
        al = dec.get_alignment()
        if al is None:
            return None
        # copy everything out while iterating: the entries die with the alignment
        raw = []
        for w in al:
            phones = [(p.name, p.start, p.duration, p.score) for p in w]
            raw.append((w.name, w.start, w.duration, phones))
    except RuntimeError:
        return None
    words_out, phones_out, word_phones = [], [], []
    k = 0
    n_min, n_ph, score, frames = 0, 0, 0, 0
    for name, ws, wd, phones in raw:
        base, _, var = name.partition("(")
        if base in _FILLERS or not base.startswith(("p_", "v_")):
            continue
        variant = int(var.rstrip(")")) if var.rstrip(")").isdigit() else 1
        if k >= len(entries) or base != entries[k].name or variant - 2 >= len(entries[k].variants) \
                or len(phones) != len(entries[k].labels(variant)):
            return None  # the decoder's path does not follow the transcript
        e = entries[k]
        t = lambda f: start_s + f / frate + frame_offset_s(frate)  # noqa: E731
        words_out.append(Segment(e.text, t(ws), t(ws + wd)))
        word_phones.append(len(phones))
        for label, (pname, ps, pd, psc) in zip(e.labels(variant), phones):
            phones_out.append(Segment(label, t(ps), t(ps + pd)))
            n_min += pd <= MIN_PHONE_FRAMES
            n_ph += 1
            score += psc
            frames += pd
        k += 1
    if k != len(entries):
        return None
    return _Chunk(words_out, phones_out, n_min / max(1, n_ph), score / max(1, frames), word_phones)


def _prefix_words(dec, samples: np.ndarray, entries: list[_Entry]) -> list[tuple[int, float, float]] | None:
    """How far into ``entries`` the speech in ``samples`` gets: (word index, start_s, end_s) of each word found."""
    n = len(entries)
    trans = [(k, k + 1, 1.0, e.name) for k, e in enumerate(entries)] + [(k, n, 1.0) for k in range(1, n)]
    try:
        fsg = dec.create_fsg("prefix", 0, n, trans)
        dec.add_fsg("prefix", fsg)
        dec.activate_search("prefix")
        _decode(dec, _pcm(samples))
        if dec.hyp() is None:
            return None
        segs = [(s.word, s.start_frame, s.end_frame) for s in dec.seg()]
    except RuntimeError:
        return None
    out, k = [], 0
    for word, a, b in segs:
        base = word.split("(")[0]
        if base in _FILLERS or not base.startswith(("p_", "v_")):
            continue
        if k >= n or base != entries[k].name:
            return None
        out.append((k, a / FRATE + FRAME_OFFSET_S, (b + 1) / FRATE + FRAME_OFFSET_S))
        k += 1
    return out


def _weight(e: _Entry) -> float:

    return sum(phone_weight(p) for p in e.phones)


def align_pocketsphinx(samples: np.ndarray, sample_rate: int, words, lang: str = "en", *,
                       source: str = "audio") -> Alignment:
    """Align words (a transcript string or `Word` list) to 16 kHz mono speech with PocketSphinx.

    Never raises for audio that does not fit the transcript: such chunks are
    spread evenly over the speech, with warnings naming ``source`` and a lower
    confidence.
    """
    if sample_rate != SAMPLE_RATE:
        from toolkit.audio import resample

        samples, sample_rate = resample(np.asarray(samples, np.float32), sample_rate, SAMPLE_RATE), SAMPLE_RATE
    samples = np.asarray(samples, dtype=np.float32)
    if isinstance(words, str):
        from toolkit.phonemes.g2p import words_to_phonemes

        words = words_to_phonemes(words, lang)
    entries, warnings = _entries(words, lang)
    duration = len(samples) / SAMPLE_RATE
    if not lang.lower().startswith("en"):
        warnings.append(f"{lang} was aligned with the English acoustic model (phones mapped to the nearest English ones)")
    if not entries:
        return Alignment([Segment("", 0.0, duration)] if duration > 0 else [], [], 0.0, "pocketsphinx",
                         warnings + [f"{source}: no words to align"])
    samples, bursts = mask_noise_bursts(samples, SAMPLE_RATE)
    if bursts:
        warnings.append(f"{source}: {len(bursts)} burst(s) of noise ({sum(b - a for a, b in bursts):.2f} s, first at "
                        f"{bursts[0][0]:.2f} s) were treated as silence")
    with _lock:
        dec = _decoder()
        _ensure_words(dec, entries)
        pieces = _align_all(dec, samples, entries, source, warnings)
    if REFINE and any(p[0].acoustic for p in pieces):
        novelty = spectral_novelty(samples, SAMPLE_RATE)
        for k, p in enumerate(pieces):
            if p[0].acoustic:
                # the silence it may take into account ends where the neighbouring chunks' phones are
                lo = next((q[0].phones[-1].end for q in reversed(pieces[:k]) if q[0].phones), 0.0)
                hi = next((q[0].phones[0].start for q in pieces[k + 1:] if q[0].phones), len(samples) / SAMPLE_RATE)
                _refine_chunk(p[0], samples, novelty, lo, hi)
    words_out = [w for p in pieces for w in p[0].words]
    phones_out = [ph for p in pieces for ph in p[0].phones]
    weights = np.array([p[1] for p in pieces], dtype=np.float64)
    confs = np.array([p[2] for p in pieces], dtype=np.float64)
    confidence = float(np.sum(weights * confs) / max(1e-9, weights.sum()))
    method = "pocketsphinx"
    if all(p[2] <= even_confidence() for p in pieces):
        method = "even"
    return Alignment(_fill_silence(phones_out, 0.0, duration), words_out, round(confidence, 3), method, warnings)


def _refine_chunk(ch: _Chunk, samples: np.ndarray, novelty, lo_s: float, hi_s: float) -> None:
    """Move the chunk's phone boundaries to nearby spectral changes (in place); words follow their phones.

    ``lo_s`` / ``hi_s``: how far the silence before and after the chunk reaches
    (the neighbouring chunks' phones, or the ends of the recording).
    """
    if not ch.phones or sum(ch.word_phones) != len(ch.phones):
        return
    # with the silence around the chunk, so its first onset and last offset can move too
    pad = EDGE_SHIFT_S + 0.01
    track = _fill_silence(ch.phones, max(lo_s, ch.phones[0].start - pad), min(hi_s, ch.phones[-1].end + pad))
    if EDGES:
        track = refine_speech_edges(track, samples, SAMPLE_RATE)
    moved = [p for p in refine_boundaries(track, samples, SAMPLE_RATE, novelty=novelty) if p.label]
    if len(moved) != len(ch.phones):
        return
    ch.phones = moved
    k = 0
    for w, n in zip(ch.words, ch.word_phones):
        if n:
            w.start, w.end = moved[k].start, moved[k + n - 1].end
        k += n


def even_confidence() -> float:

    return EVEN_CONFIDENCE


def _chunk_confidence(ch: _Chunk) -> float:
    # 1 while few phones sit at the minimum length; falls to 0.3 at the mismatch line
    return float(np.clip(1.0 - 0.7 * max(0.0, ch.squeezed - 0.15) / (SQUEEZED_MISMATCH - 0.15), 0.3, 1.0))


# A pause the decoder chose that holds this much detected speech, next to words crushed to
# this mean phone length, means the silence model swallowed the words' speech (a voice the
# acoustic model fits badly, a transcript that is slightly off).
SWALLOWED_SPEECH_S = 0.3
CRUSHED_PHONE_S = 0.035


def _respread_swallowed_speech(ch: _Chunk, samples: np.ndarray, t0: float, where: str,
                               warnings: list[str]) -> float:
    """Spread crushed words evenly over speech the decoder put into a pause (in place).

    Returns the share of the chunk's words that were spread.  A pause is only
    touched when crushed words lie right after (or before) it, so speech that
    is not in the transcript (a cough, laughter) stays a pause.
    """
    if len(ch.words) < 2 or sum(ch.word_phones) != len(ch.phones):
        return 0.0
    firsts = np.concatenate([[0], np.cumsum(ch.word_phones)]).astype(int)

    def crushed(i: int) -> bool:
        n = ch.word_phones[i]
        return n > 0 and (ch.words[i].end - ch.words[i].start) / n < CRUSHED_PHONE_S

    regions = [(a + t0, b + t0) for a, b in speech_regions(samples, SAMPLE_RATE)]

    def speech_in(a: float, b: float) -> float:
        return sum(max(0.0, min(b, r1) - max(a, r0)) for r0, r1 in regions)

    spread = np.zeros(len(ch.words), bool)
    for i in range(len(ch.words) - 1):
        gap0, gap1 = ch.words[i].end, ch.words[i + 1].start
        if gap1 - gap0 < SWALLOWED_SPEECH_S or speech_in(gap0, gap1) < SWALLOWED_SPEECH_S:
            continue
        lo, hi = i + 1, i
        while hi + 1 < len(ch.words) and crushed(hi + 1):
            hi += 1
        while lo - 1 >= 0 and crushed(lo - 1) and not spread[lo - 1]:
            lo -= 1
        if hi < lo:
            continue  # no crushed words next to it: untranscribed sound, a real pause
        span0 = gap0 if lo == i + 1 else ch.words[lo].start
        span1 = ch.words[hi].end if hi > i else gap1
        span_regions = [(max(span0, a), min(span1, b)) for a, b in regions if min(span1, b) > max(span0, a)]
        idx = range(lo, hi + 1)
        ev = even_alignment([(ch.words[k].label, [p.label for p in ch.phones[firsts[k]:firsts[k + 1]]]) for k in idx],
                            span1, span_regions or [(span0, span1)])
        new_phones = [p for p in ev.phonemes if p.label]
        if len(new_phones) != firsts[hi + 1] - firsts[lo]:
            continue
        ch.phones[firsts[lo]:firsts[hi + 1]] = new_phones
        for k, w in zip(idx, ev.words):
            ch.words[k] = w
        spread[lo:hi + 1] = True
        warnings.append(f"{where}: {speech_in(gap0, gap1):.1f} s of speech at {gap0:.1f} s was aligned as a pause and "
                        f"{hi - lo + 1} word(s) next to it were crushed ('{ch.words[lo].label}' ... "
                        f"'{ch.words[hi].label}'); they were spread evenly over the speech there")
    return float(spread.mean())


def _align_piece(dec, samples, entries, t0, t1, source, warnings) -> tuple[_Chunk, float, float]:
    """Align entries to samples[t0:t1]; (chunk, weight = words, confidence), falling back to even spreading."""
    seg = samples[int(t0 * SAMPLE_RATE): int(t1 * SAMPLE_RATE)]
    ch = _align_chunk(dec, seg, entries, t0)
    if ch is None and RETRY_FRATE != int(dec.config["frate"]):
        # another frame rate prunes and limits durations differently: often finds the path the first missed
        retry = _decoder(RETRY_FRATE)
        _ensure_words(retry, entries)
        ch = _align_chunk(retry, seg, entries, t0)
    where = f"{source} {t0:.1f}-{t1:.1f} s" if t0 > 0 or t1 < len(samples) / SAMPLE_RATE - 0.01 else source
    if ch is not None and ch.squeezed <= SQUEEZED_MISMATCH:
        conf = _chunk_confidence(ch)
        share = _respread_swallowed_speech(ch, seg, t0, where, warnings)
        return ch, len(entries), conf * (1 - share) + even_confidence() * share
    if ch is None:
        msg = f"{where}: the aligner found no path through the transcript; words spread evenly over the speech"
    else:
        msg = (f"{where}: the transcript does not seem to match the audio ({ch.squeezed:.0%} of the phones were "
               f"squeezed to the minimum length); words spread evenly over the speech")
    warnings.append(msg)
    regions = [(a + t0, b + t0) for a, b in speech_regions(seg, SAMPLE_RATE)] if len(seg) else None
    ev = even_alignment([(e.text, e.phones) for e in entries], t1, regions or [(t0, t1)])
    ev_chunk = _Chunk(ev.words, [p for p in ev.phonemes if p.label], 1.0, 0.0, [len(e.phones) for e in entries],
                      acoustic=False)
    return ev_chunk, len(entries), ev.confidence


def _align_all(dec, samples, entries, source, warnings) -> list[tuple[_Chunk, float, float]]:
    duration = len(samples) / SAMPLE_RATE
    if duration <= SINGLE_PASS_S:
        return [_align_piece(dec, samples, entries, 0.0, duration, source, warnings)]
    pieces = []
    t0, k = 0.0, 0
    while k < len(entries):
        t_end = min(duration, t0 + WINDOW_S)
        rest = entries[k:]
        if duration - t0 <= SINGLE_PASS_S:
            pieces.append(_align_piece(dec, samples, rest, t0, duration, source, warnings))
            break
        seg = samples[int(t0 * SAMPLE_RATE): int(t_end * SAMPLE_RATE)]
        # at most ~3x the words the window would hold at an average pace (keeps the grammar small)
        budget = np.cumsum([_weight(e) for e in rest])
        mean_rate = sum(_weight(e) for e in entries) / max(1e-3, sum(b - a for a, b in speech_regions(samples, SAMPLE_RATE)) or duration)
        n_try = int(min(len(rest), np.searchsorted(budget, 3.0 * mean_rate * (t_end - t0)) + 5))
        found = _prefix_words(dec, seg, rest[:n_try])
        cut, n_words = None, 0
        if found:
            # cut in the longest pause in the second half of the window, else after the last safe word
            best = None
            for (i, a, b), (_, a2, _) in zip(found[:-1], found[1:]):
                gap = a2 - b
                mid = t0 + (b + a2) / 2
                if t0 + 0.4 * WINDOW_S <= mid <= t_end - 2.0 and (best is None or gap >= best[0]):
                    best = (gap, mid, i + 1)
            if best is None:
                safe = [(t0 + b, i + 1) for i, a, b in found if t0 + b <= t_end - 2.0]
                if safe:
                    best = (0.0, safe[-1][0], safe[-1][1])
            if best is not None:
                cut, n_words = best[1], best[2]
        if cut is None:
            # no usable decoding: hand the window the words an average pace predicts, cut at a VAD pause
            regions = speech_regions(seg, SAMPLE_RATE)
            gaps = [t0 + (b + a2) / 2 for (_, b), (a2, _) in zip(regions[:-1], regions[1:])
                    if t0 + 0.4 * WINDOW_S <= t0 + (b + a2) / 2 <= t_end - 1.0]
            cut = gaps[-1] if gaps else t_end
            speech_s = sum(min(b, cut - t0) - a for a, b in regions if a < cut - t0)
            n_words = int(max(1, min(len(rest) - 1, np.searchsorted(budget, mean_rate * speech_s))))
        pieces.append(_align_piece(dec, samples, rest[:n_words], t0, cut, source, warnings))
        t0, k = cut, k + n_words
    return pieces
