"""Blender outputs: a .blend scene or an FBX file with the shape-key animation.

Blender's Python module (bpy 5.0.1) needs numpy<2, so it usually lives in an
environment of its own: ``.venv-blender`` (made by ``make setup``), or the one
``$VISEME_BLENDER_PYTHON`` names; an environment installed with
``pip install viseme-toolkit[blender]`` has it itself.  These writers hand the
animation over as JSON to `toolkit.blender.export_scene` running there: it
loads the model (glTF/GLB/VRM, FBX, .blend; the default head when none), keys
every mesh the character's `toolkit.gltf.drive.Performance` drives (or, for
FBX/.blend models, whose shape keys match a rig profile), turns the head, adds
the sound and saves.

Blender's glTF importer refuses EXT_meshopt_compression and KHR_texture_basisu.
A model that uses them is handed over as a plain temporary GLB instead
(`plain_glb`: buffers decoded by `toolkit.gltf.read`, KTX2/Basis textures
dropped with a warning in the summary); nodes, meshes and morph targets keep
their indices, so the per-mesh weights still apply.

Example
-------
>>> from toolkit.pipeline import animate                          # doctest: +SKIP
>>> anim = animate("speech.wav", "Hello world")                   # doctest: +SKIP
>>> write_blend(anim, "scene.blend", audio="speech.wav")          # doctest: +SKIP
>>> write_fbx(anim, "face.fbx", model="face.glb")                 # doctest: +SKIP
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import warnings
from pathlib import Path

import numpy as np

from toolkit import cleanup, files
from toolkit.animation import Animation
from toolkit.files import check_output_path
from toolkit.resources import CHECKOUT

PACKAGE = Path(__file__).resolve().parents[1]   # the toolkit package the bpy side imports
MODEL_SUFFIXES = (".glb", ".gltf", ".vrm", ".fbx", ".blend")
GLTF_SUFFIXES = (".glb", ".gltf", ".vrm")
# extensions Blender's glTF importer (4.2 .. 5.x) refuses as required: decoded / dropped before the import
MESHOPT, BASISU = "EXT_meshopt_compression", "KHR_texture_basisu"


class BlenderError(RuntimeError):
    """Blender (bpy) is missing or failed; the message says what to do."""


def blender_python() -> Path:
    """An interpreter with bpy: ``$VISEME_BLENDER_PYTHON``, else this one when it has bpy, else the
    checkout's ``.venv-blender``."""
    import importlib.util
    import sys

    env = os.environ.get("VISEME_BLENDER_PYTHON")
    if env:
        if not Path(env).is_file():
            raise BlenderError(f"VISEME_BLENDER_PYTHON names {env}, which is missing: point it at a Python that "
                               "has Blender's Python module (bpy), or unset it")
        return Path(env)
    if importlib.util.find_spec("bpy") is not None:
        return Path(sys.executable)
    py = CHECKOUT / ".venv-blender" / "bin" / "python" if CHECKOUT else None  # what `make setup` makes
    if py is not None and py.is_file():
        return py
    raise BlenderError(_no_bpy_message(py))


def _no_bpy_message(py: Path | None) -> str:
    """What to do without bpy.  Only a checkout (an editable install too) has ``.venv-blender`` and
    ``make setup`` beside the package; around an installed one is site-packages, which has neither."""
    also = "or set VISEME_BLENDER_PYTHON to a Python that has bpy"
    if CHECKOUT is not None:
        return (f"Blender's Python module (bpy) is not installed ({py} is missing): run `make setup` in {CHECKOUT} "
                f"(it creates .venv-blender), {also}")
    return (f"Blender's Python module (bpy) is not installed: `pip install 'viseme-toolkit[blender]'` into this "
            f"Python 3.11 environment, {also}")


def _bpy_env(tmp: Path) -> dict:
    """Environment for the bpy side: it imports this toolkit package (and nothing else of this
    environment: bpy needs its own numpy), and keeps Blender's user and session folders in ``tmp``."""
    path = tmp / "pythonpath"
    path.mkdir()
    (path / "toolkit").symlink_to(PACKAGE, target_is_directory=True)
    # Blender's user folders go to the temp dir: a headless export must not read or change the user's prefs;
    # so does its session folder (TMPDIR), which a Blender stopped by a signal leaves behind: ours is removed
    return dict(os.environ, PYTHONPATH=str(path), BLENDER_USER_RESOURCES=str(tmp / "blender-user"), TMPDIR=str(tmp))


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


def gltf_drive(anim: Animation, model, profile=None) -> dict:
    """The `toolkit.gltf.drive.Performance` of a glTF/GLB/VRM model as JSON for the bpy side.

    `model` is a path or a loaded `toolkit.gltf.read.Model`.  VRM expressions resolve
    through their morph target binds, so the .blend/FBX of a VRM moves the same
    targets, and turns the same head node, as its glTF export.
    """
    from toolkit.gltf.drive import perform
    from toolkit.gltf.read import Model, load_model

    m = model if isinstance(model, Model) else load_model(model)
    perf = perform(anim, m, profile)
    meshes = []
    for node, w in perf.weights.items():
        mesh = m.gltf.nodes[node].mesh
        idx = sorted(perf.driven[node])
        meshes.append({"node": node, "node_name": m.gltf.nodes[node].name or "", "mesh_name": m.meshes[mesh].name or "",
                       "n_targets": int(w.shape[1]), "targets": idx,
                       "weights": np.round(w[:, idx].astype(np.float64), 5).tolist()})
    head = perf.head_node
    return {"via": perf.via, "profile": perf.match.profile.name if perf.match else None, "meshes": meshes,
            "head": None if head is None else {"name": m.gltf.nodes[head].name or "", "facing": m.facing}}


