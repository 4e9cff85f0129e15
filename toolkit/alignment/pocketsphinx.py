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

Long recordings (a `toolkit.recording.Recording` of any length) are aligned
chunk by chunk, read one at a time: a chunk ends at a pause 2-8 s on
(`CHUNK_S`), and its word pass uses a grammar that accepts any first words of
the rest of the transcript (starting up to `RESYNC_WORDS` early or late), so it
finds how far the speech there gets; after trouble that reach widens, so a
chunk that lost its place finds it again.  Each chunk is then treated as a short
recording is.  Time grows
linearly with the length and memory stays flat (see "long recordings" below).

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

import bisect
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
# Beams: 1e-80 aligns TIMIT dev (clean, and with noise bursts) exactly as 1e-120 did, with 7 % less CPU;
# 1e-60 starts to lose words in the noise (bench/bench_align.py).
DECODER_SETTINGS = dict(lm=None, beam=1e-80, wbeam=1e-60, pbeam=1e-80, bestpath=False,
                        frate=FRATE, ds=2, topn=5, loglevel="FATAL")
# The retry at RETRY_FRATE is the last try before even spreading and runs only where the first
# pass failed: it keeps the wider beams (at 1e-80 it misses the path of fast espeak-ng speech that
# 1e-100 finds, tests/test_align.py).
RETRY_BEAMS = dict(beam=1e-120, wbeam=1e-100, pbeam=1e-120)
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
    first: int = 0  # index of its first word in the entries it was aligned against


@functools.lru_cache(maxsize=2)
def _decoder(frate: int = FRATE):
    """The decoder short recordings share (loading the model costs ~0.1 s: once per process)."""
    return _new_decoder(frate)


def _new_decoder(frate: int = FRATE):
    """A decoder of its own.  A long recording gets one: PocketSphinx's Gaussian scoring starts each
    utterance from the best Gaussians of the last one it scored (and keeps those of codebooks idle
    since), so a shared decoder aligns the same hour slightly differently after other audio; hundreds
    of chunks in a row let such a difference move a word by a chunk (tests/test_align.py saw 0.8 s
    after other tests).  Its ~0.1 s is nothing beside an hour's alignment."""
    from pocketsphinx import Decoder

    settings = dict(DECODER_SETTINGS, frate=frate)
    if frate <= 100:
        settings["ds"] = 1  # at 100 frames/s every frame is scored
        settings.update(RETRY_BEAMS)
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


def _align_chunk(dec, samples: np.ndarray, entries: list[_Entry], start_s: float, open_end: bool = False,
                 starts: int = 0, expected: int = 0) -> _Chunk | None:
    """Two-pass alignment of one chunk; None when the decoder finds no path.

    ``open_end``: the chunk holds some first words of ``entries``, not necessarily all (it ends
    at a pause), and the word pass finds how many; ``starts``: it may start at any of the first
    ``starts`` + 1 words (the chunk before may have taken too few or too many; ``expected`` is
    where it should start).  See `_grammar`; the chunk's ``first`` says where it started."""
    if not entries or len(samples) < SAMPLE_RATE * 0.02 * (1 if open_end else max(1, len(entries) - starts)):
        return None
    pcm = _pcm(samples)
    frate = int(dec.config["frate"])
    try:
        if open_end or starts:
            _grammar(dec, entries, open_end, starts)
        else:
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
            base, _, var = w.name.partition("(")
            if base in _FILLERS or not base.startswith(("p_", "v_")):
                continue
            phones = [(p.name, p.start, p.duration, p.score) for p in w]
            raw.append((base, int(var.rstrip(")")) if var.rstrip(")").isdigit() else 1, w.start, w.duration, phones))
    except RuntimeError:
        return None

    def follows(first: int) -> bool:  # the decoder's path is the transcript's words from ``first`` on
        return first + len(raw) <= len(entries) and (open_end or first + len(raw) == len(entries)) and all(
            base == e.name and variant - 2 < len(e.variants) and len(phones) == len(e.labels(variant))
            for (base, variant, _, _, phones), e in zip(raw, entries[first:]))

    first = min((f for f in range(min(starts, len(entries) - 1) + 1) if follows(f)), key=lambda f: abs(f - expected),
                default=None)
    if not raw or first is None:
        return None
    words_out, phones_out, word_phones = [], [], []
    n_min, n_ph, score, frames = 0, 0, 0, 0
    t = lambda f: start_s + f / frate + frame_offset_s(frate)  # noqa: E731
    for (base, variant, ws, wd, phones), e in zip(raw, entries[first:]):
        words_out.append(Segment(e.text, t(ws), t(ws + wd)))
        word_phones.append(len(phones))
        for label, (pname, ps, pd, psc) in zip(e.labels(variant), phones):
            phones_out.append(Segment(label, t(ps), t(ps + pd)))
            n_min += pd <= MIN_PHONE_FRAMES
            n_ph += 1
            score += psc
            frames += pd
    return _Chunk(words_out, phones_out, n_min / max(1, n_ph), score / max(1, frames), word_phones, first=first)


