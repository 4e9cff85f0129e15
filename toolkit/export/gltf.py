"""Animated glTF / GLB / VRM / VRMA output: the user's character, talking.

The CLI calls one function per output (each writes atomically and returns a `WriteReport`)::

    write_animated_model(anim, model_path, out_path, profile=None, *, clip_name="viseme-talk", head=True)
        -> WriteReport        .glb/.gltf/.vrm: the model unchanged plus one animation (mouth, blinks, head)
    write_standalone_head(anim, out_path, head_path=None) -> WriteReport
        .glb/.gltf: the default head (assets/head/head.glb) animated
    write_vrma(anim, out_path) -> WriteReport
        .vrma: VRM Animation (VRMC_vrm_animation): expression tracks + head rotation for VTuber apps

``profile`` is None (matched automatically), a profile name from ``rigs/``, a
path to a rig JSON, or a `toolkit.rigs.Profile`.  Bad input raises
`toolkit.gltf.errors.ModelError` (a ValueError) naming the file and what was found;
nothing is written then, and the input is never touched.

How the model stays unchanged: its JSON is copied as read (unknown extensions
and extras survive verbatim, not re-serialized through a schema), every buffer
with data is concatenated into the one output buffer (meshopt-compressed views
stay compressed; their data-less fallback buffer is kept), external images are
embedded, and the new animation is appended after the existing ones.  A .gltf
output is self-contained (one base64 buffer).

Example
-------
>>> from toolkit.animation import empty_animation
>>> rep = write_standalone_head(empty_animation(30, fps=30), "/tmp/head.glb")   # doctest: +SKIP
>>> rep.n_frames, rep.duration_s                                                 # doctest: +SKIP
(30, 1.0)
"""
from __future__ import annotations

import base64
import copy
import json
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolkit import rigs
from toolkit.animation import Animation
from toolkit.files import atomic_write
from toolkit.gltf.drive import Performance, perform
from toolkit.gltf.errors import ModelError
from toolkit.gltf.read import Model, load_model
from toolkit.resources import DEFAULT_HEAD
from toolkit.rotation import matrix_to_quat

MODEL_SUFFIXES = (".glb", ".gltf", ".vrm")
GENERATOR = "viseme-toolkit"

_FLOAT, _UINT = 5126, 5125