def needs_plain_copy(model) -> bool:
    """Whether Blender's importer would refuse this `toolkit.gltf.read.Model` (meshopt or Basis data)."""
    used = set(model.extensions_used) | set(model.extensions_required)
    return bool(used & {MESHOPT, BASISU})


def plain_glb(model) -> tuple[bytes, list[str]]:
    """The model as a GLB Blender can import, and warnings for what was left out.

    Every bufferView is written decoded (meshopt) into one buffer, external images
    are embedded, and textures whose only image is KTX2/Basis (KHR_texture_basisu,
    which Blender cannot read) are unhooked from the materials.  Node, mesh,
    accessor and texture indices stay the same.
    """
    from toolkit.export.gltf import _Doc, embed_images

    out = _Doc(copy.deepcopy(model.doc))
    doc = out.doc
    for i, view in enumerate(doc.get("bufferViews") or []):
        data = model.view_bytes(i)  # decoded when meshopt-compressed
        out.align(16)
        exts = {k: v for k, v in (view.pop("extensions", None) or {}).items() if k != MESHOPT}
        view.update(buffer=0, byteOffset=len(out.blob), byteLength=len(data))
        if exts:
            view["extensions"] = exts
        out.blob += data
    doc["buffers"] = [{"byteLength": 0}]
    notes: list[str] = []
    # the temporary copy lives elsewhere: relative image files would not be found
    embed_images(model, out, notes, "image #{i} cannot be read, the Blender scene has no texture from it: {error}")
    notes += _drop_basisu(doc, model.path)
    for key in ("extensionsUsed", "extensionsRequired"):
        kept = [e for e in doc.get(key) or [] if e not in (MESHOPT, BASISU)]
        if kept:
            doc[key] = kept
        else:
            doc.pop(key, None)
    return out.glb_bytes(), notes


def _drop_basisu(doc: dict, name: str) -> list[str]:
    """Remove KHR_texture_basisu; textures left without a PNG/JPEG source are unhooked from materials."""
    dropped = set()
    for t, tex in enumerate(doc.get("textures") or []):
        exts = tex.get("extensions") or {}
        if BASISU not in exts:
            continue
        del exts[BASISU]
        if not exts:
            tex.pop("extensions", None)
        if tex.get("source") is None:  # the KTX2 image was its only one
            dropped.add(t)
    if not dropped:
        return []
    for mat in doc.get("materials") or []:
        _unhook_textures(mat, dropped)
    return [f"{name}: {len(dropped)} texture(s) are KTX2/Basis (KHR_texture_basisu), which Blender cannot read; "
            "left out of the Blender scene (materials keep their colour factors)"]


def _unhook_textures(node, dropped: set) -> None:
    """Delete every textureInfo (``{"index": t, ...}`` under a ``*Texture`` key) that points at a dropped texture."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        if isinstance(key, str) and key.endswith("Texture") and isinstance(value, dict) \
                and value.get("index") in dropped:
            del node[key]
        else:
            _unhook_textures(value, dropped)


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
    # Blender writes into a temporary folder (its own '@' temporary files included), and the finished
    # file is then renamed or streamed to the output by toolkit.files' rules (links, modes, devices)
    with cleanup.temp_dir(prefix="viseme-blend-") as tmp:
        anim_json = Path(tmp) / "animation.json"
        anim_json.write_text(json.dumps(anim.to_dict(), separators=(",", ":")), encoding="utf-8")
        done = Path(tmp) / ("scene" + suffix)
        cmd = [str(py), "-m", "toolkit.blender.export_scene", "--anim", str(anim_json), "--out", str(done)]
        notes = _model_args(anim, Path(model), profile, Path(tmp), cmd) if model is not None else []
        if audio is not None:
            cmd += ["--audio", str(Path(audio).resolve())]
        if profile is not None:
            cmd += ["--profile", str(profile)]
        env = _bpy_env(Path(tmp))
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise BlenderError(f"{out}: Blender export took longer than {timeout_s:.0f} s") from None
        if r.returncode == 0 and done.is_file():
            files.publish(done, out)
    if r.returncode == 2:
        msg = next((ln[7:] for ln in r.stderr.splitlines() if ln.startswith("ERROR: ")), r.stderr.strip()[-500:])
        raise ValueError(msg)
    if r.returncode != 0:
        raise BlenderError(f"{out}: Blender export failed (exit {r.returncode}):\n{r.stderr.strip()[-2000:]}")
    try:
        summary = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise BlenderError(f"{out}: Blender export printed no summary:\n{r.stdout[-1000:]}") from None
    summary["out"], summary["warnings"] = str(out), notes
    for note in notes:  # the callers (the CLI among them) print Python warnings on stderr
        warnings.warn(note, stacklevel=3)
    return summary


def _model_args(anim, model: Path, profile, tmp: Path, cmd: list[str]) -> list[str]:
    """Add ``--model`` (and ``--drive`` for glTF/VRM) to `cmd`; returns warnings about the model."""
    if model.suffix.lower() not in GLTF_SUFFIXES:
        cmd += ["--model", str(model.resolve())]
        return []
    from toolkit.gltf.read import load_model

    m = load_model(model)
    drive_json = tmp / "drive.json"
    drive_json.write_text(json.dumps(gltf_drive(anim, m, profile)), encoding="utf-8")
    cmd += ["--drive", str(drive_json)]
    if not needs_plain_copy(m):
        cmd += ["--model", str(model.resolve())]
        return []
    data, notes = plain_glb(m)
    plain = tmp / "model.glb"
    plain.write_bytes(data)
    # errors still name the user's file, not the temporary copy
    cmd += ["--model", str(plain), "--model-label", str(model)]
    return notes
