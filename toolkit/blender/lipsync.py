"""Put a toolkit `Animation` onto a Blender scene: shape keys, head, sound, frame range.

Runs inside Blender (bpy).  Shared by the add-on's Generate button and by
``viseme animate -o scene.blend`` (`toolkit.export.blend` runs
`toolkit.blender.export_scene`, which calls these).  Nothing
here knows about the UI; every failure raises `LipSyncError` with a message
fit for Blender's status bar.

Example (inside Blender)
------------------------
>>> names = shape_key_names(obj)                              # doctest: +SKIP
>>> rows, match = detect_mapping(names)                       # doctest: +SKIP
>>> w = weights_for(anim, names, rows)                        # doctest: +SKIP
>>> apply_shape_keys(obj, names, w, frame_start=1)            # doctest: +SKIP
"""
from __future__ import annotations

import json
import math
import os
import re
import tempfile

import bpy
import numpy as np

from . import keyframes

SOUND_STRIP_NAME = "Viseme Audio"
# The character a sound strip speaks for (its object's name): in a dialogue each keeps its own sound.
STRIP_OWNER_PROP = "viseme_object"
HEAD_ROLE = "head"
LIPSYNC_ROLE = "lipsync"
LIPSYNC_GROUP = "Lip Sync"  # F-Curve group of the add-on's own curves


class LipSyncError(ValueError):
    """A problem the user can fix; the message says what and how."""


# -- shape keys and mapping --------------------------------------------------------------------
def shape_keys_of(obj):
    """The object's shape-key data-block, or a clear error."""
    if obj is None:
        raise LipSyncError("Select the mesh to animate (no active object)")
    if obj.type != "MESH":
        raise LipSyncError(f"'{obj.name}' is a {obj.type.lower()}, not a mesh: select the face mesh with shape keys")
    key = obj.data.shape_keys
    if key is None or len(key.key_blocks) < 2:
        raise LipSyncError(f"'{obj.name}' has no shape keys to animate: add shape keys (ARKit, VRM, visemes ...) "
                           "or import a model that has blend shapes")
    return key


def shape_key_names(obj) -> list[str]:
    """Names of the object's shape keys, without the reference (Basis) key."""
    key = shape_keys_of(obj)
    return [kb.name for kb in key.key_blocks if kb != key.reference_key]


def mix_to_text(mix: dict[str, float]) -> str:
    """``{"viseme_aa": 1, "viseme_E": 0.2}`` -> ``"viseme_aa + 0.2*viseme_E"`` (the panel's text form)."""
    return " + ".join(c if abs(w - 1) < 1e-9 else f"{w:g}*{c}" for c, w in mix.items())


def text_to_mix(text: str, where: str = "mapping") -> dict[str, float]:
    """Parse the panel's text form back; raises `LipSyncError` naming the bad term."""
    from toolkit.animation import CHANNELS

    mix: dict[str, float] = {}
    for term in filter(None, (t.strip() for t in text.split("+"))):
        m = re.fullmatch(r"(?:([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*\*\s*)?([A-Za-z_][\w:]*)", term)
        if not m:
            raise LipSyncError(f"{where}: cannot read '{term}' (write e.g. 'jawOpen' or '0.5*viseme_aa + viseme_E')")
        weight, channel = float(m.group(1) or 1.0), m.group(2)
        if channel not in CHANNELS and not channel.startswith("rhubarb:"):
            raise LipSyncError(f"{where}: '{channel}' is not an animation channel (viseme_*, ARKit names, head*)")
        mix[channel] = mix.get(channel, 0.0) + weight
    return mix


def detect_mapping(names: list[str], profile: str | None = None):
    """Best rig profile for these shape keys (`toolkit.rigs`): ``(rows, match)``.

    ``rows`` is one ``(shape_key_name, mix)`` per shape key (mix ``{}`` when the
    profile does not drive it); ``match`` is the `toolkit.rigs.RigMatch`.
    Raises `LipSyncError` when no profile drives any of them.
    """
    from toolkit import rigs

    try:
        if profile:
            prof = rigs.load_profile(profile)
            match = rigs.match_profile(names, profiles=[prof], kind=prof.kind, strict=False)
        else:
            match = rigs.match_profile(names, strict=False)
    except rigs.RigError as e:
        raise LipSyncError(str(e)) from None
    if not match.n_matched:
        closest = ", ".join(f"{n} {s:.0%}" for n, s in match.candidates[:3])
        shown = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
        raise LipSyncError(f"No shape key matched a known rig (keys: {shown}; closest: {closest}). "
                           "Type the channels for your keys in the mapping list")
    return list(zip(names, match.mixes())), match