def _grammar(dec, entries: list[_Entry], open_end: bool, starts: int) -> None:
    """Activate a grammar for the words of ``entries`` in order, starting at any of the first
    ``starts`` + 1 of them and ending at the last one (``open_end``: at any of them).

    Starts and ends are arcs of their own (the start goes straight to word k, each word straight
    to the end), never empty (null) transitions: `Decoder.set_alignment` refuses to align those
    phone by phone.  Fillers and silences may come between words, as in `set_align_text`."""
    n = len(entries)
    trans = [(k, k + 1, 1.0, e.name) for k, e in enumerate(entries)]
    if open_end:
        trans += [(k, n, 1.0, e.name) for k, e in enumerate(entries[:-1])]
    for k, e in enumerate(entries[1:starts + 1], 1):  # start at word k: straight on, or (open end) to the end
        trans += [(0, k + 1, 1.0, e.name)] + ([(0, n, 1.0, e.name)] if open_end and k < n - 1 else [])
    fsg = dec.create_fsg("chunk", 0, n, trans)
    dec.add_fsg("chunk", fsg)
    dec.activate_search("chunk")


def _weight(e: _Entry) -> float:
    return sum(phone_weight(p) for p in e.phones)


def align_pocketsphinx(samples, sample_rate: int, words, lang: str = "en", *,
                       source: str = "audio") -> Alignment:
    """Align words (a transcript string or `Word` list) to 16 kHz mono speech with PocketSphinx.

    ``samples``: an array at ``sample_rate``, or a `toolkit.recording.Recording` of any length
    (read chunk by chunk).  Never raises for audio that does not fit the transcript: such chunks
    are spread evenly over the speech, with warnings naming ``source`` and a lower confidence.
    """
    from toolkit.recording import Recording

    if isinstance(samples, Recording):
        rec = samples
    else:
        samples = np.asarray(samples, dtype=np.float32)
        if sample_rate != SAMPLE_RATE:
            from toolkit.audio import resample

            samples = resample(samples, sample_rate, SAMPLE_RATE)
        rec = Recording.from_array(samples, source)
    if isinstance(words, str):
        from toolkit.phonemes.g2p import words_to_phonemes

        words = words_to_phonemes(words, lang)
    entries, warnings = _entries(words, lang)
    duration = rec.duration_s
    if not lang.lower().startswith("en"):
        warnings.append(f"{lang} was aligned with the English acoustic model (phones mapped to the nearest English ones)")
    if not entries:
        return Alignment([Segment("", 0.0, duration)] if duration > 0 else [], [], 0.0, "pocketsphinx",
                         warnings + [f"{source}: no words to align"])
    bursts: list[tuple[float, float]] = []
    with _lock:
        dec = _decoder() if duration <= SINGLE_PASS_S else _new_decoder()
        _ensure_words(dec, entries)
        pieces = _align_all(dec, rec, entries, source, warnings, bursts)
    if bursts:
        warnings.append(f"{source}: {len(bursts)} burst(s) of noise ({sum(b - a for a, b in bursts):.2f} s, first at "
                        f"{bursts[0][0]:.2f} s) were treated as silence")
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


