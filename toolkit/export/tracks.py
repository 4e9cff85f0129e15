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


# Frames (and labels) formatted at a time by the writers that stream: an hour-long animation is
# never one giant list or string (108,000 frames x 70 channels would be ~1 GB of Python floats).
ROWS_PER_WRITE = 2000


def write_json(anim: Animation, path: str | Path) -> None:
    """The documented animation JSON (see README, "Animation JSON"): the bytes of
    ``json.dumps(anim.to_dict(), separators=(",", ":"))``, written ROWS_PER_WRITE frames at a time."""
    anim.check_finite()

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            for part in _json_parts(anim):
                f.write(part)

    atomic_write(path, write)


def _json_parts(anim: Animation):
    from toolkit.animation import JSON_FORMAT

    dump = lambda x: json.dumps(x, separators=(",", ":"), allow_nan=False)  # noqa: E731
    head = {"format": JSON_FORMAT, "fps": anim.fps, "duration": anim.duration_s, "channels": list(anim.channels)}
    yield dump(head)[:-1] + ',"values":['
    for k in range(0, anim.n_frames, ROWS_PER_WRITE):
        rows = np.round(anim.values[k:k + ROWS_PER_WRITE].astype(np.float64), 4).tolist()
        yield ("," if k else "") + dump(rows)[1:-1]
    yield "]"
    for key, segs in (("phonemes", anim.phonemes), ("words", anim.words)):
        yield f',"{key}":['
        for k in range(0, len(segs), ROWS_PER_WRITE):
            yield ("," if k else "") + dump([s.to_dict() for s in segs[k:k + ROWS_PER_WRITE]])[1:-1]
        yield "]"
    yield ',"meta":' + dump(anim.meta) + "}"


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
    row = "%s," + str(len(LIVELINK_CURVES)) + "".join([",%.6g"] * len(LIVELINK_CURVES))

    def write(tmp: Path) -> None:  # ROWS_PER_WRITE lines at a time
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(",".join(["Timecode", "BlendShapeCount"] + LIVELINK_CURVES) + "\n")
            for k in range(0, anim.n_frames, ROWS_PER_WRITE):
                rows = table[k:k + ROWS_PER_WRITE].tolist()
                f.write("".join(row % (_timecode(k + i, anim.fps), *r) + "\n" for i, r in enumerate(rows)))

    atomic_write(path, write)


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


# A plot wider than this is no longer read by eye (3 inches per second): longer audio shows its start.
PLOT_MAX_S = 120.0


def write_plot_png(anim: Animation, path: str | Path, samples: np.ndarray | None = None, sample_rate: int = 16000) -> None:
    """Curves over the waveform with word and phoneme labels, for checking timing by eye
    (the first PLOT_MAX_S seconds of longer audio)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cut = anim.duration_s > PLOT_MAX_S
    if cut:
        n = int(PLOT_MAX_S * anim.fps)
        anim = Animation(anim.fps, list(anim.channels), anim.values[:n],
                         [p for p in anim.phonemes if p.start < PLOT_MAX_S], [w for w in anim.words if w.start < PLOT_MAX_S])
        samples = None if samples is None else samples[:int(PLOT_MAX_S * sample_rate)]
    t = anim.times_s
    fig, axes = plt.subplots(3, 1, figsize=(max(8.0, anim.duration_s * 3.0), 7.5), sharex=True,
                             gridspec_kw={"height_ratios": [1.2, 2, 2]})
    if cut:
        fig.suptitle(f"the first {PLOT_MAX_S:g} s", fontsize=9)
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
