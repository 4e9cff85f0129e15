"""Build a Blender scene from an animation JSON and save it as .blend or export FBX.

Run by `toolkit.export.blend` in a Python that has bpy (``.venv-blender``, or the
toolkit's own environment when it has bpy: ``pip install viseme-toolkit[blender]``)::

    python -m toolkit.blender.export_scene --anim a.json --out scene.blend \
        [--model face.glb] [--audio speech.wav] [--profile arkit52]

The model (glTF/GLB/VRM, FBX or .blend; the default head when none) is loaded,
every mesh whose shape keys match a rig profile gets the add-on's shape-key
Action (the model's own shape-key clip moves to a muted NLA track), the head
bone (or the lone head mesh) turns with the head channels,
the audio goes on the sequencer (packed into the .blend) and the frame range
and rate follow the animation.  The output is written to a temporary file in
the destination folder and renamed when complete.

On a user error it prints one line ``ERROR: <message>`` on stderr and exits
with status 2; on success it prints a JSON summary on the last stdout line.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import bpy

from toolkit import rigs
from toolkit.blender import keyframes, lipsync
from toolkit.blender.lipsync import LipSyncError
from toolkit.resources import DEFAULT_HEAD


def load_model(path: Path | None, label: str | None = None) -> None:
    """Replace the scene with the model's (or the default head's) objects.

    `label` names the model in errors when `path` is a temporary plain copy of it.
    """
    bpy.ops.wm.read_homefile(use_empty=True)
    if path is None:
        path = DEFAULT_HEAD if DEFAULT_HEAD.is_file() else None
        if path is None:
            _procedural_head()
            return
    suffix = path.suffix.lower()
    if not path.is_file():
        raise LipSyncError(f"{label or path}: model file not found")
    try:
        if suffix in (".glb", ".gltf", ".vrm"):
            result = bpy.ops.import_scene.gltf(filepath=str(path))
        elif suffix == ".fbx":
            result = bpy.ops.import_scene.fbx(filepath=str(path))
        elif suffix == ".blend":
            result = bpy.ops.wm.open_mainfile(filepath=str(path))
        else:
            raise LipSyncError(f"{label or path}: unsupported model type {suffix!r} "
                               "(use .glb, .gltf, .vrm, .fbx or .blend)")
    except RuntimeError as e:  # importer errors (unsupported extension, broken file)
        raise LipSyncError(f"{label or path}: Blender cannot import this model ({str(e).strip()[-300:]})") from None
    if result != {"FINISHED"}:
        raise LipSyncError(f"{label or path}: Blender could not import this model")


def _procedural_head() -> None:
    """A sphere with the ARKit mouth/jaw/blink keys (only when assets/head/head.glb is absent)."""
    import bmesh

    from toolkit.animation import ARKIT_BLENDSHAPES

    mesh = bpy.data.meshes.new("Head")
    bm = bmesh.new()
    bmesh.ops.create_uvsphere(bm, u_segments=24, v_segments=16, radius=0.1)
    bm.to_mesh(mesh)
    bm.free()
    obj = bpy.data.objects.new("Head", mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.shape_key_add(name="Basis")
    for name in ARKIT_BLENDSHAPES:
        kb = obj.shape_key_add(name=name)
        for v in kb.data:  # a real (small) deformation so exporters keep the target
            if v.co.z < 0 and v.co.y < 0:
                v.co.z -= 0.02 * (-v.co.z / 0.1)


def animate_meshes(anim, profile: str | None, frame_start: int = 1) -> list[dict]:
    """Key every mesh whose shape keys a rig profile drives; returns one summary per mesh."""
    done, reasons = [], []
    for obj in bpy.context.scene.objects:
        if obj.type != "MESH" or obj.data.shape_keys is None or len(obj.data.shape_keys.key_blocks) < 2:
            continue
        names = lipsync.shape_key_names(obj)
        try:
            rows, match = lipsync.detect_mapping(names, profile=profile)
            weights = lipsync.weights_for(anim, names, rows, stepped=match.profile.stepped)
            keyframes.stash_active(obj.data.shape_keys)
            act, _ = lipsync.apply_shape_keys(obj, names, weights, frame_start, only_driven=[bool(m) for _, m in rows])
        except LipSyncError as e:
            reasons.append(f"{obj.name}: {e}")
            continue
        act["viseme_phonemes"] = json.dumps([[p.label, round(p.start, 4), round(p.end, 4)] for p in anim.phonemes],
                                            ensure_ascii=False)
        done.append({"object": obj.name, "profile": match.profile.name, "driven": match.n_matched,
                     "shape_keys": len(names)})
    if not done:
        raise LipSyncError("no mesh in the model has shape keys a rig profile drives"
                           + (": " + "; ".join(reasons) if reasons else " (the model has no shape keys)"))
    return done


def _object_for(entry: dict, used: set):
    """The Blender object the glTF importer made for a glTF node (named after the node, or its mesh)."""
    cands = [o for o in bpy.context.scene.objects if o.type == "MESH" and o.data.shape_keys is not None
             and len(o.data.shape_keys.key_blocks) - 1 == entry["n_targets"] and o.name not in used]
    for test in (lambda o: entry["node_name"] and (o.name == entry["node_name"]
                                                   or o.name.rsplit(".", 1)[0] == entry["node_name"]),
                 lambda o: entry["mesh_name"] and o.data.name.rsplit(".", 1)[0] == entry["mesh_name"]):
        hit = next((o for o in cands if test(o)), None)
        if hit is not None:
            return hit
    return cands[0] if len(cands) == 1 else None


def animate_from_drive(drive: dict, frame_start: int = 1) -> list[dict]:
    """Key the imported glTF/VRM meshes with weights computed by `toolkit.gltf.drive` (VRM binds resolved)."""
    import numpy as np

    done, used, keyed = [], set(), {}
    for entry in drive["meshes"]:
        obj = _object_for(entry, used)
        if obj is None:
            raise LipSyncError(f"cannot find the imported mesh of glTF node {entry['node_name'] or entry['node']!r}")
        used.add(obj.name)
        key = obj.data.shape_keys
        blocks = [kb for kb in key.key_blocks if kb != key.reference_key]
        names = [blocks[t].name for t in entry["targets"]]
        weights = np.asarray(entry["weights"], np.float32).reshape(-1, len(names))
        # a mesh whose targets (say, the eyes') do not move in this clip is left alone, unless another
        # node shares it: keyed for that node, it would move here too
        if not np.any(np.abs(weights) > 1e-4) and obj.data.users == 1:
            continue
        key = _own_mesh_if_shared(obj, names, weights, keyed)
        keyframes.stash_active(key)
        lipsync.apply_shape_keys(obj, names, weights, frame_start, key_zeros=True)
        done.append({"object": obj.name, "profile": drive.get("profile"), "driven": len(names),
                     "shape_keys": len(blocks), "via": drive.get("via")})
    if not done:
        raise LipSyncError(f"nothing to animate: the model's driven targets stay at 0 for this audio ({drive.get('via')})")
    return done


def _own_mesh_if_shared(obj, names: list[str], weights, keyed: dict):
    """The shape keys to key for `obj`, made its own when another node's different weights already use them.

    glTF nodes that place one mesh share it (and its shape keys) in Blender, but VRM 1.0
    binds are per node: blinkLeft on one eye node, blinkRight on the other.  Returns the Key.
    """
    import numpy as np

    prev = keyed.get(obj.data.name)
    if prev is not None and not (prev[0] == names and np.allclose(prev[1], weights, atol=1e-6)):
        obj.data = obj.data.copy()  # copies the shape keys too
    keyed[obj.data.name] = (names, weights)
    return obj.data.shape_keys


def animate_head(anim, meshes: list[dict], frame_start: int = 1, head: dict | None = None) -> str | None:
    """Head rotation on the model's head node (glTF/VRM: a bone or an object of that name), else on a
    head bone found by name, or on the face mesh when it is the whole model."""
    if not any(anim.has(c) for c in ("headPitch", "headYaw", "headRoll")):
        return None
    if head and head.get("name"):
        name = head["name"]
        for obj in bpy.context.scene.objects:
            if obj.type == "ARMATURE" and name in obj.pose.bones:
                lipsync.apply_head(obj, anim, frame_start, bone=name)
                return f"{obj.name}:{name}"
        obj = next((o for o in bpy.context.scene.objects if o.name == name or o.name.rsplit(".", 1)[0] == name), None)
        if obj is not None:
            lipsync.apply_head(obj, anim, frame_start, facing="+y" if head.get("facing") == "-z" else "-y")
            return obj.name
    for obj in bpy.context.scene.objects:
        if obj.type == "ARMATURE":
            # the best head-bone name, as the glTF path ranks them (toolkit.rigs.head_bone_rank)
            ranked = [(r, b.name) for b in obj.pose.bones if (r := rigs.head_bone_rank(b.name)) is not None]
            bone = min(ranked)[1] if ranked else None
            if bone:
                lipsync.apply_head(obj, anim, frame_start, bone=bone)
                return f"{obj.name}:{bone}"
    if len(meshes) == 1 and not any(o.type == "ARMATURE" for o in bpy.context.scene.objects):
        obj = bpy.data.objects[meshes[0]["object"]]
        if obj.parent is None:
            lipsync.apply_head(obj, anim, frame_start)
            return obj.name
    return None


def save(out: Path, audio: Path | None) -> None:
    """Write the .blend or .fbx to ``out``: a temporary file `toolkit.export.blend` made beside the
    user's output (it renames or streams it there once complete, and removes it on failure)."""
    suffix = out.suffix.lower()
    tmp = str(out)
    try:
        if suffix == ".blend":
            bpy.context.preferences.filepaths.save_version = 0  # no .blend1 next to the temp file
            bpy.ops.wm.save_as_mainfile(filepath=tmp, compress=True, relative_remap=False)
        elif suffix == ".fbx":
            # bake_anim with NLA/all-actions off bakes what the scene plays, shape keys included;
            # simplify 0 keeps every frame (the default simplification drops short lip closures)
            bpy.ops.export_scene.fbx(
                filepath=tmp, use_selection=False, object_types={"MESH", "ARMATURE", "EMPTY"},
                bake_anim=True, bake_anim_use_all_bones=True, bake_anim_use_nla_strips=False,
                bake_anim_use_all_actions=False, bake_anim_force_startend_keying=True,
                bake_anim_step=1.0, bake_anim_simplify_factor=0.0, add_leaf_bones=False,
                use_mesh_modifiers=False)
        else:
            raise LipSyncError(f"{out}: unsupported output type {suffix!r} (use .blend or .fbx)")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_scene(anim, model: Path | None, audio: Path | None, profile: str | None, pack_audio: bool,
                frame_start: int = 1, drive: dict | None = None, model_label: str | None = None) -> dict:
    """Load the model and key it; animation frame 0 (and the audio's start) lands on `frame_start`."""
    load_model(model, model_label)
    scene = bpy.context.scene
    lipsync.set_scene_fps(scene, anim.fps)
    meshes = animate_from_drive(drive, frame_start) if drive else animate_meshes(anim, profile, frame_start)
    head = animate_head(anim, meshes, frame_start, head=(drive or {}).get("head"))
    if audio is not None:
        lipsync.add_sound_strip(scene, str(audio), frame_start, pack=pack_audio)
    lipsync.set_frame_range(scene, frame_start, anim.n_frames)
    scene.frame_set(frame_start)
    return {"meshes": meshes, "head": head, "frames": anim.n_frames, "fps": anim.fps,
            "blender": bpy.app.version_string, "slotted_actions": keyframes.is_slotted()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="animation JSON -> .blend / .fbx (run in the bpy environment)")
    ap.add_argument("--anim", required=True, help="animation JSON (toolkit.export.tracks.write_json)")
    ap.add_argument("--out", required=True, help="output .blend or .fbx")
    ap.add_argument("--model", help="glTF/GLB/VRM/FBX/.blend model (default: the toolkit's head)")
    ap.add_argument("--audio", help="audio to put on the sequencer (packed into a .blend)")
    ap.add_argument("--profile", help="rig profile name or JSON path (default: detected)")
    ap.add_argument("--drive", help="per-mesh weights for a glTF/VRM model (toolkit.export.blend.gltf_drive)")
    ap.add_argument("--model-label", help="the model's name in errors (when --model is a temporary plain copy)")
    args = ap.parse_args(argv)
    from toolkit.animation import Animation

    try:
        anim = Animation.load(args.anim)
        out = Path(args.out).resolve()
        summary = build_scene(anim, Path(args.model) if args.model else None,
                              Path(args.audio) if args.audio else None, args.profile,
                              pack_audio=out.suffix.lower() == ".blend",
                              # FBX time is frame / fps: starting at frame 0 puts the first frame at 0 s
                              frame_start=0 if out.suffix.lower() == ".fbx" else 1,
                              drive=json.loads(Path(args.drive).read_text(encoding="utf-8")) if args.drive else None,
                              model_label=args.model_label)
        save(out, Path(args.audio) if args.audio else None)
    except (LipSyncError, ValueError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    summary["out"] = str(out)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else None))