def _align_piece(dec, seg, entries, t0, t1, source, warnings, whole: bool = False, open_end: bool = False,
                 starts: int = 0, expected: int = 0, paced: int = 1) -> tuple[_Chunk, float, float]:
    """Align entries to ``seg`` (the audio from t0 to t1 s); (chunk, weight = words, confidence),
    falling back to even spreading.  ``open_end``, ``starts``, ``expected``: as for `_align_chunk`;
    ``paced``: how many words an average pace puts in an open-ended chunk (what a failed one
    spreads: the count of a decoding that failed is no better than its timing); ``whole``: the
    chunk is the whole recording (warnings name no times)."""
    ch = _align_chunk(dec, seg, entries, t0, open_end, starts, expected)
    if ch is None and RETRY_FRATE != int(dec.config["frate"]):
        # another frame rate prunes and limits durations differently: often finds the path the first missed
        retry = _decoder(RETRY_FRATE)
        _ensure_words(retry, entries)
        ch = _align_chunk(retry, seg, entries, t0, open_end, starts, expected)
    where = source if whole else f"{source} {t0:.1f}-{t1:.1f} s"
    if ch is not None and ch.squeezed <= SQUEEZED_MISMATCH:
        conf = _chunk_confidence(ch)
        share = _respread_swallowed_speech(ch, seg, t0, where, warnings)
        return ch, len(ch.words), conf * (1 - share) + even_confidence() * share
    if ch is None:
        msg = f"{where}: the aligner found no path through the transcript; words spread evenly over the speech"
    else:
        msg = (f"{where}: the transcript does not seem to match the audio ({ch.squeezed:.0%} of the phones were "
               f"squeezed to the minimum length); words spread evenly over the speech")
    warnings.append(msg)
    first = expected
    entries = entries[first:first + max(1, paced)] if open_end else entries[first:]
    regions = [(a + t0, b + t0) for a, b in speech_regions(seg, SAMPLE_RATE)] if len(seg) else None
    ev = even_alignment([(e.text, e.phones) for e in entries], t1, regions or [(t0, t1)])
    ev_chunk = _Chunk(ev.words, [p for p in ev.phonemes if p.label], 1.0, 0.0, [len(e.phones) for e in entries],
                      acoustic=False, first=first)
    return ev_chunk, len(entries), ev.confidence


# -- long recordings ------------------------------------------------------------------------------
# A recording longer than SINGLE_PASS_S is aligned chunk by chunk, each chunk read from the
# `Recording` on its own, so time grows linearly and memory stays flat with the length: a chunk
# ends in the longest pause the energy VAD finds CHUNK_S into the rest of the audio, and its word
# pass uses a grammar that accepts any first words of the rest of the transcript (`_grammar`):
# it finds how far the speech gets, and its hypothesis is what the phone pass aligns.  Two
# decoding passes per stretch of audio, as for a short file, and each chunk is noise-masked and
# refined as a short file is, so a sentence inside an hour-long file is aligned as on its own.
CHUNK_S = (2.0, 8.0)
# Why 2-8 s: the phone pass's cost per second grows with the chunk (PocketSphinx's state alignment
# keeps scoring every senone it has activated since the chunk began: 15 ms of CPU per second of
# audio at 4.5 s, 17 at 9 s, 19 at 18 s); shorter chunks have fewer pauses to choose from.  From
# 2 s on, the pause after a short sentence can be the cut (the longest pause wins), rather than a
# short pause inside the next sentence (tests/test_align.py, long recording: a word 0.8 s off with
# 3-8 s).  On the bench's 8 minutes, 2-8 s (against 4-12 s) put more words in their sentence
# (0.970 against 0.941) with 8 % less CPU; TIMIT laid end to end: MAE 0.26 ms above the pieces'.
MIN_CUT_PAUSE_S = 0.25  # a pause the VAD finds must be this long to cut in (stop closures are shorter)
# A grammar that may end anywhere sometimes lets a chunk take the next sentence's first words, or
# stop a few words early; the next chunk may start up to this many words before or after where the
# last one stopped (the words it takes again, or leaves behind, move to the chunks before).  Without
# this, a chunk that starts off its audio drifts further off: it must squeeze words it cannot find.
RESYNC_WORDS = 4
# Trouble (a chunk that failed, squeezed more than TROUBLE_SQUEEZED of its phones, or had to
# resync) means the transcript position may be off by more than that: each troubled chunk in a
# row doubles the reach of the next one's start, up to MAX_RESYNC_WORDS, so a file whose text got
# ahead of (or behind) its audio finds its place again instead of staying lost.  Measured on an
# hour of real speech and espeak-ng with many repeated phrases: a fixed reach of 10 lost its place
# for good after 35 minutes; a look-ahead pass over 24 s windows (the plan before) stayed lost
# as well, at 1.5x the CPU.  A reach of 4 while all goes well offers fewer wrong starts among
# repeated phrases than 10 did (and fewer start arcs to decode); trouble widens it at once.
TROUBLE_SQUEEZED = 0.25
MAX_RESYNC_WORDS = 80
PAD_S = 0.3  # audio read beyond each end of a chunk: noise masking and edge refinement see its context
# The decoder needs only some silence around a chunk's speech: a longer pause at its edges (the
# chunk ends in the middle of the longest pause) is left out of both passes, beyond this much.
EDGE_SILENCE_S = 0.25
VAD_BLOCK_S = 60.0  # the energy VAD adapts its threshold per block this long


