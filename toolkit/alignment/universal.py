"""Forced alignment for any language: a frame classifier of phonological features, then Viterbi.

Every IPA phone is described by what the mouth and throat do
(`toolkit.phonemes.ipa.phone_parts`: manner, place, voicing, vowel height,
backness, rounding, nasality), so a phone of a language the model never
heard still has a sound it can be matched against: a Lakota ejective is a
voiceless velar stop, a Hawaiian long vowel an open front unrounded vowel.

1. **Frames.** 40 log-mel bands every 10 ms (`toolkit.motion.features.log_mel`),
   seen twice: minus the mean spectrum of the recording's louder frames
   (removes the microphone and room colour) and minus its floor spectrum (how
   far each band stands above the background), `normalize_features`.
2. **Classifier** (`FrameClassifier`, numpy only, weights in
   ``assets/model/aligner.npz``, card in ``assets/model/ALIGNER_CARD.md``):
   a small 1-D convolutional network (dilated depthwise-separable residual
   blocks, 0.69 s of context each side) gives, per frame, a probability for
   every value of every feature, and the probability that a phone starts at
   that frame.  It is trained by ``python -m toolkit.train.aligner`` on
   synthetic speech in ~70 languages and festival/flite voices made from real
   speakers, all with exact phone times, heavily degraded.
3. **Viterbi** (`build_graph`, `viterbi`): the transcript's phones, each a
   chain of its parts (``tsʰ`` = t, s, h) with a minimum duration and a
   prior against very short phones (`duration_logprior`), optional pauses
   between words and at both ends, scored per frame by the weighted sum of
   the feature log-probabilities divided by their priors (`HEAD_WEIGHTS`,
   `PRIOR_SCALE`) plus the boundary log-probability where a phone starts
   (`BOUNDARY_WEIGHT`); pauses are unlikely on loud frames (`LOUD_DB`), a
   stop may sound like its silent closure (`CLOSURE_LOGP`).
4. **Long recordings** are aligned window by window (`WINDOW_S`): the
   transcript's remaining words are matched to the window with an open end,
   the window is cut in its longest pause, and the next window starts there,
   so time grows linearly with the length (the idea of
   `toolkit.alignment.pocketsphinx`).  A `toolkit.recording.Recording` is
   read block by block: memory holds the scores (~0.1 GB an hour), not the audio.

The confidence is the share of frames where the forced path's features are
also what the classifier would pick freely, scaled; squeezed phones (a
transcript that does not fit the audio) lower it and warn.

Example
-------
>>> from toolkit.alignment.tts import synthesize                                   # doctest: +SKIP
>>> sp = synthesize("dobrý den", "cs")                                         # doctest: +SKIP
>>> al = align_universal(sp.samples, 16000, [("dobriː", ["d", "o", "b", "r", "iː"])])  # doctest: +SKIP
>>> al.method                                                                  # doctest: +SKIP
'universal'
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit import progress
from toolkit.alignment.even import SPEECH_LEVEL, _fill_silence, even_alignment, speech_regions
from toolkit.alignment.result import Alignment, _word_parts
from toolkit.animation import Segment
from toolkit.motion.features import HOP, SAMPLE_RATE, log_mel
from toolkit.phonemes.ipa import FEATURE_VALUES, SILENCE, Features, base_symbol, phone_parts
from toolkit.resources import ALIGNER_WEIGHTS

FRAME_S = HOP / SAMPLE_RATE  # 10 ms
HEADS = tuple(FEATURE_VALUES)  # manner place voice height back rounded nasal
# How much each feature's log-probability counts in a frame's score.  Manner and place decide most
# boundaries; voicing and the vowel features tell neighbours of the same manner apart.
HEAD_WEIGHTS = {"manner": 1.0, "place": 0.7, "voice": 0.5, "height": 0.5, "back": 0.4, "rounded": 0.4, "nasal": 0.3}
PRIOR_SCALE = 0.7  # how far the feature posteriors are divided by their training priors (`FrameClassifier.infer`)
BOUNDARY_WEIGHT = 2.0  # weight of log p(phone starts here) at each phone start (and log(1-p) elsewhere)
# A stop's closure is silent: a stop frame may also score as silence, this much (log) less likely.  Without
# it a word-final stop ends where its closure begins, and its release is taken for the pause after it.
CLOSURE_LOGP = -2.0
# A frame this far above the recording's noise floor is sound, not a pause: the pause score drops by
# LOUD_SLOPE per dB beyond it.  Faint tails (a fading vowel, weak frication) then stay with their phone.
LOUD_DB = 8.0
LOUD_SLOPE = 0.3
# Minimum frames per part: taps, flaps and the glottal stop can be 10 ms; everything else 20 ms, split
# over its parts (an affricate's stop and fricative one frame each).
MIN_PHONE_FRAMES = 2
SHORT_SOUNDS = set("ɾɽʔⱱ")
SUBFRAME = True  # boundaries between frames placed by the boundary probabilities (`boundary_time_frames`)
SILENCE_MIN_FRAMES = 3  # a pause between words shorter than 30 ms is not a pause
# Phone durations (`duration_logprior`): shorter than the median is less likely (taps and the glottal stop:
# half the median).
DURATION_MEDIAN_FRAMES = 10
DURATION_SIGMA = 0.5
DURATION_WEIGHT = 3.0
# How BOUNDARY_WEIGHT, CLOSURE_LOGP and the duration prior were set: on the aligner's held-out validation
# clips (languages, voice variants and festival voices never trained on; ALIGNER_CARD.md), clean and
# degraded, aligned with their pauses as word breaks: mean boundary error 13.7 -> 12.0 ms, 81.7 -> 83.7 %
# within 20 ms.  A heavier duration prior scores a little better there still, but its synthetic phones are
# long; TIMIT's real connected speech (universal aligner alone) was the guard: 15.7 -> 15.1 ms with these
# values, worse again from DURATION_WEIGHT 4.  Never chosen on ../shared/data/speech/multilingual_dev.
# Viterbi keeps, per frame, only the band of states within this many nats of the best (the graph is
# left to right, so the band slides along the transcript): hours of audio in windows of hundreds of
# words cost the band, not the whole chain.  Small problems (words, sentences) run the full search.
VITERBI_BEAM = 300.0
BAND_MIN_CELLS = 2_000_000  # frames x states above which the band is used
SINGLE_PASS_S = 30.0  # recordings up to this length are aligned in one piece
WINDOW_S = 20.0  # window length for longer ones
SQUEEZED_MISMATCH = 0.45  # above this share of phones at their minimum length: the transcript does not fit


# -- features ----------------------------------------------------------------------------------------

def normalize_features(mel: np.ndarray) -> np.ndarray:
    """The network's input: (T, 80), two views of the log-mel frames (T, 40).

    * minus the mean spectrum of the louder frames (within 30 dB of the loud
      ones): a fixed microphone or room colouring is a constant offset per band
      in the log domain, so this removes it, and the share of pauses in a
      recording does not move it;
    * minus the recording's floor spectrum (10th percentile per band): how far
      each band stands above the background, so a faint fricative or a fading
      vowel over a quiet background is told from a pause, and a pause in a
      noisy recording looks like one.
    """
    return apply_feature_stats(mel, feature_stats(mel))


def feature_stats(mel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The recording's two reference spectra for `normalize_features`: the mean of its louder frames and
    its floor (10th percentile per band), each (1, 40)."""
    mel = np.asarray(mel, np.float32)
    if len(mel) == 0:
        return np.zeros((1, mel.shape[1]), np.float32), np.zeros((1, mel.shape[1]), np.float32)
    level = mel.mean(axis=1)
    loud = level >= np.percentile(level, 95) - 3.0
    return mel[loud].mean(axis=0, keepdims=True), np.percentile(mel, 10, axis=0, keepdims=True).astype(np.float32)


