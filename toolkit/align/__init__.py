"""Forced alignment: timed words and IPA phonemes for speech and its transcript.

`align` picks the method (`auto_method`: the one place that chooses, with
its reason): PocketSphinx's US-English acoustic model
(`toolkit.align.pocketsphinx`) for English, the any-language aligner
(`toolkit.align.universal`: a frame classifier of phonological features and
Viterbi over the transcript's IPA phones) for every other language and for
IPA transcripts, an external Montreal Forced Aligner (`toolkit.align.mfa`,
``method="mfa"``), or, when all else fails, `even_alignment`, which spreads
the words over the detected speech.  Praat
TextGrids are read and written by `toolkit.align.textgrid`;
`toolkit.align.refine` masks noise bursts before decoding and moves phone
boundaries to nearby spectral changes after it.

An `Alignment` never hides trouble: ``confidence`` (0..1) drops and
``warnings`` say why when words had to be squeezed, guessed or spread evenly.

Example
-------
>>> import numpy as np
>>> al = even_alignment(["hello", "world"], 1.0, speech_regions=[(0.2, 0.8)])
>>> [(w.label, round(w.start, 2), round(w.end, 2)) for w in al.words]
[('hello', 0.2, 0.5), ('world', 0.5, 0.8)]
>>> al.method, al.confidence < 0.5
('even', True)
"""
from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import numpy as np

from toolkit.animation import Segment
from toolkit.phonemes.inventory import base_symbol, is_vowel

__all__ = ["Alignment", "align", "auto_method", "even_alignment", "speech_regions", "phone_weight", "METHODS"]

METHODS = ("auto", "pocketsphinx", "universal", "mfa", "even")

# Confidence given to an alignment that only spreads words evenly over speech.
EVEN_CONFIDENCE = 0.15


@dataclass
class Alignment:
    """Timed phonemes (IPA labels, "" = silence) and words, with how sure we are of them.

    ``confidence`` is 0..1: 1 = every word aligned acoustically with plausible
    durations; below ~0.5 the timing is partly guessed (see ``warnings``).
    ``method`` names what produced it: "pocketsphinx", "textgrid", "mfa",
    "espeak", "even".
    """

    phonemes: list[Segment]
    words: list[Segment]
    confidence: float
    method: str
    warnings: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        ends = [s.end for s in self.phonemes] + [s.end for s in self.words]
        return max(ends) if ends else 0.0

    def speech_phonemes(self) -> list[Segment]:
        """The phonemes without silences."""
        return [p for p in self.phonemes if p.label not in ("", "sil", "sp", "spn")]


def _word_parts(word) -> tuple[str, list[str]]:
    """(text, IPA phones) of a `toolkit.phonemes.g2p.Word`, a (text, phones) pair or a plain string."""
    if isinstance(word, str):
        return word, []
    if isinstance(word, tuple):
        return str(word[0]), list(word[1])
    return str(word.text), list(getattr(word, "phones", []) or [])


def align(samples: np.ndarray, sample_rate: int, words, lang: str = "en", *, method: str = "auto",
          source: str = "audio") -> Alignment:
    """Align a transcript to speech.

    samples: mono float32 audio; sample_rate: its rate (resampled to 16 kHz
    when different); words: a transcript string, or the `Word` list of
    `toolkit.phonemes.g2p.words_to_phonemes` / `words_from_ipa`; source: the
    file name used in warnings.  ``method="auto"``: see `auto_method`.

    >>> import numpy as np
    >>> al = align(np.zeros(16000, np.float32), 16000, "hello")  # doctest: +SKIP
    """
    if method not in METHODS:
        raise ValueError(f"unknown alignment method {method!r}; choose one of {', '.join(METHODS)}")
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"{source}: expected mono samples, got shape {samples.shape}")
    if sample_rate != 16000:
        from toolkit.audio import resample

        samples = resample(samples, sample_rate, 16000)
        sample_rate = 16000
    if isinstance(words, str):
        from toolkit.phonemes.g2p import words_to_phonemes

        words = words_to_phonemes(words, lang=lang)
    words = list(words)
    if method == "even":
        return even_alignment(words, len(samples) / sample_rate, samples=samples, sample_rate=sample_rate)
    if method == "mfa":
        from toolkit.align.mfa import align_mfa

        return align_mfa(samples, sample_rate, [_word_parts(w)[0] for w in words])
    if method == "auto":
        method = auto_method(lang, words)
    if method == "universal":
        from toolkit.align.universal import align_universal

        return align_universal(samples, sample_rate, words, source=source)
    from toolkit.align.pocketsphinx import align_pocketsphinx

    return align_pocketsphinx(samples, sample_rate, words, lang=lang, source=source)


