"""Unity AnimationClip (.anim): blend-shape curves and head rotation, as Unity itself writes them.

The file is Unity's YAML (``%YAML 1.1``, tag ``!u!74`` AnimationClip, serializedVersion 6):

* one ``m_FloatCurves`` entry per driven morph target: ``attribute: blendShape.<target name>``,
  ``path:`` the SkinnedMeshRenderer's GameObject path, ``classID: 137``; weights 0..100
  (Unity's blend-shape range) with linear tangents, so Unity plays what glTF plays;
* the head as ``m_EulerCurves`` (degrees, Unity's Z-X-Y order, ``m_RotationOrder: 4``) on the
  head bone's path, in Unity's left-handed axes (glTF's X mirrored, as Unity's glTF importers
  glTFast and UniVRM 1.0 import it: a rotation (x, y, z, w) becomes (x, -y, -z, w));
* the same curves in ``m_EditorCurves`` and ``m_ClipBindingConstant`` (CRC32 of path and
  attribute), as Unity saves them, so the clip shows in the Animation window at once.

Paths are the glTF node names from the scene's root node down, which is the hierarchy Unity's
glTF/VRM importers build under the imported model (put the Animator on that model).
Keys: every frame a straight line between its neighbours cannot stand for (`keyframes.reduce_keys`).

Example
-------
>>> write_unity_anim(anim, "talk.anim", model="avatar.vrm")      # doctest: +SKIP
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from toolkit.animation import Animation
from toolkit.export.gltf import WriteReport
from toolkit.export.keyframes import KEY_TOLERANCE, morph_curves, node_chain, reduce_keys, write_clip
from toolkit.rotation import quat_to_matrix

UNITY_WEIGHT = 100.0  # Unity blend-shape weights run 0..100
EULER_TOLERANCE_DEG = 0.05

# TangentMode bits as Unity stores them: broken (1), left mode << 1, right mode << 5
# (modes: 2 linear, 3 constant): linear keys = 69, held keys = 103.
TANGENT_LINEAR, TANGENT_CONSTANT = 1 | 2 << 1 | 2 << 5, 1 | 3 << 1 | 3 << 5
WEIGHT = "0.33333334"  # Unity's default tangent weight
BLEND_SHAPE_CLASS, TRANSFORM_CLASS = 137, 4  # SkinnedMeshRenderer, Transform
BLEND_SHAPE_CUSTOM, EULER_ATTRIBUTE = 20, 4  # generic binding kinds Unity writes for them


def _num(x: float) -> str:
    """A float as Unity writes it (float32 precision, integers bare, 'Infinity')."""
    x = np.float32(x)
    if np.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    s = str(x)  # the shortest text that reads back as the same float32
    s = s[:-2] if s.endswith(".0") else s
    return "0" if s == "-0" else s


def unity_path(model, node: int) -> tuple[str, list[str]]:
    """The GameObject path of ``node`` under the imported model, and warnings for unnamed nodes."""
    names, warnings = [], []
    for n in node_chain(model, node):
        name = model.gltf.nodes[n].name
        if not name:
            name = f"Node-{n}"
            warnings.append(f"node #{n} has no name; its path is written with {name!r}")
        names.append(name)
    return "/".join(names), warnings


def unity_euler_deg(q: np.ndarray) -> np.ndarray:
    """glTF local rotations (n x 4, x y z w) -> Unity local Euler angles in degrees (n x 3, Z-X-Y order),
    in Unity's mirrored axes, unwrapped so the curves never jump 360 degrees."""
    out = np.empty((len(q), 3))
    for i, (x, y, z, w) in enumerate(np.asarray(q, np.float64)):
        r = quat_to_matrix([x, -y, -z, w])  # mirror X: Unity is left-handed
        # Unity applies z, then x, then y: R = Ry Rx Rz
        out[i] = [np.arcsin(np.clip(-r[1, 2], -1, 1)), np.arctan2(r[0, 2], r[2, 2]), np.arctan2(r[1, 0], r[1, 1])]
    return np.degrees(np.unwrap(out, axis=0))