@dataclass
class WriteReport:
    """What a writer did: the file, its size, the clip and what it drives."""

    out_path: str
    n_bytes: int
    n_frames: int
    duration_s: float
    via: str
    driven: list[str] = field(default_factory=list)
    head_node: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        lines = [f"wrote {self.out_path} ({self.n_bytes / 1024:.1f} KiB, {self.n_frames} frames, "
                 f"{self.duration_s:.3f} s) in {self.seconds * 1000:.0f} ms", f"  {self.via}"]
        lines += [f"  drives {d}" for d in self.driven]
        lines.append(f"  head rotation: {self.head_node or 'none'}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def brief(self, most: int = 4) -> list[str]:
        """A few lines for the command line: what drives what, the head node, every warning."""
        lines = [f"{self.out_path}: {self.via}"] + [f"  drives {d}" for d in self.driven[:most]]
        if len(self.driven) > most:
            lines.append(f"  ... and {len(self.driven) - most} more node(s)")
        lines.append(f"  head rotation: {self.head_node or 'none'}")
        return lines + [f"warning: {self.out_path}: {w}" for w in self.warnings]


# -- building blocks ---------------------------------------------------------
class _Doc:
    """A glTF JSON dict plus the one binary buffer being assembled."""

    def __init__(self, doc: dict, blob: bytearray | None = None):
        self.doc = doc
        self.blob = blob if blob is not None else bytearray()

    def align(self, n: int = 4) -> None:
        """Pad the buffer to a multiple of ``n`` bytes (16 keeps any component type and stride aligned)."""
        self.blob += b"\0" * (-len(self.blob) % n)

    def add_view(self, data: bytes, target: int | None = None) -> int:
        self.align(4)
        view = {"buffer": 0, "byteOffset": len(self.blob), "byteLength": len(data)}
        if target:
            view["target"] = target
        self.blob += data
        self.doc.setdefault("bufferViews", []).append(view)
        return len(self.doc["bufferViews"]) - 1

    def add_accessor(self, arr: np.ndarray, type_: str, minmax: bool = False, target: int | None = None) -> int:
        arr = np.ascontiguousarray(arr, dtype=np.float32 if arr.dtype.kind == "f" else np.uint32)
        k = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}[type_]
        flat = arr.reshape(-1, k)
        acc = {"bufferView": self.add_view(flat.astype("<f4" if arr.dtype.kind == "f" else "<u4").tobytes(), target),
               "componentType": _FLOAT if arr.dtype.kind == "f" else _UINT, "count": int(flat.shape[0]),
               "type": type_}
        if minmax:
            acc["min"] = [float(x) if arr.dtype.kind == "f" else int(x) for x in flat.min(axis=0)]
            acc["max"] = [float(x) if arr.dtype.kind == "f" else int(x) for x in flat.max(axis=0)]
        self.doc.setdefault("accessors", []).append(acc)
        return len(self.doc["accessors"]) - 1

    def glb_bytes(self) -> bytes:
        self.align(4)
        self.doc["buffers"][0] = {k: v for k, v in self.doc["buffers"][0].items() if k != "uri"}
        self.doc["buffers"][0]["byteLength"] = len(self.blob)
        js = _json_bytes(self.doc, separators=(",", ":"))
        js += b" " * (-len(js) % 4)
        total = 12 + 8 + len(js) + (8 + len(self.blob) if self.blob else 0)
        out = [struct.pack("<4sII", b"glTF", 2, total), struct.pack("<II", len(js), 0x4E4F534A), js]
        if self.blob:
            out += [struct.pack("<II", len(self.blob), 0x004E4942), bytes(self.blob)]
        return b"".join(out)

    def gltf_bytes(self) -> bytes:
        self.align(4)
        self.doc["buffers"][0]["byteLength"] = len(self.blob)
        self.doc["buffers"][0]["uri"] = "data:application/octet-stream;base64," + base64.b64encode(
            bytes(self.blob)).decode("ascii")
        return _json_bytes(self.doc, indent=1)


def _json_bytes(doc: dict, **fmt) -> bytes:
    """The document as UTF-8 JSON; NaN or infinity (which JSON cannot hold) is an error, not a broken file."""
    try:
        return json.dumps(doc, ensure_ascii=False, allow_nan=False, **fmt).encode("utf-8")
    except ValueError:
        raise ValueError("the glTF document would hold NaN or infinite numbers; nothing was written") from None


def _merge_buffers(model: Model, warnings: list[str]) -> _Doc:
    """The model's JSON with all buffer data in buffer 0 and images embedded."""
    doc = copy.deepcopy(model.doc)
    out = _Doc(doc)
    old = doc.get("buffers") or []
    where: dict[int, tuple[int, int]] = {}
    kept = [{"byteLength": 0}]
    for i, buf in enumerate(old):
        data = model.buffer_bytes(i)
        if data is None:  # EXT_meshopt_compression fallback buffer: no data, kept as it is
            kept.append(buf)
            where[i] = (len(kept) - 1, 0)
            continue
        out.align(16)
        where[i] = (0, len(out.blob))
        out.blob += data[: buf["byteLength"]]
    doc["buffers"] = kept
    for v in doc.get("bufferViews") or []:
        b, base = where[v["buffer"]]
        v["buffer"] = b
        v["byteOffset"] = v.get("byteOffset", 0) + base
        ext = (v.get("extensions") or {}).get("EXT_meshopt_compression")
        if ext:
            b, base = where[ext["buffer"]]
            ext["buffer"], ext["byteOffset"] = b, ext.get("byteOffset", 0) + base
    for i, acc in enumerate(doc.get("accessors") or []):
        # 'byteOffset' without 'bufferView' (an all-zero accessor as some writers emit it) is
        # meaningless and makes validators fail; dropping it changes no data
        if "bufferView" not in acc and "byteOffset" in acc:
            del acc["byteOffset"]
            if not any("byteOffset" in w for w in warnings):
                warnings.append(f"dropped 'byteOffset' from accessors without a bufferView (first: #{i})")
    embed_images(model, out, warnings)
    return out


