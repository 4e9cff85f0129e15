"""Plain track formats: animation JSON, Live Link Face CSV, Rhubarb cues, a PNG plot.

Each writer reads only the `Animation` value and writes atomically.

Example
-------
>>> import numpy as np, tempfile, os
>>> from toolkit.animation import Animation
>>> anim = Animation(30, ["viseme_sil", "viseme_PP"], np.array([[1, 0], [0, 1]], np.float32))
>>> [c["value"] for c in rhubarb_cues(anim)]
['X', 'A']
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from toolkit.animation import ARKIT_BLENDSHAPES, VISEMES, Animation
from toolkit.files import atomic_write
from toolkit.visemes.tables import VISEME_TO_RHUBARB


def write_json(anim: Animation, path: str | Path) -> None:
    """The documented animation JSON (see README, "Animation JSON")."""
    anim.check_finite()
    atomic_write(path, json.dumps(anim.to_dict(), separators=(",", ":"), allow_nan=False))


# -- Live Link Face CSV ------------------------------------------------------------------------

# Live Link Face writes 61 curves: the 52 blendshapes (capitalized) then 9 head/eye rotations.
LIVELINK_ROTATIONS = ["HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                      "RightEyeYaw", "RightEyePitch", "RightEyeRoll"]
LIVELINK_CURVES = [n[0].upper() + n[1:] for n in ARKIT_BLENDSHAPES] + LIVELINK_ROTATIONS
_HEAD_SOURCE = {"HeadYaw": "headYaw", "HeadPitch": "headPitch", "HeadRoll": "headRoll"}


def _timecode(frame: int, fps: float) -> str:
    """Live Link's HH:MM:SS:FF.fff timecode (frame number plus sub-frame)."""
    fps_int = max(1, int(round(fps)))
    t = frame / fps
    h, rem = divmod(t, 3600)
    m, s = divmod(rem, 60)
    ff = (t * fps_int) % fps_int
    return f"{int(h):02d}:{int(m):02d}:{int(s):02d}:{int(ff):02d}.{int(round((ff % 1) * 1000)) % 1000:03d}"


def livelink_table(anim: Animation) -> np.ndarray:
    """The 61 Live Link Face curves per frame (frames x 61, in `LIVELINK_CURVES` order); the CSV
    writer and the live Live Link transport (`toolkit.live.transports`) both read it."""
    cols = []
    for name in LIVELINK_CURVES:
        src = _HEAD_SOURCE.get(name, name[0].lower() + name[1:])
        cols.append(anim.channel(src) if anim.has(src) else np.zeros(anim.n_frames, np.float32))
    return np.stack(cols, axis=1).astype(np.float32)


def write_livelink_csv(anim: Animation, path: str | Path) -> None:
    """Apple ARKit / Live Link Face CSV (Timecode, BlendShapeCount, 61 curves) that Unreal imports."""
    anim.check_finite()
    table = livelink_table(anim)
    lines = [",".join(["Timecode", "BlendShapeCount"] + LIVELINK_CURVES)]
    for i in range(anim.n_frames):
        lines.append(",".join([_timecode(i, anim.fps), str(len(LIVELINK_CURVES))] + [f"{v:.6g}" for v in table[i]]))
    atomic_write(path, "\n".join(lines) + "\n")


# -- Rhubarb Lip Sync mouth cues ---------------------------------------------------------------

RHUBARB_SHAPES = "ABCDEFGHX"