def weights_for(anim, names: list[str], rows: list[tuple[str, dict]], stepped: bool = False) -> np.ndarray:
    """Frames x shape keys weights for the (possibly hand-edited) mapping rows (`toolkit.rigs.retarget_mixes`)."""
    from toolkit import rigs

    mixes = {name: mix for name, mix in rows}
    try:
        return rigs.retarget_mixes(anim, names, [mixes.get(n, {}) for n in names], stepped=stepped)
    except rigs.RigError:
        raise LipSyncError("The mapping drives no shape key: detect it again or type channels for your keys") from None


# -- writing -----------------------------------------------------------------------------------
def apply_shape_keys(obj, names: list[str], weights: np.ndarray, frame_start: int, *,
                     use_nla: bool = False, only_driven: list[bool] | None = None,
                     key_zeros: bool = False) -> tuple[object, list[str]]:
    """Key the shape keys with `weights` (frames x names); returns (action, messages).

    The add-on's own shape-key Action is reused on a second run, so the user's
    other Actions and hand-keyed channels stay.  It plays at once (active
    Action) or from an NLA strip (`use_nla`).  A key that stays at 0 is not
    keyed unless `key_zeros` (a glTF clip sets every target it drives, so the
    command-line export of a glTF model keys them all).
    """
    key = shape_keys_of(obj)
    act = keyframes.owned_action(key, LIPSYNC_ROLE)
    if act.name.startswith(key.name + "_"):  # name it after the object the user sees
        act.name = f"{obj.name}_LipSync"
    curves = {}
    for j, name in enumerate(names):
        if only_driven is not None and not only_driven[j]:
            continue
        # a key that stays at 0 the whole clip is not keyed: the user's own animation of it keeps playing
        if not key_zeros and float(np.max(np.abs(weights[:, j]))) < 1e-4:
            continue
        curves[(f'key_blocks["{_escape(name)}"].value', 0)] = weights[:, j]
    if not curves:
        raise LipSyncError(f"Nothing to animate on '{obj.name}': the mapped shape keys stay at 0 for this audio")
    for j, name in enumerate(names):
        # VRM binds may weigh a target beyond 0..1; Blender clamps a key to its slider range
        kb = key.key_blocks[name]
        hi, lo = float(weights[:, j].max()), float(weights[:, j].min())
        if hi > kb.slider_max:
            kb.slider_max = min(10.0, math.ceil(hi))
        if lo < kb.slider_min:
            kb.slider_min = max(-10.0, math.floor(lo))
    keyframes.write_curves(act, key, curves, frame_start, group=LIPSYNC_GROUP)
    reset_shape_keys(key, keyframes.drop_stale_curves(act, key, set(curves), group=LIPSYNC_GROUP))
    msgs = []
    msg = keyframes.push_to_nla(key, act) if use_nla else keyframes.make_active(key, act)
    if msg:
        msgs.append(msg)
    return act, msgs