def embed_images(model: Model, out: _Doc, warnings: list[str],
                 unreadable: str = "image #{i} kept as a reference to {uri}: {error}") -> None:
    """Move every image that ``out.doc`` refers to by uri into the buffer (a written file must stand alone).

    An image that cannot be read stays a reference; ``unreadable`` is the warning then.
    """
    for i, img in enumerate(out.doc.get("images") or []):
        if "uri" not in img:
            continue
        try:
            data, mime = model.image_bytes(i)
        except ModelError as e:
            warnings.append(unreadable.format(i=i, uri=repr(img["uri"][:60]), error=e))
            continue
        if mime not in ("image/png", "image/jpeg", "image/ktx2", "image/webp"):
            mime = "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg" if data[:2] == b"\xff\xd8" \
                else mime
        del img["uri"]
        img["bufferView"] = out.add_view(data)
        img["mimeType"] = mime


def _trs_from_matrix(node: dict) -> None:
    """Animated nodes may not use 'matrix' (glTF rule): rewrite it as translation/rotation/scale."""
    if "matrix" not in node:
        return
    m = np.asarray(node.pop("matrix"), np.float64).reshape(4, 4).T
    s = np.linalg.norm(m[:3, :3], axis=0)
    r = m[:3, :3] / np.where(s > 0, s, 1)[None, :]
    if np.linalg.det(r) < 0:
        s[0], r[:, 0] = -s[0], -r[:, 0]
    node["translation"] = m[:3, 3].tolist()
    node["rotation"] = matrix_to_quat(r).tolist()
    node["scale"] = s.tolist()


def _key_times(anim: Animation) -> np.ndarray:
    # one key per frame plus a closing key at the clip's end, so the clip lasts as long as the audio
    return (np.arange(anim.n_frames + 1, dtype=np.float64) / anim.fps).astype(np.float32)


def _hold_last(values: np.ndarray) -> np.ndarray:
    return np.concatenate([values, values[-1:]], axis=0)


def _check_anim(anim: Animation) -> None:
    if not isinstance(anim, Animation):
        raise TypeError(f"expected an Animation, got {type(anim).__name__}")
    if anim.n_frames < 1:
        raise ValueError("the animation has no frames")
    anim.check_finite()


def _check_out(out: Path, suffixes: tuple[str, ...], inputs: list[Path]) -> None:
    if out.suffix.lower() not in suffixes:
        raise ValueError(f"{out}: output must end in {', '.join(suffixes)}")
    ro = out.resolve()
    for p in inputs:
        if ro == p.resolve() or (out.exists() and p.exists() and os.path.samefile(out, p)):
            raise ValueError(f"{out}: the output would overwrite the input {p}; choose another output path")


def check_output(out_path: str | Path, model: Model | None = None, head_path: Path = DEFAULT_HEAD) -> None:
    """Refuse what `write_animated_model` (``model`` given) or `write_standalone_head` (None;
    its head ``head_path``) would refuse about the output: its suffix, the model's own files
    (.gltf, .bin, textures), .vrm for a model that is not a VRM.  The CLI calls it before any work."""
    out = Path(out_path)
    if model is None:
        if out.suffix.lower() == ".vrm":
            raise ValueError(f"{out}: a .vrm output needs a VRM model (--model avatar.vrm); the default head "
                             f"is written as .glb or .gltf")
        _check_out(out, (".glb", ".gltf"), [head_path])
        return
    _check_out(out, MODEL_SUFFIXES, [Path(model.path)] + model.external_files())
    if out.suffix.lower() == ".vrm" and model.vrm is None:
        raise ModelError(f"{model.path}: not a VRM model (no VRMC_vrm or VRM extension), so it cannot be written as "
                         f"{out}; use .glb")


