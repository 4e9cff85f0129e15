"""Timing without acoustics: speech found by its loudness, words spread evenly over it.

The last resort when acoustic alignment fails, and the energy voice-activity detection
the aligners use to find pauses.

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

import numpy as np

from toolkit.alignment.result import EVEN_CONFIDENCE, Alignment, _word_parts
from toolkit.animation import Segment
from toolkit.phonemes.inventory import base_symbol, is_vowel


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


SPEECH_LEVEL = 0.3  # speech is louder than this share of the way (dB) from the floor to the speech level


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
    thr = floor + SPEECH_LEVEL * (peak - floor)
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
