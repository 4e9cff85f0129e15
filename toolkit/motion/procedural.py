"""Seeded procedural motion: eye blinks and prosody-driven head motion.

Both layers are causal processes on a 100 Hz grid (a frame depends only on
the audio up to it and on the seed), so the offline functions and the
streaming classes give the same curves, and the same input and seed always
give the same output.

* Blinks: a renewal process, 10-20 per minute, each 150-250 ms (fast close,
  slower open), about three times as likely while the speaker pauses.
* Head: a nod (pitch, chin down) at each loudness accent, a slow seeded turn
  (yaw) and tilt (roll) whose amplitude follows speech activity, all through
  damped second-order filters so the head never snaps.

Example
-------
>>> import numpy as np
>>> from toolkit.animation import empty_animation
>>> anim = empty_animation(300, 30)
>>> x = np.random.default_rng(0).standard_normal(160000).astype(np.float32) * 0.1
>>> b = add_blinks(anim, x, 16000, seed=1)
>>> bool(0 < b.channel("eyeBlinkLeft").max() <= 1)
True
>>> h = add_head_motion(anim, x, 16000, seed=1)
>>> float(np.abs(h.channel("headPitch")).max()) < 0.3
True
"""
from __future__ import annotations

import numpy as np

from toolkit.animation import Animation

GRID_HZ = 100.0
HOP = 160  # samples per grid frame at 16 kHz

BLINK_CHANNELS = ["eyeBlinkLeft", "eyeBlinkRight"]
HEAD_CHANNELS = ["headPitch", "headYaw", "headRoll"]

_SILENCE_DB = -45.0  # frame loudness (dBFS) below which the speaker is pausing