# -- which aligner ------------------------------------------------------------------------

# The choice of `method="auto"`, and why (measured in the same run by bench/bench_multilingual.py,
# which also scores both on TIMIT; figures in README "Languages and IPA"):
# * English text: PocketSphinx.  Its US-English acoustic model with the CMU dictionary's pronunciation
#   variants, 200 frames/s and boundary refinement places TIMIT's boundaries better than the universal
#   aligner (14.2 ms mean error, 78 % within 20 ms).
# * Every other language, and IPA transcripts (any language): the universal aligner.  On hand-corrected
#   words in 15 languages it never heard it is better than PocketSphinx with each phone mapped to its
#   nearest English one, in every language.
POCKETSPHINX_LANGS = ("en", "en-us", "english", "en_us")


def auto_method(lang: str, words) -> str:
    """The aligner `align` uses for ``method="auto"``: "pocketsphinx" or "universal" (reasons above)."""
    if words and all(getattr(w, "source", "") == "ipa" for w in words):  # an IPA transcript: no language
        return "universal"
    return "pocketsphinx" if str(lang).strip().lower() in POCKETSPHINX_LANGS else "universal"


# -- energy VAD ---------------------------------------------------------------------

def frame_energy_db(samples: np.ndarray, sample_rate: int, hop_s: float = 0.01, win_s: float = 0.025) -> np.ndarray:
    """Short-time energy in dB (one value per hop; frame i centred at i*hop_s + win_s/2)."""
    hop = max(1, int(round(hop_s * sample_rate)))
    win = max(hop, int(round(win_s * sample_rate)))
    x = np.asarray(samples, dtype=np.float64)
    if len(x) < win:
        x = np.pad(x, (0, win - len(x)))
    n = 1 + (len(x) - win) // hop
    csum = np.concatenate([[0.0], np.cumsum(x * x)])
    starts = np.arange(n) * hop
    energy = (csum[starts + win] - csum[starts]) / win
    return 10.0 * np.log10(energy + 1e-10)


def speech_regions(samples: np.ndarray, sample_rate: int, *, min_pause_s: float = 0.15,
                   min_speech_s: float = 0.05) -> list[tuple[float, float]]:
    """Spans (start_s, end_s) of speech found by an adaptive energy threshold.

    The threshold sits between the noise floor (10th percentile of frame
    energy) and the speech level (95th percentile), so it adapts to quiet and
    noisy recordings; pauses shorter than ``min_pause_s`` are bridged.

    >>> import numpy as np
    >>> x = np.zeros(16000, np.float32); x[4000:12000] = 0.1 * np.sin(np.arange(8000) * 0.3)
    >>> [(round(a, 2), round(b, 2)) for a, b in speech_regions(x, 16000)]
    [(0.24, 0.76)]
    """
    hop_s, win_s = 0.01, 0.025
    db = frame_energy_db(samples, sample_rate, hop_s, win_s)
    if db.size == 0:
        return []
    floor, peak = np.percentile(db, 10), np.percentile(db, 95)
    if peak - floor < 6.0:  # no contrast: all speech or all silence
        return [(0.0, len(samples) / sample_rate)] if peak > -60 else []
    thr = floor + 0.3 * (peak - floor)
    active = db > thr
    regions: list[list[float]] = []
    for i in np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])) != 0).reshape(-1, 2):
        a, b = i[0] * hop_s + win_s / 2 - hop_s / 2, i[1] * hop_s + win_s / 2 - hop_s / 2
        if regions and a - regions[-1][1] < min_pause_s:
            regions[-1][1] = b
        else:
            regions.append([a, b])
    dur = len(samples) / sample_rate
    return [(float(max(0.0, a)), float(min(dur, b))) for a, b in regions if b - a >= min_speech_s]


_detect_speech = speech_regions  # even_alignment has a parameter of the same name


# -- even spreading (the fallback) -----------------------------------------------------