def apply_feature_stats(mel: np.ndarray, stats: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """`normalize_features` of some frames with the whole recording's `feature_stats` (block by block)."""
    mel = np.asarray(mel, np.float32)
    if len(mel) == 0:
        return np.zeros((0, 2 * mel.shape[1]), np.float32)
    return np.concatenate([mel - stats[0], mel - stats[1]], axis=1)


def recording_log_mel(rec) -> np.ndarray:
    """`log_mel` of a `toolkit.recording.Recording`, read block by block (the same frames; the audio is
    never whole in memory, the frames are 2.4 MB a minute)."""
    from toolkit.motion.features import MelStreamer

    streamer = MelStreamer()
    parts = [streamer.push(block) for _, _, block in rec.blocks()]
    parts.append(streamer.flush())
    parts = [p for p in parts if len(p)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 40), np.float32)


def level_above_floor_db(mel: np.ndarray) -> np.ndarray:
    """Per frame, the loudness (dB) above the recording's noise floor (its 10th percentile)."""
    mel = np.asarray(mel)
    db = np.concatenate([10.0 * np.log10(np.sum(10.0 ** mel[a:a + 65536].astype(np.float64), axis=1) + 1e-12)
                         for a in range(0, len(mel), 65536)] or [np.zeros(0)])  # in blocks: bounded memory
    return (db - np.percentile(db, 10)).astype(np.float32) if len(db) else db.astype(np.float32)


