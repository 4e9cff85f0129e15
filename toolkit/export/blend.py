"""Blender outputs: a .blend scene or an FBX file with the shape-key animation.

Blender's Python module (bpy 5.0.1) needs numpy<2, so it lives in its own
environment, ``.venv-blender`` (made by ``make setup``).  These writers hand
the animation over as JSON to ``blender_addon/export_scene.py`` running
there: it loads the model (glTF/GLB/VRM, FBX, .blend; the default head when
none), keys every mesh whose shape keys match a rig profile (`toolkit.rigs`),
turns the head, adds the sound and saves.

Example
-------
>>> from toolkit.pipeline import animate                          # doctest: +SKIP
>>> anim = animate("speech.wav", "Hello world")                   # doctest: +SKIP
>>> write_blend(anim, "scene.blend", audio="speech.wav")          # doctest: +SKIP
>>> write_fbx(anim, "face.fbx", model="face.glb")                 # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from toolkit.animation import Animation
from toolkit.files import check_output_path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "blender_addon" / "export_scene.py"
MODEL_SUFFIXES = (".glb", ".gltf", ".vrm", ".fbx", ".blend")
GLTF_SUFFIXES = (".glb", ".gltf", ".vrm")


class BlenderError(RuntimeError):
    """Blender (bpy) is missing or failed; the message says what to do."""


def blender_python() -> Path:
    """The bpy environment's interpreter (``$VISEME_BLENDER_PYTHON`` overrides ``.venv-blender``)."""
    env = os.environ.get("VISEME_BLENDER_PYTHON")
    py = Path(env) if env else REPO / ".venv-blender" / "bin" / "python"
    if not py.is_file():
        raise BlenderError(f"Blender's Python module is not installed ({py} is missing): run `make setup`, "
                           "which creates .venv-blender with bpy")
    return py


def write_blend(anim: Animation, out_path: str | Path, model: str | Path | None = None,
                audio: str | Path | None = None, profile: str | None = None, timeout_s: float = 600) -> dict:
    """Save a .blend: the model (or default head) with its shape-key Action, head motion and packed sound.

    Returns the export summary (animated meshes and their rig profiles, frames, Blender version).
    """
    return _run(anim, out_path, ".blend", model=model, audio=audio, profile=profile, timeout_s=timeout_s)


def write_fbx(anim: Animation, out_path: str | Path, model: str | Path | None = None,
              profile: str | None = None, timeout_s: float = 600) -> dict:
    """Export FBX with the shape-key animation baked per frame (FBX has no sound track)."""
    return _run(anim, out_path, ".fbx", model=model, audio=None, profile=profile, timeout_s=timeout_s)


def gltf_drive(anim: Animation, model: str | Path, profile=None) -> dict:
    """Per-mesh shape-key weights for a glTF/GLB/VRM model, computed as the glTF exporter does.

    VRM expressions resolve through their morph target binds (`toolkit.gltf_io`), so
    the .blend/FBX of a VRM moves the same targets as its glTF export.
    """
    from toolkit.gltf_io import load_model, model_morph_weights

    m = load_model(model)
    drive = model_morph_weights(anim, m, profile)
    meshes = []
    for node, w in drive.weights.items():
        mesh = m.gltf.nodes[node].mesh
        idx = sorted(drive.driven[node])
        meshes.append({"node": node, "node_name": m.gltf.nodes[node].name or "", "mesh_name": m.meshes[mesh].name or "",
                       "n_targets": int(w.shape[1]), "targets": idx,
                       "weights": np.round(w[:, idx].astype(np.float64), 5).tolist()})
    head = m.head_node
    return {"via": drive.via, "profile": drive.match.profile.name if drive.match else None, "meshes": meshes,
            "head": None if head is None else {"name": m.gltf.nodes[head].name or "", "facing": m.facing}}


def _run(anim, out_path, suffix, *, model, audio, profile, timeout_s) -> dict:
    out = Path(out_path)
    if out.suffix.lower() != suffix:
        raise ValueError(f"{out}: expected a {suffix} file name")
    check_output_path(out, inputs=(model, audio))
    for label, p in (("model", model), ("audio", audio)):
        if p is not None and not Path(p).is_file():
            raise ValueError(f"{p}: {label} file not found")
    if model is not None and Path(model).suffix.lower() not in MODEL_SUFFIXES:
        raise ValueError(f"{model}: unsupported model type (use {', '.join(MODEL_SUFFIXES)})")
    py = blender_python()
    with tempfile.TemporaryDirectory(prefix="viseme-blend-") as tmp:
        anim_json = Path(tmp) / "animation.json"
        anim_json.write_text(json.dumps(anim.to_dict(), separators=(",", ":")), encoding="utf-8")
        cmd = [str(py), str(SCRIPT), "--anim", str(anim_json), "--out", str(out.resolve())]
        if model is not None:
            cmd += ["--model", str(Path(model).resolve())]
        if audio is not None:
            cmd += ["--audio", str(Path(audio).resolve())]
        if profile is not None:
            cmd += ["--profile", str(profile)]
        if model is not None and Path(model).suffix.lower() in GLTF_SUFFIXES:
            drive_json = Path(tmp) / "drive.json"
            drive_json.write_text(json.dumps(gltf_drive(anim, model, profile)), encoding="utf-8")
            cmd += ["--drive", str(drive_json)]
        # Blender's user folders go to the temp dir: a headless export must not read or change the user's prefs
        env = dict(os.environ, BLENDER_USER_RESOURCES=str(Path(tmp) / "blender-user"))
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise BlenderError(f"{out}: Blender export took longer than {timeout_s:.0f} s") from None
    if r.returncode == 2:
        msg = next((ln[7:] for ln in r.stderr.splitlines() if ln.startswith("ERROR: ")), r.stderr.strip()[-500:])
        raise ValueError(msg)
    if r.returncode != 0:
        raise BlenderError(f"{out}: Blender export failed (exit {r.returncode}):\n{r.stderr.strip()[-2000:]}")
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise BlenderError(f"{out}: Blender export printed no summary:\n{r.stdout[-1000:]}") from None