def phone_weight(phone: str) -> float:
    """Typical relative duration of a phone: vowels long, diphthongs longer, stops and glides short."""
    b = base_symbol(phone)
    if not b:
        return 1.0
    if is_vowel(phone):
        long = "ː" in phone or len(b) > 1
        return 1.6 if long else 1.2
    if b[0] in "szʃʒfvθðxçɕʑʂʐhχ" or b in ("tʃ", "dʒ", "ts", "dz"):
        return 1.0
    if b[0] in "mnŋɲlɹrɾʎɫ":
        return 0.8
    return 0.7  # stops, glides, taps


def even_alignment(words, duration_s: float, speech_regions: list[tuple[float, float]] | None = None, *,
                   samples: np.ndarray | None = None, sample_rate: int = 16000, start_s: float = 0.0,
                   warning: str | None = None) -> Alignment:
    """Spread words over the speech regions, phones within words by typical duration.

    The last resort when acoustic alignment fails: words are laid end to end
    over the detected speech (energy VAD on ``samples`` when no regions are
    given, the whole span otherwise), each taking time in proportion to the
    summed typical durations (`phone_weight`) of its phones.  Confidence is low
    (`EVEN_CONFIDENCE`) and a warning says the timing is approximate.

    words: `Word` objects, (text, phones) pairs or strings (a string gets
    letter-count-based phones-free timing).  Times are offset by ``start_s``.
    """
    parts = [_word_parts(w) for w in words]
    if speech_regions is None:
        if samples is not None and len(samples):
            speech_regions = _detect_speech(samples, sample_rate)
        if not speech_regions:
            speech_regions = [(0.0, duration_s)]
    regions = [(max(0.0, a), min(duration_s, b)) for a, b in speech_regions if min(duration_s, b) > max(0.0, a)]
    if not regions:
        regions = [(0.0, duration_s)]
    weights = [sum(phone_weight(p) for p in ph) if ph else 0.25 * max(1, len(t)) for t, ph in parts]
    total_w = sum(weights) or 1.0
    total_speech = sum(b - a for a, b in regions)

    # each word goes to the region its midpoint falls in on a cumulative "speech clock",
    # then each region's words share that region by weight: no word straddles a pause
    edges = np.cumsum([0.0] + [b - a for a, b in regions])
    mids = (np.cumsum(weights) - 0.5 * np.array(weights)) / total_w * total_speech
    region_of = np.clip(np.searchsorted(edges, mids, side="right") - 1, 0, len(regions) - 1)
    word_segs: list[Segment] = []
    phone_segs: list[Segment] = []
    for k, (r0, r1) in enumerate(regions):
        idx = np.flatnonzero(region_of == k)
        if idx.size == 0:
            continue
        wsum = sum(weights[i] for i in idx)
        t = r0
        for i in idx:
            text, phones = parts[i]
            span = (r1 - r0) * weights[i] / wsum
            word_segs.append(Segment(text, float(start_s + t), float(start_s + t + span)))
            if phones:
                pw = np.array([phone_weight(p) for p in phones])
                cuts = t + span * np.concatenate([[0.0], np.cumsum(pw) / pw.sum()])
                for p, c0, c1 in zip(phones, cuts[:-1], cuts[1:]):
                    phone_segs.append(Segment(p, float(start_s + c0), float(start_s + c1)))
            t += span
    phone_segs = _fill_silence(phone_segs, start_s, start_s + duration_s)
    msg = warning or "timing is approximate: words were spread evenly over the detected speech"
    return Alignment(phone_segs, word_segs, EVEN_CONFIDENCE, "even", [msg])


def _fill_silence(phones: list[Segment], start_s: float, end_s: float, min_gap_s: float = 0.001) -> list[Segment]:
    """Insert "" segments into the gaps so the phoneme track covers [start_s, end_s]."""
    out: list[Segment] = []
    t = start_s
    for p in sorted(phones, key=lambda s: s.start):
        if p.start - t > min_gap_s:
            out.append(Segment("", t, p.start))
        out.append(p)
        t = max(t, p.end)
    if end_s - t > min_gap_s:
        out.append(Segment("", t, end_s))
    return out


class _CallableModule(types.ModuleType):
    """Lets ``toolkit.align(audio, text)`` be the public one-call API (`toolkit.pipeline.align`:
    a file or array and its transcript in, an `Alignment` out) while ``toolkit.align`` stays this
    package; its own `align` above works on 16 kHz samples and phoneme lists."""

    def __call__(self, *args, **kwargs):
        from toolkit.pipeline import align as align_speech

        return align_speech(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