def frame_features(samples: np.ndarray) -> np.ndarray:
    """The network's input frames (T, 80) for 16 kHz mono audio; frame i is centred at i * 10 ms."""
    return normalize_features(log_mel(np.asarray(samples, np.float32)))


# -- the network (numpy inference) ---------------------------------------------------------------------

@dataclass
class FrameOutput:
    """Per-frame log-probabilities: one (T, n_values) array per feature, and of a phone starting here."""

    logp: dict[str, np.ndarray]
    boundary: np.ndarray  # (T,) log p(phone starts at this frame)
    no_boundary: np.ndarray  # (T,) log(1 - p)
    level_db: np.ndarray | None = None  # (T,) loudness above the recording's noise floor

    def frames(self, f0: int, f1: int) -> "FrameOutput":
        """The output for frames [f0, f1)."""
        return FrameOutput({h: v[f0:f1] for h, v in self.logp.items()}, self.boundary[f0:f1], self.no_boundary[f0:f1],
                           None if self.level_db is None else self.level_db[f0:f1])

    @property
    def n_frames(self) -> int:
        return len(self.boundary)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


class FrameClassifier:
    """The feature classifier as plain numpy arrays (no torch at run time).

    Layers (all over time, channels last): a 3-frame input convolution, then
    residual blocks ``x + W_pw relu(dwconv_d(x) * bn)``, a ReLU and one linear
    output with a group of logits per feature and one boundary logit.
    """

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict | None = None) -> None:
        self.a = {k: np.asarray(v, np.float32) for k, v in arrays.items()}
        self.dilations = [int(d) for d in self.a["dilations"]]
        self.meta = meta or {}
        sizes = [len(FEATURE_VALUES[h]) for h in HEADS]
        self.slices = dict(zip(HEADS, [slice(a, b) for a, b in zip(np.cumsum([0] + sizes[:-1]), np.cumsum(sizes))]))
        self.receptive = 1 + sum(2 * 2 * d for d in self.dilations)  # input conv +-1, each block +-2d

    @classmethod
    @functools.lru_cache(maxsize=4)
    def load(cls, path: str | Path | None = None) -> "FrameClassifier":
        import json

        path = Path(path or ALIGNER_WEIGHTS)
        if not path.exists():
            raise FileNotFoundError(f"{path}: the universal aligner's weights are missing (see assets/model/ALIGNER_CARD.md)")
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "meta"}
            meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
        return cls(arrays, meta)

    @property
    def n_params(self) -> int:
        return int(sum(v.size for k, v in self.a.items() if k not in ("dilations", "mean", "std")
                       and not k.startswith("prior_")))

    def _logits(self, x: np.ndarray) -> np.ndarray:
        a = self.a
        x = (x - a["mean"]) / a["std"]
        T = len(x)
        xp = np.pad(x, ((1, 1), (0, 0)))
        h = np.concatenate([xp[0:T], xp[1:T + 1], xp[2:T + 2]], axis=1) @ a["in_w"].T + a["in_b"]
        for k, d in enumerate(self.dilations):
            w, b = a[f"dw{k}_w"], a[f"dw{k}_b"]  # (C, 5), (C,) with the batch norm folded in
            hp = np.pad(h, ((2 * d, 2 * d), (0, 0)))
            y = b + sum(hp[j * d: j * d + T] * w[:, j] for j in range(w.shape[1]))
            h = h + np.maximum(y, 0.0) @ a[f"pw{k}_w"].T + a[f"pw{k}_b"]
        return np.maximum(h, 0.0) @ a["out_w"].T + a["out_b"]

    def logits(self, feats: np.ndarray, block: int = 4000, prepare=None) -> np.ndarray:
        """Raw outputs (T, n_out) for normalized features, computed in overlapping blocks (bounded memory).
        ``prepare``: made per block from other frames (`infer_mel`: log-mel frames, normalized there)."""
        T = len(feats)
        prepare = prepare or (lambda x: x)
        if T <= block + 2 * self.receptive:
            return self._logits(prepare(feats))
        out, r = [], self.receptive
        for a in range(0, T, block):
            lo, hi = max(0, a - r), min(T, a + block + r)
            out.append(self._logits(prepare(feats[lo:hi]))[a - lo: a - lo + min(block, T - a)])
        return np.concatenate(out)

    def infer_mel(self, mel: np.ndarray) -> FrameOutput:
        """`infer` from log-mel frames, normalized block by block (`feature_stats` of the whole recording):
        the same scores without the (T, 80) input in memory at once."""
        stats = feature_stats(mel)
        return self.infer(mel, prepare=lambda m: apply_feature_stats(m, stats))

    def infer(self, feats: np.ndarray, prepare=None) -> FrameOutput:
        """Per-frame scores.  Each feature's log-probabilities are divided by its training prior (to the
        power `PRIOR_SCALE`): the hybrid network/HMM 'scaled likelihood', so a rare class (a nasal, a
        lateral) is not outvoted by the common one (a vowel) that the network leans to when unsure."""
        z = self.logits(feats, prepare=prepare)
        logp = {h: _log_softmax(z[:, s]) for h, s in self.slices.items()}
        for h in logp:
            if f"prior_{h}" in self.a:
                logp[h] = logp[h] - PRIOR_SCALE * np.log(self.a[f"prior_{h}"] + 1e-4)
        b = z[:, -1]
        return FrameOutput(logp, -np.logaddexp(0.0, -b), -np.logaddexp(0.0, b))


