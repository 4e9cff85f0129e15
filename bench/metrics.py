"""Viseme-level scores of an animation against reference phones (hand labels).

Shared by every bench that scores mouths: the aligned pipeline, the neural
model and the peers.  The reference is the hand-labelled phone sequence mapped
through the one viseme table; the hypothesis is whatever viseme curves an
engine produced (frames x 15, or an `Animation`).

* mid-phone accuracy: the reference viseme at the middle of each phone is the
  strongest (`top1`) or among the two strongest (`top2`) weights there; the
  middle is used so that anticipation is not punished.
* frame accuracy: the same every 10 ms (strongest weight only).
* coarse accuracy: the same over mouth classes (closed / lip-to-teeth / open /
  rounded / other), every 10 ms.
* bilabial recall: share of /p b m/ phones during which the lips fully close
  (PP weight >= `LIPS_CLOSED` at some frame between 60 ms before and the end of
  the phone: closure may start early, never after the sound).
* vowel shut: share of vowels whose middle has the lips closed (must be ~0).
* lag: the shift (ms) that best lines up the mouth-open curve with the
  reference; negative = the mouth leads the sound.

Example
-------
>>> import numpy as np
>>> from toolkit.animation import Segment
>>> ref = [Segment("m", 0.0, 0.1), Segment("a", 0.1, 0.3)]
>>> w = np.zeros((30, 15)); w[:10, 1] = 1; w[10:, 10] = 1
>>> score_visemes(w, 100.0, ref).mid_top1
1.0
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from toolkit.animation import VISEMES, Animation, Segment
from toolkit.phonemes.inventory import TIMIT_TO_IPA, is_silence, is_vowel
from toolkit.visemes.tables import VISEME_OPENNESS, main_viseme

LIPS_CLOSED = 0.8
CLOSURE_EARLY_S = 0.06
COARSE = {
    "sil": "closed", "PP": "closed", "FF": "teeth", "aa": "open", "E": "open", "ih": "open",
    "oh": "rounded", "ou": "rounded", "TH": "other", "DD": "other", "kk": "other", "CH": "other",
    "SS": "other", "nn": "other", "RR": "other",
}
_VIDX = {v: i for i, v in enumerate(VISEMES)}
_OPEN = np.array([VISEME_OPENNESS[v] for v in VISEMES])


def reference_ipa(label: str) -> str:
    """A reference label (IPA, or TIMIT/ARPAbet lower-case) as IPA; "" for silence."""
    if is_silence(label):
        return ""
    return TIMIT_TO_IPA.get(label, label)


def viseme_matrix(anim: Animation) -> np.ndarray:
    """The 15 viseme curves of an animation (frames x 15)."""
    return np.stack([anim.channel(f"viseme_{v}") for v in VISEMES], axis=1)


def _at(weights: np.ndarray, fps: float, times_s: np.ndarray) -> np.ndarray:
    """Weights linearly interpolated at arbitrary times."""
    grid = np.arange(len(weights)) / fps
    return np.stack([np.interp(times_s, grid, weights[:, j]) for j in range(weights.shape[1])], axis=1)


@dataclass
class VisemeScore:
    mid_top1: float = 0.0
    mid_top2: float = 0.0
    frame_acc: float = 0.0
    coarse_acc: float = 0.0
    bilabial_recall: float = 0.0
    vowel_shut: float = 0.0
    lag_ms: float = 0.0
    counts: dict = field(default_factory=dict)


def _reference_frames(ref: list[Segment], times_s: np.ndarray) -> list[str | None]:
    labels: list[str | None] = ["sil"] * len(times_s)
    for s in ref:
        v = main_viseme(reference_ipa(s.label))
        idx = np.nonzero((times_s >= s.start) & (times_s < s.end))[0]
        for i in idx:
            labels[i] = v
    return labels


def best_lag_ms(weights: np.ndarray, fps: float, ref: list[Segment], max_lag_s: float = 0.2) -> float:
    """Lag of the mouth-open curve against the reference (negative: the mouth leads)."""
    t = np.arange(0, len(weights) / fps, 0.005)
    ours = _at(weights, fps, t) @ _OPEN
    refo = np.zeros_like(t)
    for s in ref:
        v = main_viseme(reference_ipa(s.label))
        if v is not None:
            refo[(t >= s.start) & (t < s.end)] = VISEME_OPENNESS[v]
    ours, refo = ours - ours.mean(), refo - refo.mean()
    lags = np.arange(-int(max_lag_s / 0.005), int(max_lag_s / 0.005) + 1)
    corr = []
    for k in lags:  # ours shifted by k*5 ms compared with the reference
        a, b = (ours[k:], refo[: len(refo) - k]) if k >= 0 else (ours[:k], refo[-k:])
        corr.append(float(np.dot(a, b)) / max(len(a), 1))
    return float(lags[int(np.argmax(corr))] * 5.0)


def score_visemes(weights: np.ndarray, fps: float, ref: list[Segment]) -> VisemeScore:
    """Score viseme curves (frames x 15) against reference phone segments."""
    weights = np.asarray(weights, np.float64)
    sc = VisemeScore()
    mids, want, vowel_mids, closures = [], [], [], []
    for s in ref:
        ipa = reference_ipa(s.label)
        v = main_viseme(ipa)
        if not ipa or v is None:
            continue
        mids.append((s.start + s.end) / 2)
        want.append(_VIDX[v])
        if is_vowel(ipa):
            vowel_mids.append((s.start + s.end) / 2)
        if v == "PP":
            closures.append(s)
    if mids:
        w = _at(weights, fps, np.array(mids))
        order = np.argsort(-w, axis=1)
        want_a = np.array(want)
        sc.mid_top1 = float(np.mean(order[:, 0] == want_a))
        sc.mid_top2 = float(np.mean((order[:, 0] == want_a) | (order[:, 1] == want_a)))
    t = np.arange(0, len(weights) / fps, 0.01)
    ref_frames = _reference_frames(ref, t)
    keep = np.array([r is not None for r in ref_frames])
    hyp = _at(weights, fps, t).argmax(axis=1)
    hyp_v = [VISEMES[k] for k in hyp]
    if keep.any():
        sc.frame_acc = float(np.mean([h == r for h, r, k in zip(hyp_v, ref_frames, keep) if k]))
        sc.coarse_acc = float(np.mean([COARSE[h] == COARSE[r] for h, r, k in zip(hyp_v, ref_frames, keep) if k]))
    grid = np.arange(len(weights)) / fps
    hits = 0
    for s in closures:
        sel = (grid >= s.start - CLOSURE_EARLY_S) & (grid <= s.end)
        pp = weights[sel, _VIDX["PP"]] if sel.any() else _at(weights, fps, np.array([(s.start + s.end) / 2]))[:, 1]
        hits += bool(pp.max() >= LIPS_CLOSED)
    sc.bilabial_recall = hits / len(closures) if closures else float("nan")
    if vowel_mids:
        sc.vowel_shut = float(np.mean(_at(weights, fps, np.array(vowel_mids))[:, _VIDX["PP"]] >= LIPS_CLOSED))
    sc.lag_ms = best_lag_ms(weights, fps, ref)
    sc.counts = {"phones": len(mids), "bilabials": len(closures), "vowels": len(vowel_mids)}
    return sc


def pool(scores: list[VisemeScore]) -> VisemeScore:
    """Pooled score: phone-weighted means (bilabial recall over all /p b m/), median lag."""
    if not scores:
        return VisemeScore()
    n = np.array([s.counts.get("phones", 0) for s in scores], float)
    nb = np.array([s.counts.get("bilabials", 0) for s in scores], float)
    nv = np.array([s.counts.get("vowels", 0) for s in scores], float)

    def wmean(attr, w):
        vals = np.array([getattr(s, attr) for s in scores], float)
        ok = np.isfinite(vals) & (w > 0)
        return float(np.sum(vals[ok] * w[ok]) / np.sum(w[ok])) if ok.any() else float("nan")

    return VisemeScore(
        mid_top1=wmean("mid_top1", n), mid_top2=wmean("mid_top2", n), frame_acc=wmean("frame_acc", n),
        coarse_acc=wmean("coarse_acc", n), bilabial_recall=wmean("bilabial_recall", nb),
        vowel_shut=wmean("vowel_shut", nv), lag_ms=float(np.median([s.lag_ms for s in scores])),
        counts={"phones": int(n.sum()), "bilabials": int(nb.sum()), "vowels": int(nv.sum()), "utterances": len(scores)},
    )


# Held shapes are sampled every millisecond: `score_visemes` interpolates linearly between
# rows, so a step sampled on a coarse grid would ramp over a whole frame and land half a
# frame early (5 ms at 100 fps).
HELD_FPS = 1000.0


def held_weights(spans: list[tuple[str, float, float]], duration_s: float, fps: float = HELD_FPS) -> np.ndarray:
    """One-hot curves (frames x 15) holding viseme ``v`` over each ``(v, start_s, end_s)``, rest elsewhere."""
    n = max(1, int(round(duration_s * fps)))
    w = np.zeros((n, len(VISEMES)))
    w[:, 0] = 1.0
    t = np.arange(n) / fps
    for v, a, b in spans:
        sel = (t >= a) & (t < b)
        w[sel] = 0.0
        w[sel, _VIDX[v]] = 1.0
    return w


def stepwise_weights(segments: list[Segment], duration_s: float, fps: float = HELD_FPS) -> np.ndarray:
    """One-hot 'held shape' viseme curves from timed phones (how raw aligners are scored)."""
    spans = [(main_viseme(reference_ipa(s.label)), s.start, s.end) for s in segments]
    return held_weights([sp for sp in spans if sp[0] is not None], duration_s, fps)
