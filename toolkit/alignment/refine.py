"""Phone-boundary refinement and noise-burst cleanup around the PocketSphinx aligner.

The HMM aligner's boundaries are placed by a 3-state model on 25 ms MFCC
frames; the true change in the sound is usually within a few milliseconds of
them.  `refine_boundaries` moves each boundary, by at most
``max_shift_s``, to the strongest nearby spectral change (`spectral_novelty`:
the distance between the mean log-mel spectra just before and just after each
instant, 2.5 ms apart), pulled back towards the aligner's time by a quadratic
penalty so a boundary inside a steady sound stays put.

`refine_speech_edges` moves the edges between silence and speech, by at
most ``EDGE_SHIFT_S``, to where the loudness crosses `EDGE_RATIO` of the way
from the recording's noise floor to the sound's own level: HMM silence
models absorb quiet onsets and release tails unevenly, while a loudness
threshold places them where the sound starts and stops.

`mask_noise_bursts` finds stretches of corrupt audio (full-scale digital
noise, clipping: very loud and spectrally flat) and replaces them by quiet
noise before decoding, so the decoder does not anchor phones on them.

Settings were chosen on espeak-ng speech with exact phone times and on real
speech with Montreal Forced Aligner references; TIMIT is only measured
(``bench/bench_align.py``).

Example
-------
>>> import numpy as np
>>> from toolkit.animation import Segment
>>> x = np.zeros(16000, np.float32); x[4000:12000] = 0.3 * np.sin(np.arange(8000) * 0.9)  # a tone 0.25-0.75 s
>>> out = refine_boundaries([Segment("", 0.0, 0.27), Segment("a", 0.27, 0.74), Segment("", 0.74, 1.0)], x)
>>> round(out[1].start, 3)  # 20 ms late -> 11 ms late
0.261
"""
from __future__ import annotations

import numpy as np

from toolkit.animation import Segment

__all__ = ["spectral_novelty", "refine_boundaries", "refine_speech_edges", "find_noise_bursts", "mask_noise_bursts"]

HOP_S = 0.0025  # novelty resolution
WIN_S = 0.016  # analysis window of the log-mel frames
N_MELS = 32
DYNAMIC_RANGE_DB = 50.0
MAX_SHIFT_S = 0.010  # how far a boundary may move
CONTEXT_S = 0.015  # spectra averaged on each side of a candidate boundary
PULL = 1.0  # penalty (in median-novelty units) for moving the full MAX_SHIFT_S
MIN_PHONE_S = 0.010  # no phone is shrunk below this


