"""The live loop: source chunks -> the neural streamer -> per-frame weights -> every transport.

    for chunk in source.chunks(stop):           # 10 ms of 16 kHz audio and when it arrived
        frames = streamer.push(chunk.samples)   # the frames that are now final (0, 1 or 2 at 60 fps)
        batch = FrameBatch(...)                  # + weights under the chosen names, head rotation, Live Link curves
        for t in transports: t.send(batch)      # sent at once: no queue, no extra latency

A frame is sent as soon as the streamer has it: `toolkit.motion.model.latency_s` (the model's
look-ahead, 60 ms at 60 fps) after the audio it shows, plus the block length and the compute time.
The frame clock is the audio's own sample count (frame k is at k / fps seconds of audio), so
frames cannot drift from the audio however long the stream runs.

At the end of the input the streamer is flushed (the last frames); on a stop (Ctrl-C, SIGTERM,
``stop.set()``) one rest frame (mouth closed, head level) is sent so receivers do not freeze
mid-word.  `SessionStats` keeps counts and the input-to-send latency of each frame.

Example
-------
>>> import threading, numpy as np                                           # doctest: +SKIP
>>> from toolkit.live.sources import FileSource
>>> stats = run_session(FileSource(np.zeros(16000, np.float32)), [], NameMap("vrm0"), fps=60)
>>> stats.frames
60
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from toolkit.animation import CHANNELS, HEAD_CHANNELS, Animation
from toolkit.audio import TARGET_RATE
from toolkit.live.names import NameMap

_HEAD_IDX = [CHANNELS.index(c) for c in HEAD_CHANNELS]
LATENCY_WINDOW = 36000  # frames whose latency is kept for the summary (10 minutes at 60 fps)


@dataclass
class FrameBatch:
    """Frames ``start .. start + n - 1`` (n x `CHANNELS`) and what the transports derive from them."""

    start: int
    fps: float
    values: np.ndarray
    names: NameMap

    @property
    def n(self) -> int:
        return self.values.shape[0]

    @cached_property
    def times_s(self) -> np.ndarray:
        """Each frame's time in the audio (seconds from the first sample)."""
        return (self.start + np.arange(self.n)) / self.fps

    @cached_property
    def anim(self) -> Animation:
        return Animation(self.fps, list(CHANNELS), self.values)

    @cached_property
    def weights(self) -> np.ndarray:
        """n x len(names.names), through the rig profile (`toolkit.rigs.retarget`)."""
        return self.names.weights(self.anim, self.fps)

    @cached_property
    def head_euler(self) -> np.ndarray:
        """n x (pitch, yaw, roll), radians."""
        return self.values[:, _HEAD_IDX]

    @cached_property
    def head_quaternion(self) -> np.ndarray:
        """n x (x, y, z, w), glTF axes, the character facing +Z (`toolkit.rigs.head_rotation`)."""
        from toolkit.rigs import head_rotation

        return head_rotation(self.anim, facing="+z")

    @cached_property
    def livelink(self) -> np.ndarray:
        """n x 61 Live Link Face curves, as the CSV exporter writes them."""
        from toolkit.export.tracks import livelink_table

        return livelink_table(self.anim)


class StopFlag(threading.Event):
    """A `threading.Event` that also says why it was set ("SIGINT", "SIGTERM"...)."""

    reason = ""

    def stop(self, reason: str) -> None:
        self.reason = self.reason or reason
        self.set()


def rest_frame() -> np.ndarray:
    """Mouth closed and at rest, eyes open, head level: what a receiver should hold after a stop."""
    v = np.zeros((1, len(CHANNELS)), np.float32)
    v[0, CHANNELS.index("viseme_sil")] = 1.0
    return v


@dataclass
class SessionStats:
    frames: int = 0
    samples_in: int = 0
    stopped_by: str = ""  # "" (end of input), "SIGINT", "SIGTERM", "stop"
    wall_s: float = 0.0
    latency_s: deque = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    def latency_ms(self, q: float) -> float:
        return float(np.percentile(np.asarray(self.latency_s), q) * 1000) if self.latency_s else float("nan")


class _Arrivals:
    """When the chunk holding a given sample arrived (chunks in order; old ones forgotten)."""

    def __init__(self) -> None:
        self._chunks: deque = deque()  # (end sample, arrival_s)
        self._last = 0.0

    def add(self, end_sample: int, arrival_s: float) -> None:
        self._chunks.append((end_sample, arrival_s))

    def of(self, sample: int) -> float:
        while self._chunks and self._chunks[0][0] <= sample:
            self._last = self._chunks.popleft()[1]
        return self._chunks[0][1] if self._chunks else self._last


def run_session(source, transports: list, names: NameMap, *, fps: float = 60, seed: int = 0,
                intensity: float = 1.0, blinks: bool = True, head_motion: bool = True,
                stop: threading.Event | None = None, animator=None) -> SessionStats:
    """Stream ``source`` to every transport until its input ends or ``stop`` is set.

    Closes the source and the transports before returning.  Errors of the source (a
    microphone unplugged) propagate after that; a transport never raises for a missing receiver.
    """
    from toolkit.motion.model import NeuralAnimator

    stop = stop or threading.Event()
    stats = SessionStats()
    arrivals = _Arrivals()
    t_start = time.perf_counter()

    def dispatch(values: np.ndarray, measure: bool = True) -> None:
        if not len(values):
            return
        batch = FrameBatch(stats.frames, fps, np.asarray(values, np.float32), names)
        for tr in transports:
            tr.send(batch)
        now = time.perf_counter()
        if measure:
            for t in batch.times_s:
                stats.latency_s.append(now - arrivals.of(int(round(t * TARGET_RATE))))
        stats.frames += batch.n

    try:
        animator = animator or NeuralAnimator.load()
        streamer = animator.streamer(fps=fps, seed=seed, intensity=intensity, blinks=blinks,
                                     head_motion=head_motion)
        for chunk in source.chunks(stop):
            stats.samples_in += len(chunk.samples)
            arrivals.add(stats.samples_in, chunk.arrival_s)
            dispatch(streamer.push(chunk.samples))
            if stop.is_set():
                break
        if stop.is_set():
            stats.stopped_by = getattr(stop, "reason", "") or "stop"
            dispatch(rest_frame(), measure=False)
        else:
            dispatch(streamer.flush(), measure=False)  # the end: no later audio is waited for
    finally:
        stats.wall_s = time.perf_counter() - t_start
        for tr in transports:
            try:
                tr.close()
            except Exception:  # noqa: BLE001 - one transport failing to close must not hide the others
                pass
        source.close()
    return stats
