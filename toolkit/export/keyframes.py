"""What engine clip writers share: a Performance as named curves, and keys cut down to what matters.

The Unity (`toolkit.export.unity`) and Godot (`toolkit.export.godot`) writers both read one
`toolkit.gltf.drive.Performance` (the same the glTF writer, renderer and viewer read):

* `performance_for` - the model (default: the toolkit's head) and what the animation does to it;
* `morph_curves`    - one curve per driven morph target: node, target name, weights per frame;
* `reduce_keys`     - the frames a curve needs: linear keys between them stay within a tolerance.

Example
-------
>>> import numpy as np
>>> reduce_keys(np.array([0, 0, 0, 0.5, 1, 1, 1.0]), tol=1e-3).tolist()
[0, 2, 4, 6]
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from toolkit.animation import Animation
from toolkit.export.gltf import WriteReport
from toolkit.files import atomic_write
from toolkit.gltf.drive import Performance, perform
from toolkit.gltf.read import Model, load_model
from toolkit.resources import DEFAULT_HEAD

# KEY_TOLERANCE: a thousandth of a full shape.  Keys a straight line between their neighbours
# reproduces that closely are dropped: nobody sees the difference, and most targets are flat
# (0) most of the time, so clips shrink several times over.
KEY_TOLERANCE = 1e-3


@dataclass
class MorphCurve:
    """One driven morph target: the node placing its mesh, its index and name, weights per frame (0..1)."""

    node: int
    target: int
    name: str
    values: np.ndarray


def performance_for(anim: Animation, model: str | Path | None = None, profile=None) -> tuple[Performance, Model]:
    """The Performance of ``anim`` on ``model`` (None: the default head) and the model."""
    m = load_model(model if model is not None else DEFAULT_HEAD)
    return perform(anim, m, profile), m


def morph_curves(perf: Performance) -> tuple[list[MorphCurve], list[str]]:
    """Every driven target as a curve, and warnings (unnamed targets get ``morph<i>``, as engines name them)."""
    model, curves, warnings = perf.model, [], []
    for node, idx in perf.driven.items():
        mesh = model.meshes[model.gltf.nodes[node].mesh]
        for i in idx:
            name = mesh.target_names[i]
            if not name:
                name = f"morph{i}"
                warnings.append(f"{mesh.label}: target #{i} has no name; written as {name!r}")
            curves.append(MorphCurve(node, i, name, perf.weights[node][:, i]))
    return curves, warnings


def reduce_keys(values: np.ndarray, tol: float = KEY_TOLERANCE, stepped: bool = False) -> np.ndarray:
    """Frame indices to key: the first, the last, and those a line between kept keys cannot stand for.

    ``values`` frames (x components: a key is kept where any component needs it).  Linear:
    every dropped frame lies within ``tol`` of the straight line between the kept keys around
    it (a "swinging door": the slopes the segment may take narrow with each frame it spans).
    ``stepped`` (held keys): a key wherever the value changes."""
    v = np.asarray(values, np.float64).reshape(len(values), -1)
    n = len(v)
    if n <= 2:
        return np.arange(n)
    if stepped:
        change = np.any(np.abs(np.diff(v, axis=0)) > 0, axis=1)
        return np.unique(np.r_[0, np.nonzero(change)[0] + 1, n - 1])
    keep, a = [0], 0
    lo = np.full(v.shape[1], -np.inf)
    hi = np.full(v.shape[1], np.inf)
    for j in range(1, n):
        slope = (v[j] - v[a]) / (j - a)
        if np.any(slope < lo - 1e-12) or np.any(slope > hi + 1e-12):
            a = j - 1  # the segment from a cannot reach j: it ends at j - 1
            keep.append(a)
            lo[:], hi[:] = -np.inf, np.inf
            slope = v[j] - v[a]
        lo = np.maximum(lo, slope - tol / (j - a))
        hi = np.minimum(hi, slope + tol / (j - a))
    if keep[-1] != n - 1:
        keep.append(n - 1)
    return np.asarray(keep)


def write_clip(anim: Animation, out_path: str | Path, model, profile, kind: str,
               clip_text: Callable[[Animation, Performance, str], tuple[str, list[str]]]) -> WriteReport:
    """Write the text ``clip_text(anim, performance, clip name)`` makes for ``model`` (default: the
    toolkit's head), atomically; the report names the ``kind`` of clip and what it drives."""
    t0 = time.perf_counter()
    out = Path(out_path)
    perf, _ = performance_for(anim, model, profile)
    text, warnings = clip_text(anim, perf, out.stem)
    atomic_write(out, text)
    return WriteReport(str(out), len(text.encode()), anim.n_frames, anim.duration_s, f"{kind}: {perf.via}",
                       perf.describe_driven(), perf.head_label, perf.warnings + warnings, time.perf_counter() - t0)


def node_chain(model: Model, node: int) -> list[int]:
    """The nodes from the scene root down to ``node`` (inclusive)."""
    parents = model.parents()
    out = [node]
    while parents[out[-1]] is not None:
        out.append(parents[out[-1]])
    return out[::-1]