def _speech_regions(rec) -> list[tuple[float, float]]:
    """`speech_regions` of a recording, VAD_BLOCK_S at a time (the threshold adapts per block)."""
    regions: list[tuple[float, float]] = []
    for a, _, x in rec.blocks(VAD_BLOCK_S):
        t0 = a / SAMPLE_RATE
        for r0, r1 in speech_regions(x, SAMPLE_RATE):
            if regions and t0 + r0 - regions[-1][1] < 0.15:  # a region running over the block edge
                regions[-1] = (regions[-1][0], t0 + r1)
            else:
                regions.append((t0 + r0, t0 + r1))
    return regions


def _pick_cut(pauses: list[tuple[float, float]], t0: float, duration: float) -> float | None:
    """Where the chunk starting at t0 ends: the middle of the longest pause CHUNK_S into the rest
    (else the longest within SINGLE_PASS_S); None when there is none.  ``pauses`` are sorted."""
    lo_i = bisect.bisect_left(pauses, (t0, t0))  # pauses before t0 cannot hold the cut
    for lo, hi in (CHUNK_S, (2.0, SINGLE_PASS_S)):
        cands = []
        for a, b in pauses[max(0, lo_i - 1):]:
            if (a + b) / 2 > min(t0 + hi, duration - 1.0):
                break
            if (a + b) / 2 >= t0 + lo:
                cands.append((b - a, (a + b) / 2))
        if cands:
            return max(cands)[1]
    return None


def _speech_between(regions, starts, t0: float, t1: float) -> tuple[float, float | None, float | None]:
    """(seconds of speech, first speech start, last speech end) between t0 and t1 (None: no speech there)."""
    i = max(0, bisect.bisect_right(starts, t0) - 1)
    total, first, last = 0.0, None, None
    for r0, r1 in regions[i:]:
        if r0 >= t1:
            break
        a, b = max(t0, r0), min(t1, r1)
        if b > a:
            total += b - a
            first = a if first is None else first
            last = b
    return total, first, last


def _align_all(dec, rec, entries, source, warnings, bursts) -> list[tuple[_Chunk, float, float]]:
    """Every chunk aligned and refined: (chunk, weight, confidence) in order."""
    from toolkit import progress

    duration = rec.duration_s
    regions = _speech_regions(rec) if duration > SINGLE_PASS_S else []
    starts = [r0 for r0, _ in regions]
    pauses = [(b, a2) for (_, b), (a2, _) in zip(regions[:-1], regions[1:]) if a2 - b >= MIN_CUT_PAUSE_S]
    budget = np.cumsum([_weight(e) for e in entries])  # phone weight up to each word
    mean_rate = budget[-1] / max(1e-3, sum(b - a for a, b in regions) or duration)  # per second of speech
    pieces: list[tuple[_Chunk, float, float]] = []
    pending = None  # the last chunk and its audio: refined once the next chunk's first phone is known
    reach = RESYNC_WORDS  # how far the next chunk's start may move (doubles after each troubled chunk)
    t0, k, said = 0.0, 0, 0  # said: words in the pieces so far (a chunk may give some of them back)
    while k < len(entries) and t0 < duration - 1e-6:
        whole = t0 == 0 and duration <= SINGLE_PASS_S
        done = budget[k - 1] if k else 0.0
        if whole or duration - t0 <= CHUNK_S[1]:
            cut, n_words, open_end = duration, len(entries) - k, False
        else:
            cut = _pick_cut(pauses, t0, duration) or min(duration, t0 + SINGLE_PASS_S)
            # at most ~3x the words the chunk would hold at an average pace (keeps the grammar small)
            n_words = int(np.searchsorted(budget, done + 3.0 * mean_rate * (cut - t0))) - k + 5
            open_end = cut < duration
        speech, first, last = _speech_between(regions, starts, t0, cut)
        # the audio decoded: the chunk less the pause beyond EDGE_SILENCE_S at each end
        s0 = t0 if first is None or whole else max(t0, first - EDGE_SILENCE_S)
        s1 = cut if last is None or whole else min(cut, last + EDGE_SILENCE_S)
        a = max(0.0, s0 - PAD_S)
        x, found = mask_noise_bursts(rec.read(int(a * SAMPLE_RATE), int(min(duration, s1 + PAD_S) * SAMPLE_RATE)),
                                     SAMPLE_RATE)
        bursts += [(a + b0, a + b1) for b0, b1 in found]
        seg = x[int(round((s0 - a) * SAMPLE_RATE)): int(round((s1 - a) * SAMPLE_RATE))]
        # an open-ended chunk may start up to `reach` words before or after where the last one stopped
        back = min(reach, said) if pieces and open_end else 0
        ahead = min(reach, len(entries) - k - 1) if pieces and open_end else 0
        paced = int(np.searchsorted(budget, done + mean_rate * (speech or cut - t0))) - k
        piece = _align_piece(dec, seg, entries[k - back:k + ahead + n_words], s0, s1, source, warnings, whole=whole,
                             open_end=open_end, starts=back + ahead, expected=back, paced=paced)
        moved = piece[0].first - back
        if moved < 0:  # the chunks before took words said here
            _drop_last_words(pieces, -moved)
        elif moved > 0:  # the chunk before left words said in it
            _add_last_words(pieces, entries[k:k + moved], x, a, piece[0])
        if pending is not None:
            _refine_pending(pending, pieces, piece[0], duration)
        pending = (piece[0], x, a)
        pieces.append(piece)
        progress.advance("align", cut - t0)
        t0, k = cut, k + moved + len(piece[0].words)
        said += moved + len(piece[0].words)
        trouble = not piece[0].acoustic or piece[0].squeezed > TROUBLE_SQUEEZED or abs(moved) > 1
        reach = min(MAX_RESYNC_WORDS, 2 * reach) if trouble else RESYNC_WORDS
    if pending is not None:
        _refine_pending(pending, pieces, None, duration)
    return pieces


