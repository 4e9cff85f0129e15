"""Read back what `toolkit.export.blend` wrote, as Blender sees it (run in the bpy environment).

    .venv-blender/bin/python blender_addon/tests/inspect_outputs.py FILE.blend|FILE.fbx|FILE.glb [--fps 30]

Prints JSON: per mesh, its shape-key names and the values Blender evaluates
at every frame of the scene range (after a re-import for FBX/glTF), the
frame range, and the sound strips.
"""
from __future__ import annotations

import argparse
import json
import sys

import bpy


def evaluate(scene, start: int, end: int) -> dict:
    meshes = {}
    objs = [o for o in scene.objects if o.type == "MESH" and o.data.shape_keys is not None]
    for o in objs:
        key = o.data.shape_keys
        meshes[o.name] = {"names": [kb.name for kb in key.key_blocks if kb != key.reference_key], "values": []}
    for f in range(start, end + 1):
        scene.frame_set(f)
        for o in objs:
            key = o.data.shape_keys
            meshes[o.name]["values"].append([round(kb.value, 5) for kb in key.key_blocks if kb != key.reference_key])
    return meshes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--fps", type=float, default=30)
    ap.add_argument("--frames", type=int, default=0, help="frames to evaluate after an import (from frame 1)")
    a = ap.parse_args()
    out: dict = {}
    if a.path.endswith(".blend"):
        bpy.ops.wm.open_mainfile(filepath=a.path)
        scene = bpy.context.scene
        start, end = scene.frame_start, scene.frame_end
        ed = scene.sequence_editor
        strips = list(ed.strips_all if hasattr(ed, "strips_all") else ed.sequences_all) if ed else []
        out["sounds"] = [{"name": s.name, "frame_start": s.frame_start, "packed": s.sound.packed_file is not None,
                          "duration_frames": s.frame_final_duration} for s in strips if s.type == "SOUND"]
        out["fps"] = scene.render.fps / scene.render.fps_base
    else:
        bpy.ops.wm.read_homefile(use_empty=True)
        scene = bpy.context.scene
        scene.render.fps, scene.render.fps_base = round(a.fps), round(a.fps) / a.fps
        if a.path.endswith(".fbx"):
            bpy.ops.import_scene.fbx(filepath=a.path)
        else:
            bpy.ops.import_scene.gltf(filepath=a.path)
        start, end = 1, a.frames
        out["actions"] = {act.name: list(act.frame_range) for act in bpy.data.actions}
    out["frame_start"], out["frame_end"] = start, end
    out["meshes"] = evaluate(scene, start, end)
    out["objects"] = {o.name: o.type for o in scene.objects}
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
    sys.exit(0)