def _slopes(t: np.ndarray, v: np.ndarray, stepped: bool) -> tuple[np.ndarray, np.ndarray]:
    """In and out slopes of linear (or held) keys, per component."""
    if stepped:
        inf = np.full_like(v, np.inf)
        return inf, inf
    seg = np.diff(v, axis=0) / np.diff(t)[:, None] if len(t) > 1 else np.zeros((0, v.shape[1]))
    ins = np.vstack([seg[:1], seg]) if len(seg) else np.zeros_like(v)
    outs = np.vstack([seg, seg[-1:]]) if len(seg) else np.zeros_like(v)
    return ins, outs


def _keys(t: np.ndarray, v: np.ndarray, stepped: bool, vector: bool) -> list[str]:
    """The m_Curve lines of one curve (scalar, or {x, y, z} when ``vector``)."""
    ins, outs = _slopes(t, v, stepped)
    mode = TANGENT_CONSTANT if stepped else TANGENT_LINEAR

    def val(row):
        return "{" + ", ".join(f"{c}: {_num(x)}" for c, x in zip("xyz", row)) + "}" if vector else _num(row[0])

    weight = "{x: %s, y: %s, z: %s}" % (WEIGHT, WEIGHT, WEIGHT) if vector else WEIGHT
    lines = []
    for i in range(len(t)):
        lines += ["      - serializedVersion: 3", f"        time: {_num(t[i])}", f"        value: {val(v[i])}",
                  f"        inSlope: {val(ins[i])}", f"        outSlope: {val(outs[i])}",
                  f"        tangentMode: {0 if vector else mode}", "        weightedMode: 0",
                  f"        inWeight: {weight}", f"        outWeight: {weight}"]
    return lines


def _curve_block(keys: list[str]) -> list[str]:
    return (["  - curve:", "      serializedVersion: 2"] + (["      m_Curve:"] + keys if keys else ["      m_Curve: []"])
            + ["      m_PreInfinity: 2", "      m_PostInfinity: 2", "      m_RotationOrder: 4"])


def _float_curve(keys, attribute: str, path: str, class_id: int) -> list[str]:
    return _curve_block(keys) + [f"    attribute: {attribute}", f"    path: {path}", f"    classID: {class_id}",
                                 "    script: {fileID: 0}"]


def _binding(path: str, attribute: int, type_id: int, custom: int) -> list[str]:
    return ["    - serializedVersion: 2", f"      path: {zlib.crc32(path.encode())}", f"      attribute: {attribute}",
            "      script: {fileID: 0}", f"      typeID: {type_id}", f"      customType: {custom}",
            "      isPPtrCurve: 0"]


def _section(name: str, lines: list[str]) -> list[str]:
    return [f"  {name}:"] + lines if lines else [f"  {name}: []"]