def loudness_db(samples: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """RMS loudness in dBFS per 10 ms frame (frame i covers samples [i*hop, (i+1)*hop))."""
    hop = int(round(sample_rate / GRID_HZ))
    x = np.asarray(samples, np.float64).reshape(-1)
    n = int(np.ceil(x.size / hop))
    x = np.concatenate([x, np.zeros(n * hop - x.size)])
    rms = np.sqrt(np.mean(x.reshape(n, hop) ** 2, axis=1) + 1e-12)
    return (20.0 * np.log10(rms + 1e-9)).astype(np.float32)


class BlinkProcess:
    """Streaming blinks on the 100 Hz grid: `step(loudness_db)` -> blink weight per frame."""

    def __init__(self, seed: int = 0, rate_per_min: float = 15.0) -> None:
        self._rng = np.random.default_rng([seed, 0xB1])
        self._rate = rate_per_min
        self._t = 0  # frames since start
        self._since = 0  # frames since the last blink started
        self._blink: np.ndarray | None = None  # remaining curve of the running blink
        self._quiet = 0  # consecutive quiet frames

    @staticmethod
    def _shape(n_frames: int) -> np.ndarray:
        # close in ~1/3 of the blink, open in ~2/3 (eyelids drop faster than they rise)
        close = max(2, n_frames // 3)
        up = np.sin(np.linspace(0, np.pi / 2, close, endpoint=False)) ** 2
        down = np.cos(np.linspace(0, np.pi / 2, n_frames - close)) ** 2
        return np.concatenate([up, down]).astype(np.float32)

    def step(self, loud_db: np.ndarray) -> np.ndarray:
        out = np.zeros(len(loud_db), np.float32)
        base = self._rate / 60.0 / GRID_HZ  # blink probability per frame at the mean rate
        for i, db in enumerate(np.asarray(loud_db, np.float64)):
            self._quiet = self._quiet + 1 if db < _SILENCE_DB else 0
            if self._blink is None:
                # refractory 0.8 s, then a hazard that is higher in pauses (after 80 ms of quiet)
                hazard = 0.0 if self._since < 80 else base * (2.2 if self._quiet >= 8 else 0.7)
                hazard *= 1.0 + max(0, self._since - 500) / 200.0  # no gaps far beyond 5 s
                if self._rng.random() < hazard:
                    dur = int(self._rng.integers(15, 26))  # 150-250 ms
                    self._blink = self._shape(dur) * float(self._rng.uniform(0.9, 1.0))
                    self._since = 0
            if self._blink is not None:
                out[i] = self._blink[0]
                self._blink = self._blink[1:] if self._blink.size > 1 else None
            self._since += 1
            self._t += 1
        return out


class _Spring:
    """Critically damped second-order low-pass (natural frequency f_hz) on the 100 Hz grid."""

    def __init__(self, f_hz: float) -> None:
        w = 2 * np.pi * f_hz
        self._w, self._dt = w, 1.0 / GRID_HZ
        self.x = 0.0
        self.v = 0.0

    def __call__(self, target: float) -> float:
        # semi-implicit Euler, stable for w*dt < 1
        a = self._w * self._w * (target - self.x) - 2.0 * self._w * self.v
        self.v += a * self._dt
        self.x += self.v * self._dt
        return self.x


class HeadProcess:
    """Streaming head rotation (radians) on the 100 Hz grid from loudness."""

    def __init__(self, seed: int = 0, amount: float = 1.0) -> None:
        self._rng = np.random.default_rng([seed, 0x4EAD])
        self._amount = amount
        self._slow_db = -60.0  # slow loudness follower (the speaker's level)
        self._fast_db = -60.0
        self._activity = 0.0
        self._nod_target = 0.0
        self._since_nod = 100
        # a pose of its own from the start, so short clips are not frozen facing front
        self._yaw_target = float(self._rng.normal(0.0, 0.04))
        self._roll_target = float(self._rng.normal(0.0, 0.015))
        self._pitch, self._yaw, self._roll = _Spring(2.2), _Spring(0.6), _Spring(0.5)

    def step(self, loud_db: np.ndarray) -> np.ndarray:
        out = np.zeros((len(loud_db), 3), np.float32)
        for i, db in enumerate(np.asarray(loud_db, np.float64)):
            db = max(db, -80.0)
            self._fast_db += 0.35 * (db - self._fast_db)
            self._slow_db += 0.01 * (db - self._slow_db)
            speaking = 1.0 if db > _SILENCE_DB else 0.0
            self._activity += 0.02 * (speaking - self._activity)
            # accent: the fast level clearly above the running level -> a small nod
            accent = self._fast_db - self._slow_db
            self._since_nod += 1
            if speaking and accent > 8.0 and self._since_nod > 35:
                self._nod_target = 0.05 * min(1.0, (accent - 6.0) / 10.0) * self._rng.uniform(0.6, 1.2)
                self._since_nod = 0
            if self._since_nod > 12:
                self._nod_target *= 0.9  # the nod releases after ~120 ms
            # new gaze/turn targets every ~1.5 s on average, larger while talking
            if self._rng.random() < 1.0 / 150.0:
                self._yaw_target = self._rng.normal(0.0, 0.03 + 0.05 * self._activity)
                self._roll_target = self._rng.normal(0.0, 0.01 + 0.025 * self._activity)
            pitch = self._pitch(self._nod_target + 0.01 * self._activity)
            out[i] = (pitch, self._yaw(self._yaw_target), self._roll(self._roll_target))
        return out * self._amount


def _to_anim_rate(grid_values: np.ndarray, anim: Animation) -> np.ndarray:
    """Sample 100 Hz grid curves at the animation's frame times (linear)."""
    grid_t = np.arange(grid_values.shape[0]) / GRID_HZ
    t = anim.times_s
    cols = [np.interp(t, grid_t, grid_values[:, j]) if grid_values.shape[0] else np.zeros_like(t)
            for j in range(grid_values.shape[1])]
    return np.stack(cols, axis=1).astype(np.float32)


def _loudness_for(anim: Animation, samples, sample_rate: int) -> np.ndarray:
    n_grid = int(np.ceil(anim.duration_s * GRID_HZ)) + 1
    if samples is None:
        return np.full(n_grid, -20.0, np.float32)  # no audio: treat as continuous speech
    db = loudness_db(samples, sample_rate)
    if db.size < n_grid:
        db = np.concatenate([db, np.full(n_grid - db.size, -120.0, np.float32)])
    return db


def add_blinks(anim: Animation, audio: np.ndarray | None = None, sample_rate: int = 16000, seed: int = 0,
               rate_per_min: float = 15.0) -> Animation:
    """Add seeded eye blinks (eyeBlinkLeft/Right, max'ed with what is there); pauses in ``audio`` attract them."""
    curve = BlinkProcess(seed, rate_per_min).step(_loudness_for(anim, audio, sample_rate))
    v = _to_anim_rate(curve[:, None], anim)[:, 0]
    old = [anim.channel(c) if anim.has(c) else np.zeros(anim.n_frames, np.float32) for c in BLINK_CHANNELS]
    return anim.with_channels(BLINK_CHANNELS, np.stack([np.maximum(o, v) for o in old], axis=1))


def add_head_motion(anim: Animation, samples: np.ndarray | None, sample_rate: int = 16000, seed: int = 0,
                    amount: float = 1.0) -> Animation:
    """Add prosody-following head rotation (headPitch/Yaw/Roll, radians) to what is there."""
    curves = HeadProcess(seed, amount).step(_loudness_for(anim, samples, sample_rate))
    v = _to_anim_rate(curves, anim)
    old = np.stack([anim.channel(c) if anim.has(c) else np.zeros(anim.n_frames, np.float32)
                    for c in HEAD_CHANNELS], axis=1)
    return anim.with_channels(HEAD_CHANNELS, old + v)


def add_life(anim: Animation, samples: np.ndarray | None, sample_rate: int = 16000, *, seed: int = 0,
             blinks: bool = True, head_motion: bool = True) -> Animation:
    """Blinks and prosody-driven head motion on top of a mouth: the one place every engine gets them.

    Seeded, so the same input gives the same output; pauses in ``samples`` attract blinks
    and its loudness accents nod the head."""
    if blinks:
        anim = add_blinks(anim, samples, sample_rate, seed=seed)
    if head_motion:
        anim = add_head_motion(anim, samples, sample_rate, seed=seed)
    return anim