def rhubarb_cues(anim: Animation, min_cue_s: float = 0.04) -> list[dict]:
    """Stepped mouth cues (Rhubarb shapes A-H, X) from the viseme curves.

    Each frame takes the shape whose visemes weigh most; runs shorter than
    `min_cue_s` merge into the previous cue (2D animators dislike 1-frame shapes).
    """
    vis = np.stack([anim.channel(f"viseme_{v}") if anim.has(f"viseme_{v}") else np.zeros(anim.n_frames)
                    for v in VISEMES], axis=1)
    shape_weight = np.zeros((anim.n_frames, len(RHUBARB_SHAPES)))
    for j, v in enumerate(VISEMES):
        shape_weight[:, RHUBARB_SHAPES.index(VISEME_TO_RHUBARB[v])] += vis[:, j]
    shapes = [RHUBARB_SHAPES[k] for k in shape_weight.argmax(axis=1)]
    cues: list[dict] = []
    for i, s in enumerate(shapes):
        t = i / anim.fps
        if cues and cues[-1]["value"] == s:
            continue
        if cues and t - cues[-1]["start"] < min_cue_s and len(cues) > 1:
            cues[-1]["value"] = s  # too short: the previous cue becomes this shape
            if cues[-2]["value"] == s:
                cues.pop()
            continue
        cues.append({"start": round(t, 3), "value": s})
    for k, c in enumerate(cues):
        c["end"] = cues[k + 1]["start"] if k + 1 < len(cues) else round(anim.duration_s, 3)
    return [{"start": c["start"], "end": c["end"], "value": c["value"]} for c in cues]


def write_rhubarb_tsv(anim: Animation, path: str | Path) -> None:
    """Rhubarb's TSV: one `start<TAB>shape` line per cue, closing with X at the end."""
    anim.check_finite()
    cues = rhubarb_cues(anim)
    lines = [f"{c['start']:.2f}\t{c['value']}" for c in cues]
    lines.append(f"{anim.duration_s:.2f}\tX")
    atomic_write(path, "\n".join(lines) + "\n")


def write_rhubarb_json(anim: Animation, path: str | Path, sound_file: str = "") -> None:
    """Rhubarb's JSON: `{"metadata": {...}, "mouthCues": [{start, end, value}]}`."""
    anim.check_finite()
    doc = {
        "metadata": {"soundFile": sound_file or anim.meta.get("audio", ""), "duration": round(anim.duration_s, 2)},
        "mouthCues": rhubarb_cues(anim),
    }
    atomic_write(path, json.dumps(doc, indent=2))


# -- PNG plot ------------------------------------------------------------------------------------

_PLOT_CHANNELS = ["jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthRollLower", "mouthStretchLeft"]


def write_plot_png(anim: Animation, path: str | Path, samples: np.ndarray | None = None, sample_rate: int = 16000) -> None:
    """Curves over the waveform with word and phoneme labels, for checking timing by eye."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = anim.times_s
    fig, axes = plt.subplots(3, 1, figsize=(max(8.0, anim.duration_s * 3.0), 7.5), sharex=True,
                             gridspec_kw={"height_ratios": [1.2, 2, 2]})
    ax = axes[0]
    if samples is not None and len(samples):
        ts = np.arange(len(samples)) / sample_rate
        step = max(1, len(samples) // 20000)
        ax.plot(ts[::step], samples[::step], color="0.4", lw=0.5)
    ymax = ax.get_ylim()[1] if samples is not None else 1.0
    for seg in anim.phonemes:
        ax.axvline(seg.start, color="tab:blue", lw=0.4, alpha=0.5)
        ax.text((seg.start + seg.end) / 2, ymax * 0.8, seg.label, ha="center", fontsize=8, color="tab:blue")
    for seg in anim.words:
        ax.text((seg.start + seg.end) / 2, -ymax * 0.95, seg.label, ha="center", fontsize=8, color="tab:red")
    ax.set_ylabel("audio")
    ax = axes[1]
    for v in VISEMES[1:]:
        name = f"viseme_{v}"
        if anim.has(name) and anim.channel(name).max() > 0.05:
            ax.plot(t, anim.channel(name), label=v, lw=1.2)
    ax.set_ylabel("viseme weight")
    ax.legend(ncol=8, fontsize=7, loc="upper right")
    ax = axes[2]
    for name in _PLOT_CHANNELS + ["headPitch", "headYaw", "eyeBlinkLeft"]:
        if anim.has(name):
            ax.plot(t, anim.channel(name), label=name, lw=1.2)
    ax.set_ylabel("ARKit / head")
    ax.set_xlabel("time (s)")
    ax.legend(ncol=5, fontsize=7, loc="upper right")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    plt.close(fig)