# -- the writers -------------------------------------------------------------
def _animate(model: Model, anim: Animation, profile, clip_name: str, head: bool, out_suffix: str,
             t0: float, out: Path) -> tuple[bytes, WriteReport]:
    perf = perform(anim, model, profile, head=head)
    warnings: list[str] = list(perf.warnings)
    d = _merge_buffers(model, warnings)
    doc = d.doc
    t_acc = d.add_accessor(_key_times(anim), "SCALAR", minmax=True)
    doc.setdefault("animations", []).append({
        "name": clip_name, **_samplers_and_channels(perf, d, t_acc),
        "extras": {"generator": GENERATOR, "fps": anim.fps, "duration_s": anim.duration_s,
                   "rig": perf.match.profile.name if perf.match else None}})
    try:
        data = d.glb_bytes() if out_suffix in (".glb", ".vrm") else d.gltf_bytes()
    except ValueError as e:
        raise ModelError(f"{model.path}: {e}") from None
    rep = WriteReport(str(out), len(data), anim.n_frames, anim.duration_s, perf.via, perf.describe_driven(),
                      perf.head_label, warnings, time.perf_counter() - t0)
    return data, rep


def _samplers_and_channels(perf: Performance, d: _Doc, t_acc: int) -> dict:
    """One glTF sampler + channel per track of the performance (nodes sharing weights share an accessor)."""
    samplers, channels, shared = [], [], {}
    for track in perf.tracks():
        if not np.all(np.isfinite(track.values)):
            raise ModelError(f"{perf.model.path}: cannot animate node {perf.node_name(track.node)!r}: its rest "
                             "transform (or a parent's) is degenerate (a zero or non-finite scale)")
        if track.path == "rotation":
            _trs_from_matrix(d.doc["nodes"][track.node])
        key = id(track.values)
        if key not in shared:
            kind = "VEC4" if track.path == "rotation" else "SCALAR"
            shared[key] = d.add_accessor(_hold_last(track.values.astype(np.float32)), kind)
        samplers.append({"input": t_acc, "output": shared[key], "interpolation": track.interpolation})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": track.node, "path": track.path}})
    return {"samplers": samplers, "channels": channels}


def write_animated_model(anim: Animation, model_path: str | Path, out_path: str | Path, profile=None, *,
                         clip_name: str = "viseme-talk", head: bool = True) -> WriteReport:
    """Write ``model_path`` (.glb/.gltf/.vrm) to ``out_path`` with one new animation that performs ``anim``.

    Every mesh whose morph targets match the rig is driven (head, teeth, tongue,
    beard...), VRM models through their expressions; head rotation goes to the head
    bone or the face node.  ``out_path`` may be .glb, .gltf (self-contained) or .vrm
    (only for a VRM input).  Raises ModelError/ValueError and writes nothing on bad input.

    >>> write_animated_model(anim, "avatar.vrm", "avatar_talking.vrm")   # doctest: +SKIP
    """
    t0 = time.perf_counter()
    _check_anim(anim)
    src, out = Path(model_path), Path(out_path)
    model = load_model(src)
    check_output(out, model)
    data, rep = _animate(model, anim, profile, clip_name, head, out.suffix.lower(), t0, out)
    atomic_write(out, data)
    rep.seconds = time.perf_counter() - t0
    return rep


def write_standalone_head(anim: Animation, out_path: str | Path, head_path: str | Path | None = None) -> WriteReport:
    """An animated head with no model given: ``head_path``, else the default head
    assets/head/head.glb (52 ARKit targets, built by assets/head/build_head.py)."""
    t0 = time.perf_counter()
    _check_anim(anim)
    out = Path(out_path)
    src = Path(head_path) if head_path is not None else DEFAULT_HEAD
    if head_path is not None and not src.is_file():  # the caller's own path: not a reason to build ours
        raise ModelError(f"{src}: head model not found (head_path)")
    if not src.is_file():
        raise ModelError(f"{src}: the default head is missing; build it with "
                         f"`.venv/bin/python assets/head/build_head.py` or pass --model")
    check_output(out, head_path=src)
    model = load_model(src)
    data, rep = _animate(model, anim, None, "viseme-talk", True, out.suffix.lower(), t0, out)
    atomic_write(out, data)
    rep.seconds = time.perf_counter() - t0
    return rep