def _drop_last_words(pieces, n: int) -> None:
    """The last chunks give their last ``n`` words to the next one (which found them in its audio)."""
    for i in range(len(pieces) - 1, -1, -1):
        if n <= 0:
            return
        ch, _, conf = pieces[i]
        keep = max(0, len(ch.words) - n)
        n -= len(ch.words) - keep
        n_phones = sum(ch.word_phones[:keep])
        ch.words, ch.phones, ch.word_phones = ch.words[:keep], ch.phones[:n_phones], ch.word_phones[:keep]
        pieces[i] = (ch, keep, conf)


def _add_last_words(pieces, words: list[_Entry], x: np.ndarray, a: float, following: _Chunk) -> None:
    """The last chunk gets ``words`` it left for the next one, which found them not said there: they
    are spread over the speech between its last phone and the next chunk's first word."""
    ch, _, conf = pieces[-1]
    t_from = ch.phones[-1].end if ch.phones else (ch.words[-1].end if ch.words else a)
    t_to = following.words[0].start if following.words else t_from
    if t_to - t_from < 0.02 * len(words):
        t_to = t_from + 0.02 * len(words)
    ev = even_alignment([(e.text, e.phones) for e in words], t_to, [(t_from, t_to)])
    ch.words = ch.words + ev.words
    ch.phones = ch.phones + [p for p in ev.phonemes if p.label]
    ch.word_phones = ch.word_phones + [len(e.phones) for e in words]
    pieces[-1] = (ch, len(ch.words), conf * (len(ch.words) - len(words)) / len(ch.words)
                  + even_confidence() * len(words) / len(ch.words))


def _refine_pending(pending, pieces, following: _Chunk | None, duration: float) -> None:
    """Refine the boundaries of a chunk (in place) with the audio read around it; the silence it may
    take in ends where the chunks before and after it have phones."""
    ch, x, a = pending
    if not (REFINE and ch.acoustic and ch.phones):
        return
    lo = next((q[0].phones[-1].end for q in reversed(pieces[:-1]) if q[0].phones and q[0] is not ch), 0.0)
    hi = following.phones[0].start if following is not None and following.phones else duration
    shift = lambda segs, d: [Segment(p.label, p.start + d, p.end + d) for p in segs]  # noqa: E731
    local = _Chunk(shift(ch.words, -a), shift(ch.phones, -a), ch.squeezed, ch.score_per_frame, ch.word_phones)
    _refine_chunk(local, x, spectral_novelty(x, SAMPLE_RATE), lo - a, hi - a)
    ch.phones, ch.words = shift(local.phones, a), shift(local.words, a)