# -- the transcript as a chain of states ---------------------------------------------------------------

@dataclass
class StateGraph:
    """A left-to-right graph of states.  Per state: its target (row of ``targets``), the phone it belongs
    to (-1: a pause), whether a phone or pause starts there, whether it may repeat, the states a path may
    come from and the log prior of each such move, and where a path may begin and end."""

    targets: list[Features]
    closure: list[bool]  # per target: a stop that may also be heard as its silent closure (`CLOSURE_LOGP`)
    target: np.ndarray  # (S,) index into targets
    phone: np.ndarray  # (S,) index into the phone list, -1 for a pause
    starts: np.ndarray  # (S,) bool: first state of a phone or of a pause
    loop: np.ndarray  # (S,) bool: may stay
    pred: np.ndarray  # (S, P) states a path may come from (besides staying), -1: none
    pred_logp: np.ndarray  # (S, P) log prior of that move (a phone left early: `duration_logprior`)
    first: np.ndarray  # (S,) bool: a path may begin here
    end_logp: np.ndarray  # (S,) log prior of ending here (-inf: not an end), all words aligned
    word_end_logp: np.ndarray  # (S,) the same when the end is open (after any word)
    labels: list[str]  # phone labels
    word_of_phone: list[int]


def _phone_chain(label: str) -> list[tuple[Features, int]]:
    """(target, min frames) per part of a phone."""
    parts = phone_parts(label)
    total = 1 if _short(label) and len(parts) == 1 else MIN_PHONE_FRAMES
    mins = [1] * len(parts)
    mins[-1] = max(1, total - (len(parts) - 1))
    return list(zip(parts, mins))


def _short(label: str) -> bool:
    b = base_symbol(label)
    return bool(b) and b[0] in SHORT_SOUNDS


def duration_logprior(frames: int, median_frames: float = DURATION_MEDIAN_FRAMES) -> float:
    """Log prior of a phone lasting ``frames`` frames, relative to a long enough one: the left half of a
    log-normal with its median at ``median_frames`` (`DURATION_SIGMA` wide), times `DURATION_WEIGHT`.

    Without it, a weak acoustic match lets one vowel run over its neighbours and crushes the rest of the
    word into its last frames; with it, a 20 ms phone costs ~16 nats, a 40 ms one ~5, a 60 ms one ~1.6.

    >>> round(duration_logprior(2), 2), round(duration_logprior(4), 2), duration_logprior(10)
    (-15.54, -5.04, 0.0)
    """
    if frames >= median_frames:
        return 0.0
    return -DURATION_WEIGHT * float(np.log(frames / median_frames) ** 2) / (2 * DURATION_SIGMA ** 2)


