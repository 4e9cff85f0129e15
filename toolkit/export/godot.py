"""Godot 4 Animation resource (.tres): blend-shape tracks and the head's rotation track.

The text resource format (``[gd_resource type="Animation" format=3]``) with one
``blend_shape`` track per driven morph target (``NodePath("Path/To/MeshInstance3D:target")``,
keys ``PackedFloat32Array(time, transition, weight, ...)``, weights 0..1) and a
``rotation_3d`` track for the head (keys ``time, transition, x, y, z, w``: the bone's or node's
local rotation; Godot's axes are glTF's), the key layouts of Godot's
``scene/resources/animation.cpp``.

Paths follow what Godot 4's glTF importer builds under the imported scene's root (the
AnimationPlayer's default root): node names (``. : @ / " %`` replaced by ``_``, repeats made
unique as ``Name2``...), skin joints become bones of a ``Skeleton3D`` placed under the root
joint's parent, skinned meshes sit under that ``Skeleton3D``, and a bone is addressed as
``Path/Skeleton3D:Bone``.  Keys: every frame a straight line between its neighbours cannot
stand for (`keyframes.reduce_keys`); held keys (2D mouth charts) use nearest interpolation.

Example
-------
>>> write_godot_animation(anim, "talk.tres", model="avatar.glb")    # doctest: +SKIP
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from toolkit.animation import Animation
from toolkit.export.gltf import WriteReport
from toolkit.export.keyframes import KEY_TOLERANCE, morph_curves, node_chain, reduce_keys, write_clip

ROTATION_TOLERANCE = 1e-4  # quaternion components (about 0.01 degrees)
INTERP_NEAREST, INTERP_LINEAR = 0, 1
_INVALID_NODE_CHARS = re.compile(r'[.:@/"%]')  # what Godot does not allow in a node name
_INVALID_BONE_CHARS = re.compile(r"[:/]")


def _num(x: float) -> str:
    """A float as Godot's text resources write it (6 significant digits, integers bare)."""
    s = f"{float(x):.6g}"
    return "0" if s == "-0" else s


class GodotNames:
    """The node paths and bone names Godot 4's glTF importer gives a model's nodes."""

    def __init__(self, model):
        self.model = model
        nodes = model.gltf.nodes
        self.joints = {j for s in model.gltf.skins for j in (s.joints or []) if 0 <= j < len(nodes)}
        used: dict[str, int] = {}
        self.names: dict[int, str] = {}
        for i, n in enumerate(nodes):
            if i in self.joints:
                self.names[i] = _INVALID_BONE_CHARS.sub("_", n.name or f"bone_{i}")
                continue
            base = _INVALID_NODE_CHARS.sub("_", n.name or ("Mesh" if n.mesh is not None else "Node"))
            used[base] = used.get(base, 0) + 1
            self.names[i] = base if used[base] == 1 else f"{base}{used[base]}"
        # one Skeleton3D per tree of joints, named like Godot's ("Skeleton3D", "Skeleton3D2", ...)
        parents = model.parents()
        self.skeleton_of: dict[int, str] = {}
        roots = sorted(j for j in self.joints if parents[j] not in self.joints)
        for k, root in enumerate(roots):
            above = parents[root]
            path = (self.path(above) + "/" if above is not None else "") + ("Skeleton3D" if k == 0 else f"Skeleton3D{k + 1}")
            for j in self.joints:
                if root in node_chain(model, j):
                    self.skeleton_of[j] = path

    def path(self, node: int) -> str:
        """The NodePath of ``node`` (``Skeleton:Bone`` for a joint)."""
        if node in self.joints:
            return f"{self.skeleton_of[node]}:{self.names[node]}"
        n = self.model.gltf.nodes[node]
        if n.skin is not None and n.mesh is not None:
            joints = self.model.gltf.skins[n.skin].joints or []
            if joints and joints[0] in self.skeleton_of:  # Godot puts a skinned mesh under its skeleton
                return f"{self.skeleton_of[joints[0]]}/{self.names[node]}"
        parent = self.model.parents()[node]
        if parent is None:
            return self.names[node]
        if parent in self.joints:  # a node under a bone hangs from a BoneAttachment3D named after the bone
            return f"{self.skeleton_of[parent]}/{self.names[parent]}/{self.names[node]}"
        return f"{self.path(parent)}/{self.names[node]}"


def godot_animation_text(anim: Animation, perf, name: str) -> tuple[str, list[str]]:
    """The .tres text for the Performance ``perf``, and warnings."""
    names = GodotNames(perf.model)
    times = np.arange(anim.n_frames + 1) / anim.fps  # a closing key: the clip lasts as long as the sound
    curves, warnings = morph_curves(perf)
    lines = ['[gd_resource type="Animation" format=3]', "", "[resource]", f'resource_name = "{name}"',
             f"length = {float(anim.duration_s)!r}", f"step = {_num(1 / anim.fps)}"]
    tracks = []
    for c in curves:
        v = np.r_[c.values, c.values[-1:]].astype(np.float64)
        k = reduce_keys(v, KEY_TOLERANCE, perf.stepped)
        keys = ", ".join(f"{_num(times[i])}, 1, {_num(v[i])}" for i in k)
        tracks.append(("blend_shape", f"{names.path(c.node)}:{c.name}",
                       INTERP_NEAREST if perf.stepped else INTERP_LINEAR, keys))
    if perf.head_node is not None and perf.head_rotation is not None:
        q = np.r_[perf.head_rotation, perf.head_rotation[-1:]].astype(np.float64)
        k = reduce_keys(q, ROTATION_TOLERANCE)
        keys = ", ".join(f"{_num(times[i])}, 1, " + ", ".join(_num(x) for x in q[i]) for i in k)
        tracks.append(("rotation_3d", names.path(perf.head_node), INTERP_LINEAR, keys))
    for i, (kind, path, interp, keys) in enumerate(tracks):
        lines += [f'tracks/{i}/type = "{kind}"', f"tracks/{i}/imported = false", f"tracks/{i}/enabled = true",
                  f'tracks/{i}/path = NodePath("{_escape(path)}")', f"tracks/{i}/interp = {interp}",
                  f"tracks/{i}/loop_wrap = true", f"tracks/{i}/keys = PackedFloat32Array({keys})"]
    return "\n".join(lines) + "\n", warnings


def _escape(s: str) -> str:
    """A Godot string literal's content."""
    return s.replace("\\", "\\\\").replace('"', '\\"')


def write_godot_animation(anim: Animation, out_path: str | Path, model=None, profile=None) -> WriteReport:
    """Write ``anim`` on ``model`` (default: the toolkit's head) as a Godot 4 Animation .tres, atomically."""
    return write_clip(anim, out_path, model, profile, "Godot animation", godot_animation_text)