def unity_clip_text(anim: Animation, perf, name: str) -> tuple[str, list[str]]:
    """The .anim file's text for the Performance ``perf``, and warnings."""
    model, fps = perf.model, anim.fps
    times = np.arange(anim.n_frames + 1) / fps  # a closing key: the clip lasts as long as the sound
    curves, warnings = morph_curves(perf)
    floats, editor, bindings = [], [], []
    for c in curves:
        path, w = unity_path(model, c.node)
        warnings += [x for x in w if x not in warnings]
        v = np.r_[c.values, c.values[-1:]].astype(np.float64)[:, None] * UNITY_WEIGHT
        k = reduce_keys(v, KEY_TOLERANCE * UNITY_WEIGHT, perf.stepped)
        block = _float_curve(_keys(times[k], v[k], perf.stepped, False), f"blendShape.{c.name}", path,
                             BLEND_SHAPE_CLASS)
        floats += block
        editor += block
        bindings += _binding(path, zlib.crc32(c.name.encode()), BLEND_SHAPE_CLASS, BLEND_SHAPE_CUSTOM)
    euler, euler_editor = [], []
    if perf.head_node is not None and perf.head_rotation is not None:
        path, w = unity_path(model, perf.head_node)
        warnings += w
        e = unity_euler_deg(np.r_[perf.head_rotation, perf.head_rotation[-1:]])
        k = reduce_keys(e, EULER_TOLERANCE_DEG)
        euler = _curve_block(_keys(times[k], e[k], False, True)) + [f"    path: {path}"]
        for j, axis in enumerate("xyz"):
            editor += _float_curve(_keys(times[k], e[k][:, j:j + 1], False, False), f"localEulerAnglesRaw.{axis}",
                                   path, TRANSFORM_CLASS)
            euler_editor += _float_curve([], f"m_LocalEulerAngles.{axis}", path, TRANSFORM_CLASS)
        bindings = _binding(path, EULER_ATTRIBUTE, TRANSFORM_CLASS, EULER_ATTRIBUTE) + bindings
    settings = ["    serializedVersion: 2", "    m_AdditiveReferencePoseClip: {fileID: 0}",
                "    m_AdditiveReferencePoseTime: 0", "    m_StartTime: 0", f"    m_StopTime: {_num(anim.duration_s)}",
                "    m_OrientationOffsetY: 0", "    m_Level: 0", "    m_CycleOffset: 0",
                "    m_HasAdditiveReferencePose: 0", "    m_LoopTime: 0", "    m_LoopBlend: 0",
                "    m_LoopBlendOrientation: 0", "    m_LoopBlendPositionY: 0", "    m_LoopBlendPositionXZ: 0",
                "    m_KeepOriginalOrientation: 0", "    m_KeepOriginalPositionY: 1",
                "    m_KeepOriginalPositionXZ: 0", "    m_HeightFromFeet: 0", "    m_Mirror: 0"]
    lines = ["%YAML 1.1", "%TAG !u! tag:unity3d.com,2011:", "--- !u!74 &7400000", "AnimationClip:",
             "  m_ObjectHideFlags: 0", "  m_CorrespondingSourceObject: {fileID: 0}", "  m_PrefabInstance: {fileID: 0}",
             "  m_PrefabAsset: {fileID: 0}", f"  m_Name: {name}", "  serializedVersion: 6", "  m_Legacy: 0",
             "  m_Compressed: 0", "  m_UseHighQualityCurve: 1", "  m_RotationCurves: []",
             "  m_CompressedRotationCurves: []", *_section("m_EulerCurves", euler), "  m_PositionCurves: []",
             "  m_ScaleCurves: []", *_section("m_FloatCurves", floats), "  m_PPtrCurves: []",
             f"  m_SampleRate: {_num(fps)}", "  m_WrapMode: 0", "  m_Bounds:", "    m_Center: {x: 0, y: 0, z: 0}",
             "    m_Extent: {x: 0, y: 0, z: 0}", "  m_ClipBindingConstant:",
             *(["    genericBindings:"] + bindings if bindings else ["    genericBindings: []"]),
             "    pptrCurveMapping: []", "  m_AnimationClipSettings:", *settings,
             *_section("m_EditorCurves", editor), *_section("m_EulerEditorCurves", euler_editor),
             f"  m_HasGenericRootTransform: {1 if euler and path == '' else 0}", "  m_HasMotionFloatCurves: 0",
             "  m_Events: []"]
    return "\n".join(lines) + "\n", warnings


def write_unity_anim(anim: Animation, out_path: str | Path, model=None, profile=None) -> WriteReport:
    """Write ``anim`` on ``model`` (default: the toolkit's head) as a Unity .anim clip, atomically."""
    return write_clip(anim, out_path, model, profile, "Unity clip", unity_clip_text)