def build_graph(words: list[list[str]]) -> StateGraph:
    """States for words of IPA phones, with an optional pause before, between and after them.

    A phone is a chain of its parts, each a chain of its minimum number of
    frames whose last state may repeat; the last part is a chain long enough
    to count the phone's duration, so leaving it early costs `duration_logprior`.
    A pause between words is at least `SILENCE_MIN_FRAMES` long, one at either
    end at least a frame (the recording may start or stop right at the speech).
    """
    targets: list[tuple[Features, bool]] = [(SILENCE, False)]
    index = {targets[0]: 0}
    rows: list[list] = []  # [target, phone, starts, loop]
    preds: list[list[tuple[int, float]]] = []
    labels, word_of_phone = [], []
    exits: list[tuple[int, float]] = []  # how the unit so far may be left: (state, log prior)
    pause_last: list[int] = []
    skip: list[tuple[int, float]] = []  # ... and the unit before an optional pause in front

    def add(target: int, phone: int, starts: bool, loop: bool, pred: list[tuple[int, float]]) -> int:
        rows.append([target, phone, starts, loop])
        preds.append(pred)
        return len(rows) - 1

    def add_pause(n: int) -> None:
        nonlocal exits, skip
        before = list(exits)
        s = add(0, -1, True, n == 1, list(exits))
        for j in range(1, n):
            s = add(0, -1, False, j == n - 1, [(s, 0.0)])
        exits, skip = [(s, 0.0)], before
        pause_last.append(s)

    add_pause(1)
    first = [0]
    word_exits: list[list[tuple[int, float]]] = []
    for w, phones in enumerate(words):
        for n, label in enumerate(phones):
            labels.append(label)
            word_of_phone.append(w)
            chain = _phone_chain(label)
            median = DURATION_MEDIAN_FRAMES / 2 if _short(label) else DURATION_MEDIAN_FRAMES
            done = 0  # minimum frames of the parts before
            for k, (f, m) in enumerate(chain):
                # a word's first stop starts where its burst's closure starts: in the pause before, unheard;
                # there the boundary is left to the pause/stop decision, elsewhere the closure may be silent
                key = (f, f.manner == "stop" and (n > 0 or k > 0))
                t = index.setdefault(key, len(targets))
                if t == len(targets):
                    targets.append(key)
                last = k == len(chain) - 1
                length = max(m, int(np.ceil(median)) - done) if last else m
                pred = exits + (skip if n == 0 else []) if k == 0 else [(len(rows) - 1, 0.0)]
                s = add(t, len(labels) - 1, k == 0, length == 1, pred)
                if n == 0 and w == 0 and k == 0:
                    first.append(s)
                part_exits = [(s, duration_logprior(done + 1, median))] if m <= 1 else []
                for j in range(1, length):
                    s = add(t, len(labels) - 1, False, j == length - 1, [(s, 0.0)])
                    if j + 1 >= m:
                        part_exits.append((s, duration_logprior(done + j + 1, median) if last else 0.0))
                exits, skip = part_exits, []
                done += m
        word_exits.append(list(exits))
        add_pause(SILENCE_MIN_FRAMES if w < len(words) - 1 else 1)
    S, P = len(rows), max(len(p) for p in preds)
    r = np.array(rows, dtype=np.int64)
    pred = np.full((S, P), -1, np.int64)
    pred_logp = np.full((S, P), -np.inf)
    for s, ps in enumerate(preds):
        for j, (q, lp) in enumerate(ps):
            pred[s, j], pred_logp[s, j] = q, lp
    start = np.zeros(S, bool)
    start[first] = True
    end_logp = np.full(S, -np.inf)
    end_logp[S - 1] = 0.0
    word_end_logp = np.full(S, -np.inf)
    if word_exits:
        for q, lp in word_exits[-1]:
            end_logp[q] = lp
        for ex in word_exits:
            for q, lp in ex:
                word_end_logp[q] = lp
        word_end_logp[pause_last[1:]] = 0.0  # the pauses after words
    return StateGraph([f for f, _ in targets], [c for _, c in targets], r[:, 0], r[:, 1], r[:, 2].astype(bool),
                      r[:, 3].astype(bool), pred, pred_logp, start, end_logp, word_end_logp, labels, word_of_phone)


def target_scores(out: FrameOutput, targets: list[Features], weights: dict[str, float] | None = None,
                  closure: list[bool] | None = None) -> np.ndarray:
    """(T, n_targets): per frame, the weighted sum of each target's feature log-probabilities.

    Pauses score lower on frames well above the noise floor (`LOUD_DB`); the stops ``closure`` marks
    may score as their silent closure (`CLOSURE_LOGP`).
    """
    weights = weights or HEAD_WEIGHTS
    closure = closure or [False] * len(targets)
    targets = list(targets) + [SILENCE]
    score = np.zeros((out.n_frames, len(targets)), np.float32)
    for h in HEADS:
        cls = [FEATURE_VALUES[h].index(getattr(f, h)) for f in targets]
        score += weights[h] * out.logp[h][:, cls]
    silent = score[:, -1]
    if out.level_db is not None:
        silent = silent - LOUD_SLOPE * np.maximum(0.0, out.level_db - LOUD_DB)
    for j, f in enumerate(targets[:-1]):
        if f.manner == "sil":
            score[:, j] = silent
        elif closure[j]:
            score[:, j] = np.logaddexp(score[:, j], silent + CLOSURE_LOGP)
    return score[:, :-1]


# -- Viterbi -----------------------------------------------------------------------------------------

