"""Timed phonemes -> smooth viseme and ARKit curves (coarticulation).

A dominance-function model in the style of Cohen & Massaro (1993): every
phoneme pulls the mouth towards its viseme with a *dominance* that is flat
over the core of the sound and fades before it (anticipation) and after it
(carry-over).  At any time the viseme weights are the normalized sum of the
dominances, so neighbouring sounds blend into each other instead of popping.
On top of the blend sit a few articulation rules in the spirit of JALI
(Edwards et al. 2016), each in one named function with its reason:

* `rule_lead`            the mouth moves before the sound it makes,
* `rule_min_hold`        every sound is visible for a minimum time,
* `rule_pauses`          short gaps inside speech do not close the mouth,
* `rule_nasal_assimilation` /n/ before /p b m/ ends with closed lips,
* `rule_bilabial_closure` /p b m/ always close the lips fully,
* `rule_labiodental_contact` /f v/ always reach lip-to-teeth,
* `rule_jaw_from_loudness` the jaw opens wider on louder vowels,
* `rule_lip_seal`        lips seal over whatever jaw opening remains,
* sampling with a frame-long box filter, so no single-frame flicker at any fps.

All times are in seconds.  Curves are evaluated on a fine internal grid and
averaged into frames, so any fps works (24, 25, 30, 60, ...).

Example
-------
>>> from toolkit.animation import Segment
>>> segs = [Segment("m", 0.10, 0.20), Segment("a", 0.20, 0.45)]
>>> anim = animate_phonemes(segs, duration_s=0.6, fps=30)
>>> float(anim.channel("viseme_PP").max())
1.0
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from toolkit.checks import check_number
from toolkit.animation import ARKIT_BLENDSHAPES, CHANNELS, VISEMES, Animation, Segment
from toolkit.phonemes.inventory import is_silence
from toolkit.visemes.tables import CLOSURE_VISEMES, CONTACT_VISEMES, VISEME_POSES, visemes_for

# Fine grid the dominance functions are evaluated on (s).  5 ms resolves the
# shortest phones and keeps minutes of audio cheap.
GRID_S = 0.005


@dataclass(frozen=True)
class CoarticulationParams:
    """Tunable timing and shape constants; each rule reads its own."""

    # rule_lead: lips and jaw reach a sound's shape ~10 ms before its acoustic
    # onset (articulation precedes acoustics); with the longer anticipation
    # tails the mouth-open curve leads the sound by ~15-25 ms, never lags.
    # More lead (30 ms) blurred short consonants: chosen by bench/tune_coarticulation.py.
    lead_s: float = 0.01
    # Anticipation: a viseme starts to show this long before its (lead-shifted)
    # sound; 100-150 ms is what speakers do (e.g. lip rounding before /u/).
    anticipation_s: float = 0.12
    # Carry-over: the shape lingers this long after the sound ends.
    carryover_s: float = 0.08
    # rule_min_hold: no sound is shown for less than this (one frame at 24 fps).
    min_hold_s: float = 0.045
    # rule_pauses: silences shorter than this between sounds keep the speech
    # shape (stop closures and hesitations are not pauses).
    min_pause_s: float = 0.12
    # Closure/contact reach: the /p b m/ and /f v/ targets are held over this
    # first share of their (lead-shifted) sound.
    closure_share: float = 0.7
    # Fraction of each phone over which its dominance is flat (the rest is ramp).
    plateau_share: float = 0.6
    # rule_jaw_from_loudness: jaw opening scales between these gains from the
    # quietest to the loudest voiced frames of the utterance.
    jaw_gain_range: tuple[float, float] = (0.6, 1.3)
    # Overall motion scale (1 = natural; >1 exaggerated, <1 subtle).
    intensity: float = 1.0
    # Per-viseme dominance strength: lip-visible sounds dominate, tongue-only
    # sounds (t d k n) are largely hidden by their neighbours, rounding spreads.
    strength: dict = field(
        default_factory=lambda: {
            "sil": 0.7, "PP": 1.0, "FF": 1.0, "TH": 0.8, "DD": 0.55, "kk": 0.5, "CH": 0.9,
            "SS": 0.7, "nn": 0.55, "RR": 0.8, "aa": 0.85, "E": 0.75, "ih": 0.75, "oh": 0.9, "ou": 1.0,
        }
    )

    def __post_init__(self) -> None:
        # a NaN or a negative time here would reach every frame of every output: refused by name
        for name, (lo, hi) in PARAM_LIMITS.items():
            check_number(name, getattr(self, name), lo, hi)
        jaw = self.jaw_gain_range
        if not isinstance(jaw, (tuple, list)) or len(jaw) != 2:
            raise ValueError(f"jaw_gain_range must be (low, high), got {jaw!r}")
        for k in (0, 1):
            check_number(f"jaw_gain_range[{k}]", jaw[k], *JAW_GAIN_LIMITS)
        if jaw[0] > jaw[1]:
            raise ValueError(f"jaw_gain_range must be (low, high) with low <= high, got {jaw!r}")
        for v, w in dict(self.strength).items():
            check_number(f"strength[{v!r}]", w, 0, 2)


# The range of each timing constant above (seconds, or a share of a phone; intensity 1 = natural).
PARAM_LIMITS = {"lead_s": (-0.2, 0.2), "anticipation_s": (0.0, 0.5), "carryover_s": (0.0, 0.5),
                "min_hold_s": (0.0, 0.5), "min_pause_s": (0.0, 2.0), "closure_share": (0.0, 1.0),
                "plateau_share": (0.0, 1.0), "intensity": (0.0, 3.0)}
JAW_GAIN_LIMITS = (0.0, 5.0)


DEFAULT_PARAMS = CoarticulationParams()

_POSE_MATRIX = np.array(
    [[VISEME_POSES[v].get(name, 0.0) for name in ARKIT_BLENDSHAPES] for v in VISEMES], np.float32
)
_VIDX = {v: i for i, v in enumerate(VISEMES)}


@dataclass
class _Target:
    """One viseme target: a time span (already shifted by the lead) and its viseme."""

    viseme: str
    start: float
    end: float
    phone: str = ""


# -- the rules -------------------------------------------------------------------------------


def rule_pauses(phonemes: list[Segment], duration_s: float, p: CoarticulationParams) -> list[Segment]:
    """Fill gaps: long gaps (and the ends) become silence, short ones are bridged.

    Why: aligners leave gaps for pauses, but also for stop closures and tiny
    hesitations; closing the mouth for those looks like stuttering.
    """
    out: list[Segment] = []
    t = 0.0
    for seg in sorted(phonemes, key=lambda s: s.start):
        label = "" if is_silence(seg.label) else seg.label
        start, end = max(seg.start, t), max(seg.end, t)
        gap = start - t
        if gap > 1e-6:
            if gap >= p.min_pause_s or not out:
                out.append(Segment("", t, start))
            else:  # bridge: stretch the previous sound halfway, the next one back halfway
                mid = t + gap / 2
                out[-1] = Segment(out[-1].label, out[-1].start, mid)
                start = mid
        if end > start:
            if label == "" and out and out[-1].label == "":
                out[-1] = Segment("", out[-1].start, end)
            else:
                out.append(Segment(label, start, end))
        t = max(t, end)
    if duration_s - t > 1e-6:
        out.append(Segment("", t, duration_s))
    # a short silence between two sounds is bridged too
    for i in range(1, len(out) - 1):
        s = out[i]
        if s.label == "" and s.end - s.start < p.min_pause_s:
            out[i] = Segment(None, s.start, s.end)  # type: ignore[arg-type]  # transparent
    return out


# Sounds that take the lips' closure from a following /p b m/, and what they become.
ASSIMILATING_NASALS = {"n": "m"}
BILABIALS = ("p", "b", "m")
# Share of such a nasal, at its end, said with the lips closed.
ASSIMILATED_SHARE = 0.5


def rule_nasal_assimilation(segments: list[Segment]) -> list[Segment]:
    """/n/ directly before /p b m/ (no pause between) closes the lips over its second half.

    Why: in connected speech the alveolar nasal takes the place of the next
    sound ("in boats" is said [ɪm boʊts], "ten men" [tɛm mɛn]), so the lips
    close during the /n/, while dictionaries and aligners keep writing /n/.
    Closing over its second half shows the closure in time without hiding
    an /n/ the speaker kept.
    """
    out: list[Segment] = []
    for i, cur in enumerate(segments):
        nxt = segments[i + 1] if i + 1 < len(segments) else None
        if (nxt is not None and cur.label in ASSIMILATING_NASALS and nxt.label in BILABIALS
                and nxt.start - cur.end < 0.02):
            cut = cur.end - ASSIMILATED_SHARE * (cur.end - cur.start)
            out += [Segment(cur.label, cur.start, cut), Segment(ASSIMILATING_NASALS[cur.label], cut, cur.end)]
        else:
            out.append(cur)
    return out


def rule_lead(segments: list[Segment], p: CoarticulationParams) -> list[_Target]:
    """Turn phones into viseme targets shifted earlier by `lead_s`.

    Why: the lips and jaw are in place before the sound is heard.  Diphthongs
    are split into their parts; glottal sounds (/h ʔ/) have no target of their
    own and show their neighbours' shapes.
    """
    targets: list[_Target] = []
    for seg in segments:
        if seg.label is None:  # bridged gap: transparent
            continue
        parts = visemes_for(seg.label)
        # silence is not shifted: the mouth relaxes when the sound stops
        shift = 0.0 if parts == ["sil"] else p.lead_s
        n = len(parts)
        # diphthongs: first part holds 60 %, the glide takes the rest
        cuts = [0.0, 1.0] if n == 1 else list(np.concatenate([[0.0], np.linspace(0.6, 1.0, n)]))
        dur = seg.end - seg.start
        for k, v in enumerate(parts):
            if v is None:
                continue
            targets.append(_Target(v, seg.start + cuts[k] * dur - shift, seg.start + cuts[k + 1] * dur - shift, seg.label))
    return targets


def rule_min_hold(targets: list[_Target], p: CoarticulationParams) -> list[_Target]:
    """Widen very short targets around their centre to `min_hold_s`.

    Why: a 20 ms /b/ would otherwise never show at 24-30 fps.
    """
    out = []
    for t in targets:
        if t.end - t.start < p.min_hold_s:
            c = (t.start + t.end) / 2
            t = replace(t, start=c - p.min_hold_s / 2, end=c + p.min_hold_s / 2)
        out.append(t)
    return out


def _dominance_weights(targets: list[_Target], n_grid: int, p: CoarticulationParams) -> np.ndarray:
    """Normalized blend of all dominance functions on the fine grid (n_grid x 15)."""
    acc = np.zeros((n_grid, len(VISEMES)), np.float64)
    total = np.full(n_grid, 1e-9)
    # exponential tails reaching ~5 % after the anticipation / carry-over time
    tau_ant, tau_car = p.anticipation_s / 3.0, p.carryover_s / 3.0
    for t in targets:
        dur = t.end - t.start
        pad = (1 - p.plateau_share) / 2 * dur
        a, b = t.start + pad, t.end - pad  # flat core of the dominance
        lo = max(0, int((a - 4 * tau_ant) / GRID_S))
        hi = min(n_grid, int((b + 4 * tau_car) / GRID_S) + 2)
        if hi <= lo:
            continue
        g = np.arange(lo, hi) * GRID_S
        d = np.where(g < a, np.exp(-(a - g) / tau_ant), np.where(g > b, np.exp(-(g - b) / tau_car), 1.0))
        d *= p.strength.get(t.viseme, 0.7)
        acc[lo:hi, _VIDX[t.viseme]] += d
        total[lo:hi] += d
    w = acc / total[:, None]
    w[total < 1e-6, _VIDX["sil"]] = 1.0
    return w


def _box_sample(grid_values: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """Average the fine grid over each frame's period, centred on the frame time.

    Why: point-sampling a fast gesture at 24 fps can catch or miss it, which
    flickers; the box filter keeps every gesture's area at any frame rate.
    """
    n_grid = grid_values.shape[0]
    csum = np.concatenate([np.zeros((1, grid_values.shape[1])), np.cumsum(grid_values, axis=0)])
    centres = np.arange(n_frames) / fps / GRID_S
    half = 0.5 / fps / GRID_S
    lo = np.clip(np.round(centres - half).astype(int), 0, n_grid - 1)
    hi = np.clip(np.round(centres + half).astype(int) + 1, lo + 1, n_grid)
    return (csum[hi] - csum[lo]) / (hi - lo)[:, None]


def _frames_in(start: float, end: float, share: float, n_frames: int, fps: float) -> np.ndarray:
    """Frames from the one showing `start` to the last in the first `share` of [start, end].

    The first part, because lips close at the onset of a stop or nasal and open
    at its release.  A frame shows the half-frame around its time (the box
    filter), so the frame during which the lips close shows them closed: at
    30 fps the first frame *after* the onset may come a third of a sound late.
    """
    last_t = start + (end - start) * share
    first, last = int(np.ceil(start * fps - 1e-9)), int(np.floor(last_t * fps + 1e-9))
    idx = np.arange(max(first, 0), min(last, n_frames - 1) + 1)
    if idx.size == 0:
        c = (start + last_t) / 2
        idx = np.array([min(max(int(round(c * fps)), 0), n_frames - 1)])
    return idx


def rule_bilabial_closure(weights: np.ndarray, targets: list[_Target], fps: float, p: CoarticulationParams) -> None:
    """Force full lip closure (PP = 1) over the core of every /p b m/.

    Why: viewers notice a /p b m/ without closed lips more than any other
    error, and blending with open neighbours would leave the lips ajar.
    Back-to-back closures (/m b/ in "number", /m p/ in "camp") keep the lips
    shut from one to the next: they do not open between them.
    """
    for k, t in enumerate(targets):
        if t.viseme in CLOSURE_VISEMES:
            nxt = targets[k + 1] if k + 1 < len(targets) else None
            end, share = t.end, p.closure_share
            if nxt is not None and nxt.viseme == t.viseme and nxt.start - t.end < 0.02:
                end, share = nxt.start, 1.0
            idx = _frames_in(t.start, end, share, len(weights), fps)
            weights[idx] = 0.0
            weights[idx, _VIDX[t.viseme]] = 1.0


def rule_labiodental_contact(weights: np.ndarray, targets: list[_Target], fps: float, p: CoarticulationParams) -> None:
    """Make /f v/ reach at least 90 % of the lip-to-teeth shape.

    Why: the lower lip must touch the upper teeth; a half-blended /f/ reads as
    an open vowel.
    """
    for t in targets:
        if t.viseme in CONTACT_VISEMES:
            idx = _frames_in(t.start, t.end, p.closure_share, len(weights), fps)
            j = _VIDX[t.viseme]
            w = weights[idx].copy()
            own = w[:, j].copy()
            others = w.sum(axis=1) - own
            need = own < 0.9
            w *= np.where(need, 0.1 / np.maximum(others, 1e-9), 1.0)[:, None]
            w[:, j] = np.where(need, 0.9, own)
            weights[idx] = w


def loudness_gain(samples: np.ndarray, sample_rate: int, n_frames: int, fps: float, p: CoarticulationParams) -> np.ndarray:
    """Per-frame jaw gain from loudness, shifted by the lead (rule_jaw_from_loudness).

    Why: people open the jaw wider when they speak louder or stress a vowel;
    alignment alone cannot know that.  Loudness is normalized per utterance so
    recording level does not matter.
    """
    hop = sample_rate / fps
    win = max(int(hop * 2), 16)
    x = np.asarray(samples, np.float64)
    centres = (np.arange(n_frames) / fps + p.lead_s) * sample_rate
    db = np.full(n_frames, -100.0)
    for i, c in enumerate(centres):  # frame loop: n_frames is small (30/s)
        a, b = int(max(0, c - win / 2)), int(min(len(x), c + win / 2))
        if b > a:
            db[i] = 10 * np.log10(np.mean(x[a:b] ** 2) + 1e-12)
    voiced = db[db > db.max() - 40] if np.isfinite(db).any() else db
    lo, hi = np.percentile(voiced, 10), np.percentile(voiced, 95)
    norm = np.clip((db - lo) / max(hi - lo, 1e-3), 0.0, 1.0)
    g0, g1 = p.jaw_gain_range
    return g0 + (g1 - g0) * norm


def rule_lip_seal(arkit: np.ndarray, weights: np.ndarray) -> None:
    """mouthClose follows the jaw during closures: lips seal over any jaw opening.

    Why: ARKit's mouthClose is defined relative to jawOpen; with the jaw
    driven by loudness, a /m/ after a loud vowel would otherwise leave a gap.
    """
    jaw = arkit[:, ARKIT_BLENDSHAPES.index("jawOpen")]
    pp = weights[:, _VIDX["PP"]]
    arkit[:, ARKIT_BLENDSHAPES.index("mouthClose")] = np.maximum(
        arkit[:, ARKIT_BLENDSHAPES.index("mouthClose")], jaw * pp
    )


# -- the stage ---------------------------------------------------------------------------------


def viseme_weights(
    phonemes: list[Segment], duration_s: float, fps: float = 30, params: CoarticulationParams | None = None
) -> np.ndarray:
    """Coarticulated viseme weights, frames x 15 (rows sum to 1).

    >>> w = viseme_weights([Segment("a", 0.1, 0.4)], 0.5, fps=25)
    >>> w.shape
    (12, 15)
    """
    p = params or DEFAULT_PARAMS
    n_frames = max(1, int(round(duration_s * fps)))
    segments = rule_pauses(rule_nasal_assimilation(phonemes), duration_s, p)
    targets = rule_min_hold(rule_lead(segments, p), p)
    n_grid = int(np.ceil((duration_s + 1.0 / fps) / GRID_S)) + 1
    weights = _box_sample(_dominance_weights(targets, n_grid, p), n_frames, fps)
    rule_bilabial_closure(weights, targets, fps, p)
    rule_labiodental_contact(weights, targets, fps, p)
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)
    return weights.astype(np.float32)


def animate_phonemes(
    phonemes: list[Segment],
    duration_s: float,
    fps: float = 30,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    params: CoarticulationParams | None = None,
    words: list[Segment] | None = None,
) -> Animation:
    """Timed IPA phonemes (+ optional audio for loudness) -> an `Animation`.

    The animation has the canonical channels: 15 visemes, 52 ARKit blendshapes
    (mouth and jaw driven here; eyes, brows and head are left at 0 for the
    motion layers) and head rotation.
    """
    p = params or DEFAULT_PARAMS
    w = viseme_weights(phonemes, duration_s, fps, p)
    arkit = w @ _POSE_MATRIX
    if audio is not None and len(audio) > 0:
        gain = loudness_gain(audio, sample_rate, len(w), fps, p)
        # the jaw follows loudness only while the mouth is open for speech
        for name in ("jawOpen", "mouthLowerDownLeft", "mouthLowerDownRight"):
            j = ARKIT_BLENDSHAPES.index(name)
            arkit[:, j] *= gain
    arkit *= p.intensity
    rule_lip_seal(arkit, w)
    arkit = np.clip(arkit, 0.0, 1.0)

    vis = w.copy()
    if p.intensity != 1.0:  # visemes scale too; what is taken away goes to rest
        vis[:, 1:] = np.clip(vis[:, 1:] * p.intensity, 0, 1)
        vis[:, 0] = np.clip(1.0 - vis[:, 1:].sum(axis=1), 0, 1)
    head = np.zeros((len(w), 3), np.float32)
    values = np.concatenate([vis, arkit, head], axis=1)
    return Animation(
        fps=fps,
        channels=list(CHANNELS),
        values=values,
        phonemes=[s for s in phonemes if not is_silence(s.label)],
        words=list(words or []),
    )