# VRM 1.0 humanoid bones a VRMA needs to carry head motion, with rest offsets (m) from the parent
_VRMA_BONES = [("hips", None, [0.0, 0.95, 0.0]), ("spine", "hips", [0.0, 0.1, 0.0]),
               ("chest", "spine", [0.0, 0.15, 0.0]), ("neck", "chest", [0.0, 0.25, 0.0]),
               ("head", "neck", [0.0, 0.1, 0.0])]


def write_vrma(anim: Animation, out_path: str | Path) -> WriteReport:
    """A VRM Animation (.vrma, VRMC_vrm_animation 1.0): vowel and blink expression tracks
    (an expression's weight is its node's translation x) and head rotation on the humanoid head.

    >>> write_vrma(anim, "talk.vrma")   # doctest: +SKIP
    """
    t0 = time.perf_counter()
    _check_anim(anim)
    out = Path(out_path)
    _check_out(out, (".vrma",), [])
    prof = rigs.load_profile("vrm1")
    names = [k for k in prof.targets]
    ew = rigs.retarget(anim, names, rigs.match_one(prof, names))  # blink dropped: left/right present
    w = {n: ew[:, i] for i, n in enumerate(names) if n != "blink"}
    if np.max(np.abs(w["blinkLeft"] - w["blinkRight"])) < 1e-3:
        # symmetric blinks as 'blink': models without per-eye blinks still blink
        w["blink"] = w.pop("blinkLeft")
        del w["blinkRight"]
    doc: dict = {"asset": {"version": "2.0", "generator": GENERATOR}, "buffers": [{"byteLength": 0}],
                 "extensionsUsed": ["VRMC_vrm_animation"], "nodes": [], "scenes": [{"nodes": [0]}], "scene": 0}
    d = _Doc(doc)
    idx = {}
    for name, parent, t in _VRMA_BONES:
        idx[name] = len(doc["nodes"])
        doc["nodes"].append({"name": name, "translation": t})
        if parent is not None:
            doc["nodes"][idx[parent]].setdefault("children", []).append(idx[name])
    expr_nodes = {}
    for name in w:
        expr_nodes[name] = len(doc["nodes"])
        doc["nodes"].append({"name": name})
        doc["scenes"][0]["nodes"].append(expr_nodes[name])
    times = _key_times(anim)
    t_acc = d.add_accessor(times, "SCALAR", minmax=True)
    samplers, channels = [], []
    for name, curve in w.items():
        tr = np.zeros((anim.n_frames, 3), np.float32)
        tr[:, 0] = curve
        samplers.append({"input": t_acc, "output": d.add_accessor(_hold_last(tr), "VEC3"), "interpolation": "LINEAR"})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": expr_nodes[name], "path": "translation"}})
    q = rigs.head_rotation(anim, "+z")  # VRM 1.0 and VRMA face +Z
    samplers.append({"input": t_acc, "output": d.add_accessor(_hold_last(q), "VEC4"), "interpolation": "LINEAR"})
    channels.append({"sampler": len(samplers) - 1, "target": {"node": idx["head"], "path": "rotation"}})
    doc["animations"] = [{"name": "viseme-talk", "samplers": samplers, "channels": channels}]
    doc["extensions"] = {"VRMC_vrm_animation": {
        "specVersion": "1.0",
        "humanoid": {"humanBones": {n: {"node": i} for n, i in idx.items()}},
        "expressions": {"preset": {n: {"node": i} for n, i in expr_nodes.items()}}}}
    data = d.glb_bytes()
    atomic_write(out, data)
    return WriteReport(str(out), len(data), anim.n_frames, anim.duration_s,
                       f"VRM Animation: expressions {', '.join(w)} + head rotation", [], "humanoid head", [],
                       time.perf_counter() - t0)
