"""The one value every stage hands on: an `Animation`.

An animation is a clip of named channels sampled at a fixed frame rate, like a
three.js AnimationClip whose tracks share one time axis:

* ``fps``       frames per second (frame 0 is at time 0 s),
* ``channels``  channel names (see `CHANNELS` for the canonical set),
* ``values``    float32 array, frames x channels,
* ``phonemes`` / ``words``  lists of `Segment` (label, start, end in seconds).

Exporters, rigs, the renderer and the Blender add-on only read this value.

Example
-------
>>> import numpy as np
>>> anim = Animation(fps=30, channels=["jawOpen"], values=np.zeros((3, 1), np.float32))
>>> anim.duration_s
0.1
>>> anim.channel("jawOpen").shape
(3,)
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolkit.checks import check_number

# The channel schema.  The 15 Oculus/Meta visemes are the canonical mouth set.
VISEMES: list[str] = ["sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou"]
VISEME_CHANNELS: list[str] = [f"viseme_{v}" for v in VISEMES]

# Apple ARKit face blendshapes, in the order Live Link Face writes them.
ARKIT_BLENDSHAPES: list[str] = [
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight",
    "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawRight", "jawLeft", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthRight", "mouthLeft",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight",
    "tongueOut",
]

# Head rotation in radians: pitch (nod, + = chin down), yaw (turn, + = to the
# character's left), roll (tilt, + = towards the character's left shoulder).
HEAD_CHANNELS: list[str] = ["headPitch", "headYaw", "headRoll"]

# Canonical channel order of every animation the pipeline makes.
CHANNELS: list[str] = VISEME_CHANNELS + ARKIT_BLENDSHAPES + HEAD_CHANNELS

JSON_FORMAT = "viseme-toolkit/animation@1"
# Frame rates an animation JSON may have: the range every writer takes (24-120 fps in engines; 240 for
# slow motion); the command line and `toolkit.pipeline.Options` refuse the same outside it.
FPS_RANGE = (1, 240)


def _check_fps(fps) -> None:
    if not (isinstance(fps, (int, float, np.integer, np.floating)) and np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")


@dataclass
class Segment:
    """A labelled time span in seconds (a word, a phoneme, a viseme)."""

    label: str
    start: float
    end: float

    def to_dict(self) -> dict:
        return {"label": self.label, "start": round(float(self.start), 4), "end": round(float(self.end), 4)}


@dataclass
class Animation:
    fps: float
    channels: list[str]
    values: np.ndarray
    phonemes: list[Segment] = field(default_factory=list)
    words: list[Segment] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.values = np.ascontiguousarray(self.values, dtype=np.float32)
        if self.values.ndim != 2 or self.values.shape[1] != len(self.channels):
            raise ValueError(
                f"values must be frames x channels ({len(self.channels)} channels), got shape {self.values.shape}"
            )
        _check_fps(self.fps)
        if len(set(self.channels)) != len(self.channels):
            raise ValueError("channel names must be unique")

    # -- reading -----------------------------------------------------------
    @property
    def n_frames(self) -> int:
        return int(self.values.shape[0])

    @property
    def duration_s(self) -> float:
        """Time of the last frame plus one frame period."""
        return round(self.n_frames / self.fps, 6)

    @property
    def times_s(self) -> np.ndarray:
        return np.arange(self.n_frames, dtype=np.float64) / self.fps

    def channel(self, name: str) -> np.ndarray:
        """The curve of one channel (a view; frames,)."""
        try:
            return self.values[:, self.channels.index(name)]
        except ValueError:
            raise KeyError(f"no channel {name!r} in this animation") from None

    def has(self, name: str) -> bool:
        return name in self.channels

    def sample(self, times_s: np.ndarray) -> np.ndarray:
        """Linearly interpolated values at arbitrary times (len(times) x channels)."""
        t = np.asarray(times_s, dtype=np.float64)
        grid = self.times_s
        out = np.empty((t.size, len(self.channels)), np.float32)
        for j in range(len(self.channels)):
            out[:, j] = np.interp(t, grid, self.values[:, j])
        return out

    def check_finite(self, what: str = "the animation") -> None:
        """ValueError naming the first NaN or infinite value (curves, phoneme and word times): no
        output may hold one (JSON has no NaN, engines and players choke on them)."""
        bad = ~np.isfinite(self.values)
        if bad.any():
            f, c = (int(x) for x in np.argwhere(bad)[0])
            raise ValueError(f"{what} has {int(bad.sum())} NaN or infinite values (first: {self.channels[c]} at "
                             f"frame {f}); nothing was written")
        for kind, segs in (("phoneme", self.phonemes), ("word", self.words)):
            for s in segs:
                if not (np.isfinite(s.start) and np.isfinite(s.end)):
                    raise ValueError(f"{what} has a {kind} {s.label!r} at a NaN or infinite time; nothing was written")

    # -- editing (each returns a new Animation) ------------------------------
    def resampled(self, fps: float) -> "Animation":
        """The same curves at another frame rate (linear interpolation)."""
        _check_fps(fps)  # before the frame count: NaN said "cannot convert float NaN to integer"
        n = max(1, int(round(self.duration_s * fps)))
        values = self.sample(np.arange(n) / fps)
        return Animation(fps, list(self.channels), values, list(self.phonemes), list(self.words), dict(self.meta))

    def select(self, names: list[str]) -> "Animation":
        idx = [self.channels.index(n) for n in names]
        return Animation(self.fps, list(names), self.values[:, idx], list(self.phonemes), list(self.words), dict(self.meta))

    def with_channels(self, names: list[str], values: np.ndarray) -> "Animation":
        """Add or replace channels by name."""
        values = np.asarray(values, np.float32).reshape(self.n_frames, len(names))
        chans = list(self.channels)
        out = np.array(self.values, copy=True)
        for j, n in enumerate(names):
            if n in chans:
                out[:, chans.index(n)] = values[:, j]
            else:
                chans.append(n)
                out = np.concatenate([out, values[:, j : j + 1]], axis=1)
        return Animation(self.fps, chans, out, list(self.phonemes), list(self.words), dict(self.meta))

    # -- JSON (documented in README "Animation JSON") ------------------------
    def to_dict(self) -> dict:
        return {
            "format": JSON_FORMAT,
            "fps": self.fps,
            "duration": self.duration_s,
            "channels": list(self.channels),
            "values": np.round(self.values.astype(np.float64), 4).tolist(),
            "phonemes": [s.to_dict() for s in self.phonemes],
            "words": [s.to_dict() for s in self.words],
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict, source: str = "animation") -> "Animation":
        try:
            if not isinstance(d, dict) or not isinstance(d["channels"], list) or not d["channels"] \
                    or not all(isinstance(c, str) for c in d["channels"]):
                raise ValueError("'channels' must be a list of names")
            _check_format(d)
            with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, refused below
                values = np.asarray(d["values"], np.float32).reshape(-1, len(d["channels"]))
            anim = cls(
                fps=check_number("'fps'", float(d["fps"]), *FPS_RANGE),  # 1e9 rendered a video of no length
                channels=list(d["channels"]),
                values=values,
                phonemes=[Segment(str(s["label"]), float(s["start"]), float(s["end"])) for s in d.get("phonemes") or []],
                words=[Segment(str(s["label"]), float(s["start"]), float(s["end"])) for s in d.get("words") or []],
                meta=dict(d.get("meta") or {}),
            )
            anim.check_finite("it")
            if not anim.n_frames:   # refused here, naming the file, not by the first writer that needs a frame
                raise ValueError("it has no frames")
            return anim
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            msg = f"no {e}" if isinstance(e, KeyError) else str(e).replace("; nothing was written", "")  # not "('fps')"
            raise ValueError(f"{source}: not a viseme-toolkit animation JSON ({msg})") from None

    @classmethod
    def load(cls, path: str | Path) -> "Animation":
        """Read an animation JSON written by `toolkit.export.tracks.write_json`."""
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:   # not UTF-8: audio given by mistake
            raise ValueError(f"{path}: cannot read animation JSON ({e})") from None
        return cls.from_dict(d, source=str(path))


def _check_format(d: dict) -> None:
    """Refuse a file of another format (a later version, another tool's): read as ours, its fields
    would mean something else.  And one with no channel the toolkit knows: every reader (the renderer,
    the model and engine writers, the web page) drives only `CHANNELS`, so it made a still face."""
    if "format" in d and d["format"] != JSON_FORMAT:
        raise ValueError(f"its format is {d['format']!r}, not {JSON_FORMAT}")
    if not set(d["channels"]) & set(CHANNELS):
        names = ", ".join(d["channels"][:6]) + (" ..." if len(d["channels"]) > 6 else "")
        raise ValueError(f"none of its channels ({names}) is one the toolkit animates: viseme_*, the 52 ARKit "
                         "blendshapes, headPitch/headYaw/headRoll")


def empty_animation(n_frames: int, fps: float, channels: list[str] | None = None) -> Animation:
    """All-zero animation with the canonical channels."""
    chans = list(CHANNELS if channels is None else channels)
    return Animation(fps, chans, np.zeros((n_frames, len(chans)), np.float32))