def _escape(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


def _unescape(name: str) -> str:
    return re.sub(r'\\(.)', r"\1", name)


def reset_shape_keys(key, paths) -> int:
    """Set to 0 the shape keys behind these removed F-Curves ``(data_path, index)``.

    Without a curve a shape key keeps the last value it was evaluated at (a
    blink caught at 0.97 would stay closed on every frame).  Returns how many.
    """
    n = 0
    for path, _ in paths:
        m = re.fullmatch(r'key_blocks\["((?:[^"\\]|\\.)*)"\]\.value', path)
        kb = key.key_blocks.get(_unescape(m.group(1))) if m else None
        if kb is not None:
            kb.value = 0.0
            n += 1
    return n


def remove_lipsync(obj) -> int:
    """Remove the add-on's shape-key Actions from a mesh and zero the keys they drove; returns how many."""
    key = obj.data.shape_keys if obj.type == "MESH" else None
    if key is None:
        return 0
    paths = keyframes.owned_curve_paths(key, LIPSYNC_ROLE)
    n = keyframes.remove_owned(key)
    reset_shape_keys(key, paths)
    return n


def head_euler_deltas(anim) -> np.ndarray:
    """Per-frame (pitch, yaw, roll) in radians (zeros when the animation has no head channels)."""
    cols = [anim.channel(c) if anim.has(c) else np.zeros(anim.n_frames, np.float32)
            for c in ("headPitch", "headYaw", "headRoll")]
    return np.stack(cols, axis=1).astype(np.float64)


def apply_head(target, anim, frame_start: int, bone: str = "", facing: str = "-y") -> tuple[object, list[str]]:
    """Key head rotation on an object (Z up, facing -Y) or on one of an armature's pose bones.

    Pitch + lowers the chin, yaw + turns to the character's left, roll + tilts
    towards its left shoulder, added to the current (rest) rotation.  For a
    bone the axes are the bone's own: X across, Y along the bone (up the neck).
    `facing` is where an object's face looks: "-y" (Blender's front view, glTF
    +Z models) or "+y" (VRM 0.x models); it flips pitch and roll.
    """
    from mathutils import Euler, Quaternion

    if target is None:
        raise LipSyncError("Choose the object (or armature) whose rotation follows the head")
    pyr = head_euler_deltas(anim)
    if bone:
        if target.type != "ARMATURE" or bone not in target.pose.bones:
            raise LipSyncError(f"'{target.name}' has no bone '{bone}': pick the head bone of an armature")
        holder = target.pose.bones[bone]
        base = f'pose.bones["{_escape(bone)}"].'
        # bone space: X across, Y up along the bone, Z to the front/back (roll to the left is -Z)
        axes = [(0, 1.0), (1, 1.0), (2, -1.0)]
    else:
        holder = target
        base = ""
        # object space, Blender front view: the face looks along -Y; X is its left, Z up
        flip = -1.0 if facing == "+y" else 1.0
        axes = [(0, flip), (2, 1.0), (1, flip)]
    deltas = np.zeros((len(pyr), 3))
    for (axis, sign), col in zip(axes, pyr.T):
        deltas[:, axis] = sign * col
    mode = holder.rotation_mode
    if mode == "AXIS_ANGLE":
        raise LipSyncError(f"'{holder.name}' uses axis-angle rotation; switch it to Euler or Quaternion")
    prop = "rotation_quaternion" if mode == "QUATERNION" else "rotation_euler"
    act = keyframes.owned_action(target, HEAD_ROLE)
    rest = _rest_rotation(act, base + prop, getattr(holder, prop))
    curves = {}
    if mode == "QUATERNION":
        qs = np.array([tuple(Quaternion(rest) @ Euler(d, "XYZ").to_quaternion()) for d in deltas])
        for i in range(4):
            curves[(base + prop, i)] = qs[:, i]
    else:
        for i in range(3):
            curves[(base + prop, i)] = rest[i] + deltas[:, i]
    if act.name.startswith(target.name + "_"):
        act.name = f"{target.name}_Head"
    keyframes.write_curves(act, target, curves, frame_start, group="Head")
    keyframes.drop_stale_curves(act, target, set(curves), group="Head")
    msg = keyframes.make_active(target, act)
    return act, [msg] if msg else []


def _rest_rotation(act, path: str, current) -> list[float]:
    """The rotation the head motion is added to, remembered in the Action on its first run.

    On a re-run the holder shows the animated pose of the current frame, not
    its rest: adding to that would tilt the head a little more every run.
    """
    rests = json.loads(act.get("viseme_rest", "{}"))
    if path not in rests:
        rests[path] = [float(x) for x in current]
        act["viseme_rest"] = json.dumps(rests)
    return rests[path]


def remove_head(target) -> int:
    """Remove the add-on's head Action from an object or armature and put the rest rotation back."""
    if target is None:
        return 0
    rests = {}
    for act in keyframes.owned_actions(target, HEAD_ROLE):
        rests.update(json.loads(act.get("viseme_rest", "{}")))
    n = keyframes.remove_owned(target)
    for path, values in rests.items():
        owner_path, _, prop = path.rpartition(".")
        try:
            owner = target.path_resolve(owner_path) if owner_path else target
            setattr(owner, prop, values)
        except (ValueError, AttributeError, TypeError):  # the bone was renamed or deleted since
            continue
    return n


def strips_of(scene):
    """Top-level strips of the sequencer (``strips`` on 4.4+/5.x, ``sequences`` on 4.2)."""
    ed = scene.sequence_editor
    if ed is None:
        return None
    return ed.strips if hasattr(ed, "strips") else ed.sequences


def all_strips(scene) -> list:
    ed = scene.sequence_editor
    if ed is None:
        return []
    return list(ed.strips_all if hasattr(ed, "strips_all") else ed.sequences_all)


_unpacked: set[str] = set()  # temporary copies of packed sounds, removed by `release_audio`


def release_audio(path: str) -> None:
    """Remove the temporary copy `sound_strip_path` made of a packed sound (other paths are the user's)."""
    if path in _unpacked:
        _unpacked.discard(path)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def sound_strip_path(strip) -> str:
    """A file the toolkit can read for a sound strip (packed sounds are written to a temp file:
    `release_audio` it when done)."""
    if strip.type != "SOUND" or strip.sound is None:
        raise LipSyncError(f"Strip '{strip.name}' is not a sound strip")
    snd = strip.sound
    if snd.packed_file is not None:
        ext = os.path.splitext(snd.filepath)[1] or ".wav"
        fd, tmp = tempfile.mkstemp(prefix="viseme_", suffix=ext)
        _unpacked.add(tmp)
        with os.fdopen(fd, "wb") as f:
            f.write(snd.packed_file.data)
        return tmp
    path = bpy.path.abspath(snd.filepath)
    if not os.path.isfile(path):
        raise LipSyncError(f"Sound of strip '{strip.name}' is missing on disk: {path}")
    return path


def own_strips(scene, owner: str) -> list:
    """The add-on's sound strips of the character named `owner`, and those whose character is gone
    (deleted, renamed, or an older version's strip naming none): they speak for nobody else."""
    def mine(name) -> bool:
        return name == owner or bpy.data.objects.get(name or "") is None

    return [s for s in all_strips(scene) if s.get(keyframes.OWNER_PROP) and mine(s.get(STRIP_OWNER_PROP))]


def add_sound_strip(scene, filepath: str, frame_start: int, pack: bool = False, owner: str = ""):
    """Put the audio on the sequencer at `frame_start`, replacing the add-on's previous strip for the
    character named `owner` (other characters' strips stay)."""
    if not os.path.isfile(filepath):
        raise LipSyncError(f"Audio file not found: {filepath}")
    if not bpy.app.build_options.audaspace:
        raise LipSyncError("This Blender build has no audio support (Audaspace): the sound strip was not added")
    scene.sequence_editor_create()
    strips = strips_of(scene)
    for s in own_strips(scene, owner):
        strips.remove(s)
    used = {s.channel for s in all_strips(scene)
            if s.frame_final_start < frame_start + 10 ** 6 and s.frame_final_end > frame_start}
    channel = next(c for c in range(1, 129) if c not in used)
    strip = strips.new_sound(SOUND_STRIP_NAME, filepath, channel, int(frame_start))
    strip[keyframes.OWNER_PROP] = "sound"
    strip[STRIP_OWNER_PROP] = owner
    if pack and strip.sound is not None and strip.sound.packed_file is None:
        strip.sound.pack()
    return strip


def set_frame_range(scene, frame_start: int, n_frames: int) -> None:
    scene.frame_start = int(frame_start)
    scene.frame_end = int(frame_start) + max(1, int(n_frames)) - 1


def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


def set_scene_fps(scene, fps: float) -> None:
    """Scene rate for an animation made at `fps` (fractional rates such as 29.97 via fps_base)."""
    whole = max(1, math.ceil(fps))
    scene.render.fps = whole
    scene.render.fps_base = whole / fps