def viterbi(emit: np.ndarray, g: StateGraph, enter: np.ndarray, stay: np.ndarray, *, open_end: bool = False
            ) -> tuple[np.ndarray, float]:
    """Best state per frame through the graph, and its score.

    emit: (T, S) per-state frame scores; enter / stay: (T,) extra score for
    starting a phone (or pause) at a frame and for not starting one.  The path
    begins in the leading pause or the first phone and ends in the trailing
    pause or the last phone, or (``open_end``) after any word.  Raises
    ValueError when the audio is too short for the transcript.
    """
    T, S = emit.shape
    neg = -1e30
    no_loop = np.where(g.loop, 0.0, neg)
    src = np.where(g.pred >= 0, g.pred, 0)
    move = np.where(g.pred >= 0, g.pred_logp, neg)
    reach = int(np.max(np.arange(S)[:, None] - np.where(g.pred >= 0, g.pred, np.arange(S)[:, None]))) if S else 0
    back = np.zeros((T, S), np.int8)  # -1 stayed, j came from pred[s, j]
    delta = np.where(g.first, emit[0], neg)
    lo, hi = 0, S  # the band of states worth computing (`VITERBI_BEAM`)
    for t in range(1, T):
        # states left of the band cannot come back within the beam (the graph only moves right); one
        # move reaches at most `reach` states right of the band's last live state
        b = min(S, hi + reach + 1)
        cand = delta[src[lo:b]] + move[lo:b]
        j = cand.argmax(axis=1)
        came = cand[np.arange(b - lo), j] + np.where(g.starts[lo:b], enter[t], stay[t])
        stayed = delta[lo:b] + no_loop[lo:b] + stay[t]
        keep = stayed >= came
        back[t, lo:b] = np.where(keep, -1, j)
        band = np.where(keep, stayed, came) + emit[t, lo:b]
        delta = np.full(S, neg)
        delta[lo:b] = band
        if T * S > BAND_MIN_CELLS:
            live = np.flatnonzero(band > band.max() - VITERBI_BEAM)
            lo, hi = lo + int(live[0]), lo + int(live[-1])
            delta[:lo] = neg
        else:
            hi = b - 1
    final = delta + np.maximum(g.word_end_logp if open_end else g.end_logp, neg)
    s = int(np.argmax(final))
    score = float(final[s])
    if score <= neg / 2:
        raise ValueError("the audio is too short for the transcript")
    path = np.zeros(T, np.int64)
    for t in range(T - 1, -1, -1):
        path[t] = s
        if back[t, s] >= 0 and t > 0:
            s = int(g.pred[s, back[t, s]])
    return path, score


def boundary_time_frames(k: int, p_start: np.ndarray | None) -> float:
    """Where a boundary before frame ``k`` lies, in frames: halfway between frame centres (k - 0.5), moved
    by up to half a frame towards the peak of a parabola through the boundary probabilities at k-1, k, k+1
    (sub-frame timing from a network that speaks every 10 ms)."""
    if p_start is None or k <= 0 or k + 1 >= len(p_start):
        return k - 0.5
    a, b, c = p_start[k - 1], p_start[k], p_start[k + 1]
    curve = a - 2 * b + c
    if b < max(a, c) or curve >= 0:
        return k - 0.5
    return k - 0.5 + float(np.clip(0.5 * (a - c) / curve, -0.5, 0.5))


def _segments(path: np.ndarray, g: StateGraph, t0_s: float, end_s: float, p_start: np.ndarray | None = None
              ) -> list[tuple[int, float, float]]:
    """(phone index, start_s, end_s) of each phone on the path (`boundary_time_frames`)."""
    ph = g.phone[path]
    out = []
    change = np.flatnonzero(np.diff(ph) != 0) + 1
    bounds = np.concatenate([[0], change, [len(ph)]])
    for a, b in zip(bounds[:-1], bounds[1:]):
        if ph[a] >= 0:
            s = t0_s + max(0.0, boundary_time_frames(int(a), p_start) * FRAME_S)
            e = t0_s + boundary_time_frames(int(b), p_start) * FRAME_S
            out.append((int(ph[a]), float(s), float(min(e, end_s))))
    return out


@dataclass
class _Piece:
    phones: list[Segment]
    words: list[Segment]
    squeezed: float
    agreement: float


