"""Neural audio-to-face regressor: log-mel in, visemes + jaw/lip curves out.

The network (`toolkit.motion.network`, numpy, ~0.36 M parameters) is strictly
causal: three causal dilated convolutions, a GRU and two linear heads.  Its look-ahead is a
fixed *delay*: the output at input frame ``t`` describes frame ``t - DELAY``
(40 ms earlier), so the model hears 40 ms past the frame it animates.  With
the 10 ms look-ahead of the feature window and at most 10 ms of linear
interpolation to the output frame rate, the streaming latency is at most
60 ms.  Offline inference pads the end with DELAY frames of silence, and
`Streamer.flush` does the same, so offline and streaming give the same curves.

Outputs per 100 Hz frame:

* ``logits``  15 viseme classes (what is being said); their sharpened
  probabilities are the animation's viseme weights,
* ``curves``  the coarticulated viseme weights and ARKit jaw/lip channels of
  `toolkit.visemes.coarticulation` (listed in the checkpoint), which carry the
  loudness-dependent jaw opening, rounding and lip tension; the ARKit ones are
  the animation's jaw/lip channels (lips sealed where a bilabial is heard).

Head rotation and blinks come from `toolkit.motion.procedural` (seeded).

Example
-------
>>> import numpy as np
>>> anim = NeuralAnimator.load().predict(np.zeros(16000, np.float32), 16000, fps=30)  # doctest: +SKIP
>>> anim.n_frames                                                                        # doctest: +SKIP
30
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from toolkit.animation import CHANNELS, VISEME_CHANNELS, VISEMES, Animation
from toolkit.audio import as_float_samples, resample
from toolkit.motion import procedural
from toolkit.motion.features import FLOOR, FRAME_RATE, LOOKAHEAD_S, N_MELS, SAMPLE_RATE, MelStreamer, log_mel
from toolkit.motion.network import Network, read_weights
from toolkit.resources import NEURAL_WEIGHTS
from toolkit.visemes.tables import CLOSURE_VISEMES, CONTACT_VISEMES, VISEME_POSES

DELAY = 4  # frames of model look-ahead (40 ms)
DEFAULT_WEIGHTS = NEURAL_WEIGHTS
SILENCE_FEATURE = float(np.log10(FLOOR))  # log_mel of digital silence
_VIS_IDX = [CHANNELS.index(c) for c in VISEME_CHANNELS]
_PP = VISEMES.index("PP")
VISEME_SHARPNESS = 2.0  # exponent on the class probabilities: confident sounds reach full weight
# Longer audio goes through the `Streamer` block by block (the same curves): the offline path's
# features and FFT frames would take ~0.4 GB per minute of audio.
STREAM_FROM_S = 60.0


def latency_s(fps: float) -> float:
    """Worst-case algorithmic latency of streaming output at ``fps`` (feature + model look-ahead + interpolation)."""
    interp = 0.0 if abs(fps - FRAME_RATE) < 1e-9 else 1.0 / FRAME_RATE
    return LOOKAHEAD_S + DELAY / FRAME_RATE + interp


class NeuralAnimator:
    """Trained weights + inference: `predict` (offline) and `streamer` (chunks)."""

    def __init__(self, net: Network | None, curve_channels: list[str], meta: dict | None = None) -> None:
        self.net = net
        self.curve_channels = list(curve_channels)
        self._curve_idx = np.array([CHANNELS.index(c) for c in self.curve_channels])
        self.meta = dict(meta or {})

    @property
    def logit_bias(self) -> np.ndarray:
        """Class-prior correction calibrated on validation data (`toolkit.train.audio2face.calibrate_pp_bias`)."""
        b = np.zeros(len(VISEMES), np.float32)
        b[_PP] = float(self.meta.get("pp_logit_bias", 0.0))
        return b

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "NeuralAnimator":
        """The shipped model (``assets/model/audio2face.npz``) or the weights file ``path``; numpy only.

        The shipped one is read once per process (every later call shares it)."""
        return _load(str(Path(path) if path is not None else DEFAULT_WEIGHTS))

    @property
    def n_params(self) -> int:
        return self.net.n_params

    # -- inference ---------------------------------------------------------------------------
    def network_outputs(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw logits (T, 15) and curves (T, K) for 100 Hz log-mel (T, 40), offline."""
        logits, curves, _ = self.net.forward(feats)
        return logits, curves

    def infer_features(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """100 Hz log-mel (T, 40) -> viseme probabilities (T, 15) and curves (T, K), offline.

        The clip's end is padded with DELAY frames of silence, so the last frames are heard too."""
        pad = np.full((DELAY, feats.shape[1]), SILENCE_FEATURE, np.float32)
        logits, curves = self.network_outputs(np.concatenate([feats, pad]).astype(np.float32))
        return _softmax(logits[DELAY:] + self.logit_bias), curves[DELAY:]

    def frames_100hz(self, probs: np.ndarray, curves: np.ndarray, intensity: float = 1.0) -> np.ndarray:
        """Model outputs -> canonical channel values at 100 Hz (frames x CHANNELS), no procedural layers.

        Viseme weights are the classifier's probabilities, sharpened (``p**2``,
        renormalized) so a confident sound shows fully; jaw and lip channels are
        the regressed coarticulation curves, with the lips sealed wherever the
        classifier hears a bilabial (the curves alone are averages and may not close).
        """
        out = np.zeros((curves.shape[0], len(CHANNELS)), np.float32)
        out[:, self._curve_idx] = np.clip(curves, 0.0, 1.0)
        p = np.asarray(probs, np.float32) ** VISEME_SHARPNESS
        p /= np.maximum(p.sum(axis=1, keepdims=True), 1e-9)
        # as rule_bilabial_closure / rule_labiodental_contact of the aligned path: a heard
        # /p b m/ or /f v/ is shown fully (0.9), whatever its neighbours
        top = p.argmax(axis=1)
        for v in CLOSURE_VISEMES + CONTACT_VISEMES:
            k = VISEMES.index(v)
            sel = (top == k) & (p[:, k] < 0.9)
            if sel.any():
                rest = np.maximum(1.0 - p[sel, k], 1e-9)[:, None]
                p[sel] *= 0.1 / rest
                p[sel, k] = 0.9
        out[:, _VIS_IDX] = p
        closed = np.clip((p[:, _PP] - 0.3) / 0.5, 0.0, 1.0)
        if closed.any():
            for name, w in VISEME_POSES["PP"].items():
                j = CHANNELS.index(name)
                out[:, j] = np.maximum(out[:, j], closed * w)
            jaw, close = CHANNELS.index("jawOpen"), CHANNELS.index("mouthClose")
            out[:, jaw] *= 1.0 - 0.7 * closed
            out[:, close] = np.maximum(out[:, close], closed * out[:, jaw])  # seal over the jaw left open
        if intensity != 1.0:  # as the coarticulation stage: mouth scales, what is taken away goes to rest
            mouth = [CHANNELS.index(c) for c in self.curve_channels if c not in VISEME_CHANNELS]
            vis = _VIS_IDX
            out[:, mouth] = np.clip(out[:, mouth] * intensity, 0, 1)
            out[:, vis[1:]] = np.clip(out[:, vis[1:]] * intensity, 0, 1)
            out[:, vis[0]] = np.clip(1.0 - out[:, vis[1:]].sum(axis=1), 0, 1)
        return out

    def predict(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE, fps: float = 30, seed: int = 0,
                intensity: float = 1.0, blinks: bool = True, head_motion: bool = True) -> Animation:
        """Audio (float mono array) -> `Animation` at ``fps`` with the canonical channels.

        Visemes and jaw/lip channels come from the network; blinks and head
        motion from the seeded procedural layer.  ``intensity`` scales the
        mouth motion (1 = natural), as in `toolkit.visemes.coarticulation`.
        ``samples`` may be a `toolkit.recording.Recording` (16 kHz) of any length.
        """
        from toolkit.recording import Recording

        if len(samples) > STREAM_FROM_S * sample_rate or (isinstance(samples, Recording) and samples.array is None):
            return self._predict_streamed(samples, sample_rate, fps, seed, intensity, blinks, head_motion)
        x = self._mono16k(samples.samples() if isinstance(samples, Recording) else samples, sample_rate)
        probs, curves = self.infer_features(log_mel(x))
        grid = self.frames_100hz(probs, curves, intensity)
        grid = _add_procedural(grid, x, seed, blinks, head_motion)
        return _grid_to_animation(grid, fps, x.size / SAMPLE_RATE, {"engine": "neural", "seed": seed})

    def _predict_streamed(self, samples, sample_rate, fps, seed, intensity, blinks, head_motion) -> Animation:
        """`predict` of a long recording: a `Streamer` fed one block at a time (the same curves, flat memory)."""
        rec = self._recording(samples, sample_rate)
        values = np.zeros((max(1, int(round(rec.duration_s * fps))), len(CHANNELS)), np.float32)
        for k, rows in self._streamed_rows(rec, fps, seed, intensity, blinks, head_motion):
            values[k:k + len(rows)] = rows
        return Animation(fps, list(CHANNELS), values, meta={"engine": "neural", "seed": seed})

    def _recording(self, samples, sample_rate: int):
        from toolkit.recording import as_recording

        return as_recording(samples if hasattr(samples, "read") else self._mono16k(samples, sample_rate))

    def _streamed_rows(self, rec, fps, seed, intensity, blinks, head_motion):
        """(first frame, frames) of `predict` as a `Streamer` makes them, one block of ``rec`` at a time."""
        from toolkit import progress

        s = Streamer(self, fps, seed, intensity, blinks, head_motion)
        k = 0
        for a, b, x in rec.blocks():
            rows = s.push(x)
            yield k, rows
            k += len(rows)
            progress.advance("neural", (b - a) / SAMPLE_RATE)
        yield k, s.flush()

    def _mouth_rows(self, samples, sample_rate: int, fps: float, seed: int):
        """(first frame, frames) of `predict` without blinks or head motion: all at once for a short
        clip, block by block for a long recording (never the hour's frames at once)."""
        from toolkit.recording import Recording

        if len(samples) > STREAM_FROM_S * sample_rate or (isinstance(samples, Recording) and samples.array is None):
            yield from self._streamed_rows(self._recording(samples, sample_rate), fps, seed, 1.0, False, False)
        else:
            yield 0, self.predict(samples, sample_rate, fps=fps, seed=seed, blinks=False, head_motion=False).values

    def refine(self, aligned: Animation, samples: np.ndarray, sample_rate: int = SAMPLE_RATE, seed: int = 0,
               weight: float = 0.5, in_place: bool = False) -> Animation:
        """Hybrid: keep the aligned visemes (their timing comes from the transcript) and mix in what
        the audio shows: jaw and lip channels are blended with the network's (``weight`` = its share);
        lip closures of the alignment are kept.  ``in_place``: blend into ``aligned`` itself (the
        pipeline's own animation) instead of a copy; the network's frames are mixed block by block,
        so a long recording's animation exists once.
        """
        mouth = [c for c in self.curve_channels if c not in VISEME_CHANNELS and aligned.has(c)]
        out = aligned if in_place else Animation(aligned.fps, list(aligned.channels), aligned.values.copy(),
                                                 list(aligned.phonemes), list(aligned.words), dict(aligned.meta))
        n = out.n_frames
        if mouth:
            cols = [out.channels.index(c) for c in mouth]
            net_cols = [CHANNELS.index(c) for c in mouth]
            pp = out.channel("viseme_PP") if out.has("viseme_PP") else None
            last, k = None, 0
            for k, rows in self._mouth_rows(samples, sample_rate, out.fps, seed):
                if len(rows):
                    last = rows[-1:]
                    self._blend(out, rows[: max(0, n - k)], k, cols, net_cols, pp, weight)
                k += len(rows)
            if k < n and last is not None:  # the network ended a frame early: its last frame holds
                self._blend(out, np.repeat(last, n - k, axis=0), k, cols, net_cols, pp, weight)
        out.meta = {**aligned.meta, "refined_by": "neural"}
        return out

    @staticmethod
    def _blend(out: Animation, rows: np.ndarray, k: int, cols, net_cols, pp, weight: float) -> None:
        """Frames k.. of ``out``'s mouth channels mixed with the network's ``rows`` (in place)."""
        if not len(rows):
            return
        sl = slice(k, k + len(rows))
        a = out.values[sl][:, cols]
        mixed = (1 - weight) * a + weight * rows[:, net_cols]
        if pp is not None:
            # where the transcript says the lips close, they close: no blending there
            closed = np.clip(pp[sl] * 2 - 0.6, 0, 1)[:, None]
            mixed = closed * a + (1 - closed) * mixed
        out.values[sl, cols] = mixed

    @staticmethod
    def _mono16k(samples: np.ndarray, sample_rate: int) -> np.ndarray:
        x = np.asarray(samples, np.float32)
        if x.ndim != 1:
            raise ValueError(f"the neural model needs mono audio (a 1-D array), got shape {x.shape}")
        if sample_rate != SAMPLE_RATE:
            x = resample(x, sample_rate, SAMPLE_RATE)
        return x

    def viseme_track(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """Most likely viseme index per 100 Hz frame (into `toolkit.animation.VISEMES`)."""
        x = self._mono16k(samples, sample_rate)
        probs, _ = self.infer_features(log_mel(x))
        return probs.argmax(axis=1)

    def streamer(self, fps: float = 30, seed: int = 0, intensity: float = 1.0, blinks: bool = True,
                 head_motion: bool = True, keep: bool = False) -> "Streamer":
        """A `Streamer` whose output equals `predict` with the same arguments (``keep``: see `Streamer`)."""
        return Streamer(self, fps, seed, intensity, blinks, head_motion, keep)


def _add_procedural(grid: np.ndarray, samples: np.ndarray, seed: int, blinks: bool, head_motion: bool) -> np.ndarray:
    db = procedural.loudness_db(samples, SAMPLE_RATE)[: grid.shape[0]]
    return _procedural_step(grid, db, procedural.BlinkProcess(seed) if blinks else None,
                            procedural.HeadProcess(seed) if head_motion else None)


def _procedural_step(grid, db, blinks, head) -> np.ndarray:
    grid = grid.copy()
    if blinks is not None:
        b = blinks.step(db)
        for c in procedural.BLINK_CHANNELS:
            grid[:, CHANNELS.index(c)] = np.maximum(grid[:, CHANNELS.index(c)], b)
    if head is not None:
        h = head.step(db)
        for j, c in enumerate(procedural.HEAD_CHANNELS):
            grid[:, CHANNELS.index(c)] += h[:, j]
    return grid


def _grid_times(n_out: int, fps: float) -> np.ndarray:
    return np.arange(n_out) / fps * FRAME_RATE  # output frame times in 100 Hz frame units


def _interp_rows(grid: np.ndarray, pos: np.ndarray) -> np.ndarray:
    i0 = np.clip(np.floor(pos).astype(int), 0, grid.shape[0] - 1)
    i1 = np.clip(i0 + 1, 0, grid.shape[0] - 1)
    w = (pos - np.floor(pos))[:, None].astype(np.float32)
    return grid[i0] * (1 - w) + grid[i1] * w


def _grid_to_animation(grid: np.ndarray, fps: float, duration_s: float, meta: dict) -> Animation:
    n_out = max(1, int(round(duration_s * fps)))
    values = _interp_rows(grid, _grid_times(n_out, fps)) if grid.shape[0] else np.zeros((n_out, len(CHANNELS)))
    return Animation(fps, list(CHANNELS), values, meta=meta)


class Streamer:
    """Chunked inference: `push(chunk)` -> new output frames (n x CHANNELS) at ``fps``; `flush()` ends.

    The concatenated frames equal `NeuralAnimator.predict` on the whole clip
    (same seed).  Audio must be 16 kHz mono float.  Memory stays flat however long the
    stream runs, unless ``keep`` asks for every emitted frame (for `animation`).
    """

    def __init__(self, animator: NeuralAnimator, fps: float = 30, seed: int = 0, intensity: float = 1.0,
                 blinks: bool = True, head_motion: bool = True, keep: bool = False):
        self.a = animator
        self.fps = float(fps)
        self.seed = seed
        self._mel = MelStreamer()
        self._state = animator.net.initial_state()
        self._n_feat = 0  # feature frames fed to the network
        self._grid = np.zeros((0, len(CHANNELS)), np.float32)  # 100 Hz frames not yet fully consumed
        self._grid_offset = 0  # 100 Hz index of self._grid[0]
        self._n_out = 0
        self._n_samples = 0
        # loudness per 10 ms for the procedural layers, as `procedural.loudness_db` frames it
        self._aud_rem = np.zeros(0, np.float32)
        self._loud = np.zeros(0, np.float32)  # loudness of 100 Hz frames _n_grid on (the rest is used)
        self._n_grid = 0
        self.intensity = intensity
        self._proc = (procedural.BlinkProcess(seed) if blinks else None, procedural.HeadProcess(seed) if head_motion else None)
        self._frames: list[np.ndarray] | None = [] if keep else None

    def _run(self, feats: np.ndarray) -> None:
        if feats.shape[0] == 0:
            return
        logits, curves, self._state = self.a.net.forward(feats.astype(np.float32), self._state)
        probs = _softmax(logits + self.a.logit_bias)
        # the first DELAY outputs describe frames before time 0: drop them
        skip = max(0, DELAY - self._n_feat)
        self._n_feat += feats.shape[0]
        curves, probs = curves[skip:], probs[skip:]
        if curves.shape[0] == 0:
            return
        grid = self.a.frames_100hz(probs, curves, self.intensity)
        db, self._loud = self._loud[: grid.shape[0]], self._loud[grid.shape[0]:]
        grid = _procedural_step(grid, db, *self._proc)
        self._n_grid += grid.shape[0]
        self._grid = np.concatenate([self._grid, grid])

    def _emit(self, final: bool) -> np.ndarray:
        total = self._grid_offset + self._grid.shape[0]
        n_final = max(1, int(round(self._n_samples / SAMPLE_RATE * self.fps)))
        # output frame j sits at 100 Hz position j / fps * 100; it is final once the rows on both
        # sides of it are there (at the end, all of the clip's frames are)
        stop = n_final if final else int(total / FRAME_RATE * self.fps) + 2
        pos = np.arange(self._n_out, max(self._n_out, stop)) / self.fps * FRAME_RATE
        if not (final and total > 0):
            need = np.floor(pos) + (pos != np.floor(pos))
            pos = pos[:int(np.searchsorted(need, total))]  # need grows with j: the frames before the first missing row
        out = _interp_rows(self._grid, pos - self._grid_offset).astype(np.float32) if len(pos) else \
            np.zeros((0, len(CHANNELS)), np.float32)
        self._n_out += len(pos)
        keep_from = int(np.floor(self._n_out / self.fps * FRAME_RATE)) - self._grid_offset
        keep_from = max(0, min(keep_from, self._grid.shape[0] - 1))
        self._grid = self._grid[keep_from:]
        self._grid_offset += keep_from
        if self._frames is not None:
            self._frames.append(out)
        return out

    def _add_loudness(self, chunk: np.ndarray, final: bool) -> None:
        hop = SAMPLE_RATE // int(FRAME_RATE)
        buf = np.concatenate([self._aud_rem, chunk])
        n = buf.size // hop if not final else int(np.ceil(buf.size / hop))
        if n:
            self._loud = np.concatenate([self._loud, procedural.loudness_db(buf[: n * hop])])
        self._aud_rem = buf[n * hop:]

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Feed audio (16 kHz mono float); returns the output frames that are now final."""
        chunk = _chunk_samples(chunk)
        self._n_samples += chunk.size
        self._add_loudness(chunk, final=False)
        self._run(self._mel.push(chunk))
        return self._emit(final=False)

    def flush(self) -> np.ndarray:
        """End of stream: the remaining frames (the clip is padded with silence as offline)."""
        self._add_loudness(np.zeros(0, np.float32), final=True)
        self._run(self._mel.flush())
        self._run(np.full((DELAY, N_MELS), SILENCE_FEATURE, np.float32))
        return self._emit(final=True)

    def animation(self) -> Animation:
        """Everything emitted so far as an `Animation` (a streamer made with ``keep=True``)."""
        if self._frames is None:
            raise ValueError("this streamer keeps no frames: make it with streamer(..., keep=True)")
        vals = np.concatenate(self._frames) if self._frames else np.zeros((0, len(CHANNELS)), np.float32)
        return Animation(self.fps, list(CHANNELS), vals, meta={"engine": "neural", "seed": self.seed})


def _chunk_samples(chunk) -> np.ndarray:
    """A pushed chunk as float32 samples: integer PCM (a microphone's int16 buffers) scaled as
    `toolkit.audio.load_audio` scales it; stereo and NaN refused.  Taken as they came, int16 was
    32768 times too loud, a stereo buffer a second stream interleaved, and one NaN spoilt every
    later frame of the stream (the network's state)."""
    x = np.asarray(chunk)
    if x.ndim > 2 or (x.ndim == 2 and x.shape[1] != 1):
        raise ValueError(f"chunk: audio must be mono, 1-D or (samples, 1), got shape {x.shape}")
    x = as_float_samples(x, "chunk").reshape(-1)
    if not np.isfinite(x).all():
        raise ValueError("chunk: the audio contains NaN or infinite values")
    return x


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@lru_cache(maxsize=4)
def _load(path: str) -> NeuralAnimator:
    net, header = read_weights(path)
    return NeuralAnimator(net, header["curve_channels"], header.get("meta", {}))