def _log_mel(samples: np.ndarray, sample_rate: int, hop_s: float, win_s: float, n_mels: int) -> np.ndarray:
    """Log mel energies, one row per hop; row i centred at i * hop_s."""
    hop, win = max(1, int(round(hop_s * sample_rate))), max(2, int(round(win_s * sample_rate)))
    n_fft = 1 << int(np.ceil(np.log2(win)))
    x = np.asarray(samples, np.float32)
    x = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]])  # pre-emphasis, as in the aligner's front end
    xp = np.pad(x, (win // 2, win // 2 + hop), mode="reflect")  # no artificial edge at either end
    n = 1 + (len(xp) - win) // hop
    frames = np.lib.stride_tricks.as_strided(xp, (n, win), (xp.strides[0] * hop, xp.strides[0]))
    power = np.abs(np.fft.rfft(frames * np.hanning(win).astype(np.float32), n_fft)) ** 2
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    edges_hz = 700.0 * (10 ** (np.linspace(mel(100.0), mel(min(7600.0, sample_rate / 2 - 100)), n_mels + 2) / 2595.0) - 1)
    bins = edges_hz / sample_rate * n_fft
    k = np.arange(n_fft // 2 + 1)[None, :]
    lo, mid, hi = bins[:-2, None], bins[1:-1, None], bins[2:, None]
    fbank = np.maximum(0.0, np.minimum((k - lo) / (mid - lo), (hi - k) / (hi - mid)))
    mel_power = power @ fbank.T.astype(np.float32)
    # a floor DYNAMIC_RANGE_DB below the loudest band energy: digital silence must not look like a huge change
    floor = float(mel_power.max()) * 10 ** (-DYNAMIC_RANGE_DB / 10) + 1e-10
    return np.log(mel_power + floor)


def spectral_novelty(samples: np.ndarray, sample_rate: int = 16000, *, hop_s: float = HOP_S,
                     context_s: float = CONTEXT_S) -> tuple[np.ndarray, np.ndarray]:
    """How much the spectrum changes at each instant: (times_s, novelty), novelty 1 = the median change.

    Novelty at time t is the Euclidean distance between the mean
    (per-band standardized) log-mel spectra of the ``context_s`` before t and
    the ``context_s`` after t.

    A change from digital silence is found a few ms early (and a change to it
    late): a window that holds any of the sound already looks like it in the
    log domain.

    >>> import numpy as np
    >>> x = np.zeros(16000, np.float32); x[4000:12000] = 0.3 * np.sin(np.arange(8000) * 0.9)  # a tone 0.25-0.75 s
    >>> t, nov = spectral_novelty(x, 16000)
    >>> round(float(t[np.argmax(nov * (t < 0.5))]), 3), round(float(t[np.argmax(nov * (t > 0.5))]), 3)
    (0.244, 0.756)
    """
    feats = _log_mel(samples, sample_rate, hop_s, WIN_S, N_MELS)
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
    w = max(1, int(round(context_s / hop_s)))
    n = len(feats)
    csum = np.concatenate([np.zeros((1, feats.shape[1])), np.cumsum(feats, 0)])
    edge = np.arange(n + 1)  # edge k lies between rows k-1 and k, at (k - 0.5) * hop_s
    a, b = np.clip(edge - w, 0, n), np.clip(edge + w, 0, n)
    left = (csum[edge] - csum[a]) / np.maximum(1, edge - a)[:, None]
    right = (csum[b] - csum[edge]) / np.maximum(1, b - edge)[:, None]
    nov = np.sqrt(((left - right) ** 2).sum(1))
    nov[(edge < w) | (edge > n - w)] = 0.0  # too little context on one side to judge
    nov /= float(np.median(nov)) + 1e-9
    return (edge - 0.5) * hop_s, nov


def refine_boundaries(phones: list[Segment], samples: np.ndarray, sample_rate: int = 16000, *,
                      max_shift_s: float = MAX_SHIFT_S, context_s: float = CONTEXT_S, pull: float = PULL,
                      min_phone_s: float = MIN_PHONE_S, novelty: tuple[np.ndarray, np.ndarray] | None = None
                      ) -> list[Segment]:
    """Move each inner boundary of a contiguous phone track to the nearby peak of spectral change.

    phones: contiguous segments (silences included); the first start and the
    last end stay.  A boundary moves to the time in ``t0 +- max_shift_s``
    that maximizes ``novelty - pull * ((t - t0) / max_shift_s) ** 2``, never
    shrinking a phone below ``min_phone_s``.  Returns new segments.

    >>> import numpy as np
    >>> from toolkit.animation import Segment
    >>> x = np.zeros(16000, np.float32); x[4000:12000] = 0.3 * np.sin(np.arange(8000) * 0.9)
    >>> track = [Segment("", 0.0, 0.27), Segment("a", 0.27, 0.74), Segment("", 0.74, 1.0)]
    >>> [round(p.end, 3) for p in refine_boundaries(track, x)]
    [0.261, 0.741, 1.0]
    """
    out = [Segment(p.label, p.start, p.end) for p in phones]
    if len(out) < 2 or len(samples) < int(0.05 * sample_rate):
        return out
    times, nov = novelty if novelty is not None else spectral_novelty(samples, sample_rate, context_s=context_s)
    hop = float(times[1] - times[0])
    bounds = [p.start for p in out] + [out[-1].end]
    for i in range(1, len(out)):
        t0 = bounds[i]
        shift = max_shift_s
        lo = max(t0 - shift, bounds[i - 1] + min_phone_s)
        hi = min(t0 + shift, bounds[i + 1] - min_phone_s)
        k0, k1 = int(np.ceil((lo - times[0]) / hop - 1e-9)), int(np.floor((hi - times[0]) / hop + 1e-9))
        k0, k1 = max(0, k0), min(len(nov) - 1, k1)
        if k1 < k0:
            continue
        cand = times[k0: k1 + 1]
        score = nov[k0: k1 + 1] - pull * ((cand - t0) / shift) ** 2
        bounds[i] = float(cand[int(np.argmax(score))])
    for i, p in enumerate(out):
        p.start, p.end = bounds[i], bounds[i + 1]
    return out


# -- silence / speech edges --------------------------------------------------------------

EDGE_HOP_S = 0.0025
EDGE_WIN_S = 0.010
EDGE_SHIFT_S = 0.060  # how far an edge may move
# Where between the noise floor (0) and the sound's level (1), in dB, a sound starts
# and ends: chosen on flite speech with exact phone times (0.3-0.5 all help; 0.4 best).
EDGE_RATIO = 0.4
EDGE_MIN_RANGE_DB = 10.0  # a sound less than this above the floor: its edges are left alone
EDGE_HOLD_S = 0.010  # the level must stay past the threshold this long (clicks do not count)


def _edge_energy_db(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Pre-emphasized short-time energy in dB, one row per EDGE_HOP_S, row i centred at i * EDGE_HOP_S."""
    hop, win = int(round(EDGE_HOP_S * sample_rate)), int(round(EDGE_WIN_S * sample_rate))
    x = np.asarray(samples, np.float64)
    x = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]])
    xp = np.pad(x, (win // 2, win // 2 + hop))
    n = 1 + (len(xp) - win) // hop
    frames = np.lib.stride_tricks.as_strided(xp, (n, win), (xp.strides[0] * hop, xp.strides[0]))
    return 10 * np.log10(np.mean((frames * np.hanning(win)) ** 2, axis=1) + 1e-12)


def refine_speech_edges(phones: list[Segment], samples: np.ndarray, sample_rate: int = 16000, *,
                        ratio: float = EDGE_RATIO, max_shift_s: float = EDGE_SHIFT_S,
                        min_phone_s: float = MIN_PHONE_S) -> list[Segment]:
    """Move each silence/speech edge of a contiguous phone track to the loudness threshold crossing.

    phones: contiguous segments, silences labelled "".  An onset moves to the
    first instant after which the level stays at least ``ratio`` of the way
    (in dB) from the floor to the sound's level for EDGE_HOLD_S, an offset to
    the last such instant; within ``max_shift_s`` of the aligner's edge and
    never shrinking a segment below ``min_phone_s``.  Edges of stops and
    affricates after silence stay: their closure is silent, so loudness cannot place them.

    >>> import numpy as np
    >>> x = np.zeros(16000, np.float32); x[4000:12000] = 0.3 * np.sin(np.arange(8000) * 0.3)  # 0.25-0.75 s
    >>> x += 1e-4 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    >>> out = refine_speech_edges([Segment("", 0.0, 0.21), Segment("a", 0.21, 0.79), Segment("", 0.79, 1.0)], x)
    >>> round(out[1].start, 2), round(out[1].end, 2)
    (0.25, 0.75)
    """
    from toolkit.phonemes.inventory import starts_with_stop

    out = [Segment(p.label, p.start, p.end) for p in phones]
    if len(out) < 2 or len(samples) < int(0.05 * sample_rate):
        return out
    e = _edge_energy_db(samples, sample_rate)
    t = np.arange(len(e)) * EDGE_HOP_S
    floor = float(np.percentile(e, 10))
    hold = max(1, int(round(EDGE_HOLD_S / EDGE_HOP_S)))
    for i in range(1, len(out)):
        left, right = out[i - 1], out[i]
        if (left.label == "") == (right.label == ""):
            continue
        onset = left.label == ""
        sound = right if onset else left
        if onset and starts_with_stop(sound.label):
            continue  # a stop's closure is silent: loudness cannot tell when it began
        inside = (t >= sound.start) & (t < sound.end)
        if not inside.any():
            continue
        level = float(np.percentile(e[inside], 90))
        if level - floor < EDGE_MIN_RANGE_DB:
            continue
        thr = floor + ratio * (level - floor)
        lo = max(right.start - max_shift_s, left.start + min_phone_s)
        hi = min(right.start + max_shift_s, right.end - min_phone_s)
        k = np.flatnonzero((t >= lo) & (t <= hi))
        if k.size <= hold:
            continue
        above = e[k] >= thr
        # runs of `hold` frames above the threshold, starting (onset) or ending (offset) at each frame
        run = np.convolve(above.astype(int), np.ones(hold, int), mode="valid") == hold
        if onset:
            starts = np.flatnonzero(run)
            if not starts.size or starts[0] == 0:
                continue  # no onset in the window, or loud from its start: leave the aligner's edge
            new = t[k[starts[0]]]
        else:
            ends = np.flatnonzero(run) + hold - 1
            if not ends.size or ends[-1] == len(k) - 1:
                continue
            new = t[k[ends[-1]]]
        left.end = right.start = float(new)
    return out


# -- noise bursts -------------------------------------------------------------------------

BURST_HOP_S = 0.005
BURST_WIN_S = 0.02
BURST_MIN_DBFS = -20.0  # quieter than this is never a burst
# spectral flatness (averaged over 5 frames) of white noise: 0.56 +- 0.02; speech, coughs, bumps: < 0.45
BURST_FLATNESS = 0.48
BURST_OVER_SPEECH_DB = 6.0  # louder than the loud speech frames by this much
BURST_MIN_S = 0.05  # shorter loud flat events are clicks, plosive bursts, coughs: left alone


def find_noise_bursts(samples: np.ndarray, sample_rate: int = 16000) -> list[tuple[float, float]]:
    """Spans (start_s, end_s) of corrupt audio: much louder than the speech and spectrally flat.

    Digital noise from damaged files, dropouts full of random samples and
    clipped static are loud over the whole band, which speech never is (its
    loud parts, vowels, have formant peaks; its flat parts, fricatives, are
    quiet).  A frame is a burst frame when its level is above
    `BURST_MIN_DBFS`, ``BURST_OVER_SPEECH_DB`` above the loud speech frames
    (80th percentile of the frames that are not burst candidates) and its
    spectral flatness is above `BURST_FLATNESS`.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = (0.05 * np.sin(np.arange(32000) * 0.05)).astype(np.float32)
    >>> x[8000:10400] = rng.uniform(-1, 1, 2400)
    >>> [(round(a, 2), round(b, 2)) for a, b in find_noise_bursts(x, 16000)]
    [(0.5, 0.65)]
    """
    x = np.asarray(samples, np.float32)
    hop, win = int(round(BURST_HOP_S * sample_rate)), int(round(BURST_WIN_S * sample_rate))
    if len(x) < win:
        return []
    n = 1 + (len(x) - win) // hop
    frames = np.lib.stride_tricks.as_strided(x, (n, win), (x.strides[0] * hop, x.strides[0]))
    level_db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, 1) + 1e-12)
    loud = np.flatnonzero(level_db > BURST_MIN_DBFS)
    if not loud.size:
        return []
    # flatness only where it can matter (and its 5-frame average needs the neighbours)
    near = np.unique(np.clip(loud[:, None] + np.arange(-2, 3)[None, :], 0, n - 1))
    power = np.abs(np.fft.rfft(frames[near] * np.hanning(win).astype(np.float32), axis=1)) ** 2
    lo, hi = int(250 / sample_rate * win), int(min(7000, 0.45 * sample_rate) / sample_rate * win)
    band = power[:, lo:hi].astype(np.float64) + 1e-12
    flat_near = np.exp(np.mean(np.log(band), 1)) / np.mean(band, 1)
    flatness = np.zeros(n)
    flatness[near] = flat_near
    flatness = np.convolve(flatness, np.ones(5) / 5, mode="same")  # a single frame's estimate is noisy
    cand = (level_db > BURST_MIN_DBFS) & (flatness > BURST_FLATNESS)
    if not cand.any():
        return []
    rest = level_db[~cand]
    speech_db = np.percentile(rest, 80) if rest.size else -120.0
    burst = cand & (level_db > speech_db + BURST_OVER_SPEECH_DB)
    spans: list[list[float]] = []
    for a, b in np.flatnonzero(np.diff(np.concatenate([[0], burst.astype(np.int8), [0]])) != 0).reshape(-1, 2):
        t0, t1 = a * BURST_HOP_S, (b - 1) * BURST_HOP_S + BURST_WIN_S
        if spans and t0 <= spans[-1][1]:
            spans[-1][1] = t1
        else:
            spans.append([t0, t1])
    return [_burst_edges(x, sample_rate, a, b) for a, b in spans if b - a >= BURST_MIN_S]


def _burst_edges(x: np.ndarray, sample_rate: int, a_s: float, b_s: float) -> tuple[float, float]:
    """Tighten a burst span found on 20 ms frames to 1 ms blocks at least a third of the burst's level."""
    blk = max(1, sample_rate // 1000)
    a, b = int(a_s * sample_rate) // blk, int(np.ceil(b_s * sample_rate / blk))
    rms = np.sqrt(np.mean(x[a * blk: b * blk].astype(np.float64).reshape(-1, blk) ** 2, 1)) if b > a else np.zeros(0)
    if not rms.size:
        return float(a_s), float(b_s)
    loud = np.flatnonzero(rms >= np.median(rms) / 3)
    return (round(float((a + loud[0]) * blk / sample_rate), 4),
            round(float(min(len(x), (a + loud[-1] + 1) * blk) / sample_rate), 4))


def mask_noise_bursts(samples: np.ndarray, sample_rate: int = 16000, seed: int = 0
                      ) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """(copy of the samples with each noise burst replaced by quiet noise, the burst spans).

    The replacement is white noise at the recording's noise floor (10th
    percentile of 10 ms frame levels), so the decoder hears a pause there.
    The input array is not modified.

    >>> import numpy as np
    >>> x = np.zeros(16000, np.float32); x[4000:6400] = np.random.default_rng(0).uniform(-1, 1, 2400)
    >>> y, spans = mask_noise_bursts(x, 16000)
    >>> float(np.abs(y).max()) < 0.01, len(spans)
    (True, 1)
    """
    x = np.array(samples, dtype=np.float32, copy=True)
    spans = find_noise_bursts(x, sample_rate)
    if not spans:
        return x, []
    keep = np.ones(len(x), bool)
    for a, b in spans:
        keep[int(a * sample_rate): int(np.ceil(b * sample_rate))] = False
    hop = int(0.01 * sample_rate)
    clean = x[keep]
    if len(clean) >= hop:
        rms = np.sqrt(np.mean(clean[: len(clean) // hop * hop].reshape(-1, hop).astype(np.float64) ** 2, 1))
        floor = float(np.percentile(rms, 10))
    else:
        floor = 0.0
    floor = min(max(floor, 1e-4), 0.01)
    rng = np.random.default_rng(seed)
    idx = np.flatnonzero(~keep)
    x[idx] = (floor * rng.standard_normal(len(idx))).astype(np.float32)
    return x, spans