def _align_piece(out: FrameOutput, f0: int, f1: int, words: list[tuple[str, list[str]]], t_end_s: float,
                 open_end: bool = False) -> tuple[_Piece, int, np.ndarray, StateGraph]:
    """Align ``words`` to frames [f0, f1); returns the piece, how many words it used, the path and graph."""
    g = build_graph([p for _, p in words])
    sub = out.frames(f0, f1)
    scores = target_scores(sub, g.targets, closure=g.closure)
    emit = scores[:, g.target]
    path, _ = viterbi(emit, g, BOUNDARY_WEIGHT * sub.boundary, BOUNDARY_WEIGHT * sub.no_boundary, open_end=open_end)
    segs = _segments(path, g, f0 * FRAME_S, t_end_s, np.exp(sub.boundary) if SUBFRAME else None)
    n_words = (g.word_of_phone[segs[-1][0]] + 1) if segs else 0
    phones, wsegs = [], []
    for w in range(n_words):
        mine = [(s, e, g.labels[p]) for p, s, e in segs if g.word_of_phone[p] == w]
        if not mine:
            continue
        phones += [Segment(lab, s, e) for s, e, lab in mine]
        wsegs.append(Segment(words[w][0], mine[0][0], mine[-1][1]))
    mins = {p: sum(m for _, m in _phone_chain(g.labels[p])) for p, _, _ in segs}
    squeezed = float(np.mean([round((e - s) / FRAME_S) <= mins[p] for p, s, e in segs])) if segs else 1.0
    best = np.max(scores, axis=1)
    agreement = float(np.mean(emit[np.arange(len(path)), path] >= best - 1e-6)) if len(path) else 0.0
    return _Piece(phones, wsegs, squeezed, agreement), n_words, path, g


def _word_list(words) -> list[tuple[str, list[str]]]:
    out = []
    for w in words:
        text, phones = _word_parts(w)
        if not phones:
            from toolkit.phonemes.g2p import words_to_phonemes

            phones = [p for x in words_to_phonemes(text, "en") for p in x.phones]
        phones = [p for p in phones if base_symbol(p)]
        if phones:
            out.append((text, phones))
    return out


def check_phones(words: list[tuple[str, list[str]]]) -> None:
    """Raise ValueError naming the first phone the aligner cannot describe."""
    for text, phones in words:
        for p in phones:
            try:
                phone_parts(p)
            except KeyError:
                raise ValueError(f"word {text!r}: phone {p!r} has a symbol the IPA table does not know") from None


def align_universal(samples: np.ndarray, sample_rate: int, words, *, source: str = "audio",
                    model: FrameClassifier | None = None) -> Alignment:
    """Align words (`Word` objects or (text, IPA phones) pairs) to speech with the any-language aligner.

    ``samples``: mono audio at ``sample_rate``, or a 16 kHz `toolkit.recording.Recording` of any length,
    read block by block (memory holds the classifier's scores, ~0.1 GB an hour, never the audio)."""
    from toolkit.recording import Recording

    if isinstance(samples, Recording):
        rec = samples
    else:
        samples = np.asarray(samples, np.float32)
        if sample_rate != SAMPLE_RATE:
            from toolkit.audio import resample

            samples = resample(samples, sample_rate, SAMPLE_RATE)
        rec = Recording.from_array(samples, source)
    duration = rec.duration_s
    words = _word_list(words)
    check_phones(words)
    if not words:
        return Alignment([Segment("", 0.0, duration)] if duration > 0 else [], [], 0.0, "universal",
                         [f"{source}: no words to align"])
    model = model or FrameClassifier.load()
    mel = recording_log_mel(rec)
    out = model.infer_mel(mel)
    out.level_db = level_above_floor_db(mel)
    del mel
    warnings: list[str] = []
    pieces = _align_all(out, words, duration, rec, source, warnings)
    phones = [p for pc in pieces for p in pc.phones]
    wsegs = [w for pc in pieces for w in pc.words]
    n = np.array([max(1, len(pc.phones)) for pc in pieces], float)
    squeezed = float(np.sum(n * [pc.squeezed for pc in pieces]) / n.sum())
    agreement = float(np.sum(n * [pc.agreement for pc in pieces]) / n.sum())
    if squeezed > SQUEEZED_MISMATCH and len(phones) >= 6:
        warnings.append(f"{source}: {squeezed:.0%} of the phones were squeezed to their minimum length; "
                        "does the transcript match the audio?")
    # agreement 0.5 (half the frames as the classifier would hear them freely) or more is a good fit
    confidence = float(np.clip(0.3 + 1.4 * agreement, 0.0, 1.0) * np.clip(1.5 - 1.5 * squeezed, 0.2, 1.0))
    return Alignment(_fill_silence(phones, 0.0, duration), wsegs, round(confidence, 3), "universal", warnings)


def _speech_s(level_db: np.ndarray) -> float:
    """Seconds of speech: frames louder than `SPEECH_LEVEL` of the way from the floor to the speech level
    (the rule of `speech_regions`, on the classifier's frames instead of a second pass over the audio;
    ``level_db`` is already measured from the floor)."""
    if level_db is None or len(level_db) == 0:
        return 0.0
    return float(np.sum(level_db > SPEECH_LEVEL * np.percentile(level_db, 95))) * FRAME_S


def _align_all(out: FrameOutput, words, duration: float, rec, source: str, warnings: list[str]) -> list[_Piece]:
    T = out.n_frames
    n_states = sum(sum(m for _, m in _phone_chain(p)) for _, ph in words for p in ph)
    if duration <= SINGLE_PASS_S or T < 2 * n_states:
        piece = _piece_or_even(out, 0, T, words, duration, rec, source, warnings)
        progress.advance("align", duration)
        return [piece]
    pieces, k, f0 = [], 0, 0
    win = int(WINDOW_S / FRAME_S)
    weights = np.array([len(p) for _, p in words], float)
    speech_s = _speech_s(out.level_db) or duration
    rate = weights.sum() / speech_s  # phones per second of speech
    while k < len(words):
        f1 = min(T, f0 + win)
        rest = words[k:]
        if (T - f0) * FRAME_S <= SINGLE_PASS_S:
            pieces.append(_piece_or_even(out, f0, T, rest, duration, rec, source, warnings))
            break
        # at most ~2.5x the words an average pace puts in the window (keeps the chain small)
        budget = np.cumsum(weights[k:])
        n_try = int(min(len(rest), np.searchsorted(budget, 2.5 * rate * (f1 - f0) * FRAME_S) + 3))
        try:
            piece, _, path, g = _align_piece(out, f0, f1, rest[:n_try], f1 * FRAME_S, open_end=True)
        except ValueError:  # more words than the window can hold even at their shortest: take the rest at once
            pieces.append(_piece_or_even(out, f0, T, rest, duration, rec, source, warnings))
            break
        # cut in the longest pause in the second half of the window (not in its last second)
        sil = g.phone[path] < 0
        best, cut = 0, None
        runs = np.flatnonzero(np.diff(np.concatenate([[0], sil.astype(np.int8), [0]])) != 0).reshape(-1, 2)
        for a, b in runs:
            mid = (a + b) // 2
            prev_phone = g.phone[path[a - 1]] if a > 0 else -1
            if a > 0 and prev_phone >= 0 and 0.4 * win <= mid <= (f1 - f0) - 100 and b - a >= best:
                best, cut = b - a, (mid, g.word_of_phone[prev_phone] + 1)
        if cut is None:  # no pause: cut after the last word that ends before the window's last 2 s
            ends = [(int(round((w.end / FRAME_S))) - f0, i + 1) for i, w in enumerate(piece.words)
                    if w.end / FRAME_S < f1 - 200]
            if not ends:
                warnings.append(f"{source} {f0 * FRAME_S:.1f}-{f1 * FRAME_S:.1f} s: no place to cut; "
                                "aligned the rest in one piece")
                pieces.append(_piece_or_even(out, f0, T, rest, duration, rec, source, warnings))
                break
            cut = ends[-1]
        f_cut, n_words = f0 + cut[0], cut[1]
        pieces.append(_piece_or_even(out, f0, f_cut, rest[:n_words], f_cut * FRAME_S, rec, source, warnings))
        progress.advance("align", (f_cut - f0) * FRAME_S)  # the search dominates; the classifier is ~1/6
        f0, k = f_cut, k + n_words
    progress.advance("align", duration - f0 * FRAME_S)  # the rest, taken in one piece
    return pieces


def _piece_or_even(out: FrameOutput, f0: int, f1: int, words, t_end_s: float, rec, source: str,
                   warnings: list[str]) -> _Piece:
    """`_align_piece`, or, when the audio is too short for the words even at their minimum durations,
    the words spread evenly over the speech there (with a warning; the piece counts as squeezed)."""
    try:
        return _align_piece(out, f0, f1, words, t_end_s)[0]
    except ValueError:
        t0 = f0 * FRAME_S
        seg = rec.read(int(t0 * SAMPLE_RATE), min(len(rec), int(t_end_s * SAMPLE_RATE)))
        regions = [(a + t0, b + t0) for a, b in speech_regions(seg, SAMPLE_RATE)] if len(seg) else []
        ev = even_alignment(words, t_end_s, regions or [(t0, t_end_s)])
        warnings.append(f"{source} {t0:.1f}-{t_end_s:.1f} s: too short for its {len(words)} word(s); "
                        "words spread evenly over the speech")
        return _Piece([p for p in ev.phonemes if p.label], ev.words, 1.0, 0.0)
