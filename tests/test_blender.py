"""Blender: the add-on (built, installed and run inside bpy) and the .blend / FBX exports.

The bpy side needs `.venv-blender` (bpy 5.0.1, numpy<2; `make setup` makes
it); without it these tests skip and say so.  The add-on's own tests run in
that environment: ``.venv-blender/bin/python -m pytest blender_addon/tests -q``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import missing_dependency

REPO = Path(__file__).resolve().parents[1]
BPY = Path(os.environ.get("VISEME_BLENDER_PYTHON", REPO / ".venv-blender" / "bin" / "python"))
SENTENCE = "My mama made lemon jam on Monday."

needs_bpy = pytest.mark.skipif(not BPY.is_file(), reason=f"no bpy environment ({BPY} missing): run `make setup`")
pytestmark = pytest.mark.blender


def _bpy_run(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("BLENDER_USER_RESOURCES", None)
    return subprocess.run([str(BPY)] + args, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    if shutil.which("espeak-ng") is None:
        missing_dependency("the espeak-ng program is not installed (scripts/setup.sh installs it)")
    wav = tmp_path_factory.mktemp("speech") / "mama.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(wav), SENTENCE], check=True)
    return wav


@pytest.fixture(scope="module")
def anim(speech):
    from toolkit.pipeline import animate

    return animate(speech, SENTENCE, fps=30, engine="align")


# older Blender LTS environments, when `VISEME_BLENDER_LTS=... make setup` made them
LTS_PYTHONS = sorted(REPO.glob(".venv-blender-*/bin/python"))


@pytest.mark.parametrize("py", [BPY] + LTS_PYTHONS, ids=lambda p: p.parent.parent.name)
def test_addon_suite_in_blender(py, tmp_path):
    """Build the zip, install it as an extension, run Generate on ARKit and VRoid faces, export glTF."""
    if not py.is_file():
        pytest.skip(f"no bpy environment ({py} missing): run `make setup`")
    env_dir = tmp_path / "blender-user"
    r = subprocess.run([str(py), "-m", "pytest", "blender_addon/tests", "-q", "-p", "no:cacheprovider"],
                       capture_output=True, text=True, timeout=600, cwd=REPO,
                       env=dict(os.environ, BLENDER_USER_RESOURCES=str(env_dir)))
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    assert " passed" in r.stdout and " failed" not in r.stdout


def _inspect(path: Path, frames: int = 0) -> dict:
    r = _bpy_run([str(REPO / "blender_addon" / "tests" / "inspect_outputs.py"), str(path), "--frames", str(frames)])
    assert r.returncode == 0, r.stderr[-3000:]
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[7:])


def _expected(anim, names: list[str]) -> np.ndarray:
    from toolkit.rigs import retarget

    return retarget(anim, names)


@needs_bpy
def test_write_blend_has_shape_key_animation_sound_and_range(anim, speech, tmp_path):
    from toolkit.export.blend import write_blend

    out = tmp_path / "scene.blend"
    summary = write_blend(anim, out, audio=speech)
    assert summary["meshes"] and summary["frames"] == anim.n_frames
    got = _inspect(out)
    assert got["frame_start"] == 1 and got["frame_end"] == anim.n_frames
    assert got["fps"] == pytest.approx(30)
    assert len(got["sounds"]) == 1 and got["sounds"][0]["packed"] and got["sounds"][0]["frame_start"] == 1
    assert abs(got["sounds"][0]["duration_frames"] - anim.n_frames) <= 2
    mesh = got["meshes"][summary["meshes"][0]["object"]]
    values = np.array(mesh["values"])
    want = _expected(anim, mesh["names"])
    j = mesh["names"].index("jawOpen")
    assert values[:, j].max() > 0.2
    # what Blender plays is what the toolkit computed, frame by frame
    np.testing.assert_allclose(values, want, atol=2e-3)


@needs_bpy
def test_write_fbx_keeps_shape_key_animation_on_reimport(anim, tmp_path):
    from toolkit.export.blend import write_fbx

    out = tmp_path / "face.fbx"
    summary = write_fbx(anim, out)
    got = _inspect(out, frames=anim.n_frames)
    assert got["actions"], "the FBX re-import has no animation"
    mesh = next(iter(got["meshes"].values()))
    values = np.array(mesh["values"])
    want = _expected(anim, mesh["names"])
    j = mesh["names"].index("jawOpen")
    # FBX time 0 is the first frame; Blender's importer puts it on frame 1
    assert np.corrcoef(values[:, j], want[:, j])[0, 1] > 0.99
    np.testing.assert_allclose(values, want, atol=2e-3)
    assert summary["meshes"][0]["profile"] == "arkit52"


@needs_bpy
def test_write_blend_and_fbx_with_a_vrm_model(anim, tmp_path):
    """A real VRM 1.0 model (shared data): expressions resolve through their morph target binds."""
    from toolkit.export.blend import gltf_drive, write_blend, write_fbx

    model = REPO.parent / "shared" / "data" / "models" / "vrm" / "three-vrm-core_cube" / "cube.gltf"
    if not model.is_file():
        pytest.skip(f"shared test models are absent ({model})")
    drive = gltf_drive(anim, model)
    summary = write_blend(anim, tmp_path / "vrm.blend", model=model)
    assert summary["head"] == "Head"  # the VRM humanoid head node turns
    for out, frames in ((tmp_path / "vrm.blend", 0), (tmp_path / "vrm.fbx", anim.n_frames)):
        if out.suffix == ".fbx":
            write_fbx(anim, out, model=model)
        got = _inspect(out, frames=frames)
        checked = 0
        for entry in drive["meshes"]:
            mesh = got["meshes"].get(entry["node_name"])
            if mesh is None or not np.any(entry["weights"]):
                continue
            values = np.array(mesh["values"])[:, entry["targets"]]
            np.testing.assert_allclose(values, np.array(entry["weights"]), atol=2e-3)
            checked += 1
        assert checked >= 1, f"no animated VRM mesh found in {out.name}: {sorted(got['meshes'])}"


FACECAP = REPO.parent / "shared" / "data" / "models" / "facecap" / "facecap.glb"
MESHOPT_TARGETS = ["jawOpen", "mouthClose", "eyeBlinkLeft", "eyeBlinkRight", "mouthFunnel"]


def _meshopt_model(path: Path) -> Path:
    """A GLB as gltfpack writes them: every bufferView meshopt-compressed, the texture KTX2 (KHR_texture_basisu)."""
    meshopt = pytest.importorskip("meshopt")
    xs, ys = np.meshgrid(np.linspace(0, 0.1, 4), np.linspace(0, 0.1, 4))
    pos = np.stack([xs.ravel(), ys.ravel(), np.zeros(16)], 1).astype(np.float32)
    idx = np.array([[v, v + 1, v + 5, v, v + 5, v + 4] for j in range(3) for v in range(j * 4, j * 4 + 3)],
                   np.uint16).ravel()
    blob, views, accs = bytearray(), [], []

    def add(arr: np.ndarray, mode: str, type_: str, comp: int, target: int) -> int:
        enc = meshopt.encode_gltf_buffer(arr, mode)
        blob.extend(b"\0" * (-len(blob) % 4))
        stride = arr.dtype.itemsize * (arr.shape[1] if arr.ndim == 2 else 1)
        views.append({"buffer": 1, "byteLength": arr.nbytes, "target": target,
                      **({"byteStride": stride} if mode == "ATTRIBUTES" else {}),
                      "extensions": {"EXT_meshopt_compression": {"buffer": 0, "byteOffset": len(blob),
                                                                 "byteLength": len(enc), "byteStride": stride,
                                                                 "mode": mode, "count": len(arr)}}})
        blob.extend(enc)
        accs.append({"bufferView": len(views) - 1, "componentType": comp, "count": len(arr), "type": type_})
        return len(accs) - 1

    prim = {"attributes": {"POSITION": add(pos, "ATTRIBUTES", "VEC3", 5126, 34962)},
            "indices": add(idx, "INDICES", "SCALAR", 5123, 34963), "targets": []}
    accs[0].update(min=pos.min(0).tolist(), max=pos.max(0).tolist())
    for t in range(len(MESHOPT_TARGETS)):
        d = np.zeros((16, 3), np.float32)
        d[t, 2] = 0.01 * (t + 1)
        prim["targets"].append({"POSITION": add(d, "ATTRIBUTES", "VEC3", 5126, 34962)})
        accs[-1].update(min=d.min(0).tolist(), max=d.max(0).tolist())
    ktx2 = b"\xabKTX 20\xbb\r\n\x1a\n" + bytes(64)  # a KTX2 header: Blender cannot read it, and need not
    blob.extend(b"\0" * (-len(blob) % 4))
    views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(ktx2)})
    blob.extend(ktx2)
    blob.extend(b"\0" * (-len(blob) % 4))
    prim["material"] = 0
    ext = ["EXT_meshopt_compression", "KHR_texture_basisu"]
    doc = {"asset": {"version": "2.0"}, "extensionsUsed": ext, "extensionsRequired": ext,
           "buffers": [{"byteLength": len(blob)},
                       {"byteLength": sum(v["byteLength"] for v in views),
                        "extensions": {"EXT_meshopt_compression": {"fallback": True}}}],
           "bufferViews": views, "accessors": accs,
           "images": [{"bufferView": len(views) - 1, "mimeType": "image/ktx2"}],
           "textures": [{"extensions": {"KHR_texture_basisu": {"source": 0}}}],
           "materials": [{"name": "Skin", "pbrMetallicRoughness": {"baseColorTexture": {"index": 0},
                                                                   "baseColorFactor": [0.8, 0.6, 0.5, 1]}}],
           "meshes": [{"name": "Face", "primitives": [prim], "extras": {"targetNames": MESHOPT_TARGETS}}],
           "nodes": [{"name": "Face", "mesh": 0}], "scenes": [{"nodes": [0]}], "scene": 0}
    from toolkit.export.gltf import _Doc

    path.write_bytes(_Doc(doc, bytearray(blob)).glb_bytes())
    return path


def test_plain_glb_decodes_meshopt_and_drops_basisu_textures(tmp_path):
    """What Blender gets for a meshopt/Basis model: the same geometry, no extension its importer refuses."""
    from toolkit.export.blend import needs_plain_copy, plain_glb
    from toolkit.gltf.read import load_model, load_model_bytes

    m = load_model(_meshopt_model(tmp_path / "packed.glb"))
    assert needs_plain_copy(m)
    data, notes = plain_glb(m)
    p = load_model_bytes(data, "plain.glb")
    assert not needs_plain_copy(p) and "extensionsRequired" not in p.doc
    assert all("extensions" not in v and v["buffer"] == 0 for v in p.doc["bufferViews"])
    a, b = m.meshes[0].primitives[0], p.meshes[0].primitives[0]
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.target_deltas(), b.target_deltas())
    assert p.meshes[0].target_names == MESHOPT_TARGETS
    # the KTX2 texture is unhooked (the colour factor stays) and the warning says why
    pbr = p.doc["materials"][0]["pbrMetallicRoughness"]
    assert "baseColorTexture" not in pbr and pbr["baseColorFactor"] == [0.8, 0.6, 0.5, 1]
    assert len(notes) == 1 and "KHR_texture_basisu" in notes[0] and "packed.glb" in notes[0]


def _check_drive(anim, model: Path, out: Path) -> None:
    """Every driven target of the model plays in Blender what the toolkit computed for it."""
    from toolkit.export.blend import gltf_drive

    got = _inspect(out)
    checked = 0
    for entry in gltf_drive(anim, model)["meshes"]:
        mesh = next((v for k, v in got["meshes"].items() if len(v["names"]) == entry["n_targets"]
                     and (k == entry["node_name"] or not entry["node_name"])), None)
        assert mesh is not None, f"{entry['node_name']!r} missing from {sorted(got['meshes'])}"
        values = np.array(mesh["values"])[:, entry["targets"]]
        np.testing.assert_allclose(values, np.array(entry["weights"]), atol=2e-3)
        checked += int(np.any(entry["weights"]))
    assert checked >= 1


@needs_bpy
def test_write_blend_with_a_meshopt_basisu_model(anim, tmp_path):
    from toolkit.export.blend import write_blend

    model = _meshopt_model(tmp_path / "packed.glb")
    with pytest.warns(UserWarning, match="KHR_texture_basisu"):
        summary = write_blend(anim, tmp_path / "packed.blend", model=model)
    assert summary["meshes"][0]["driven"] == len(MESHOPT_TARGETS) and summary["warnings"]
    _check_drive(anim, model, tmp_path / "packed.blend")


@needs_bpy
@pytest.mark.skipif(not FACECAP.is_file(), reason=f"shared test model absent ({FACECAP}): the procedural "
                                                   "meshopt model above still covers the decoding")
def test_write_blend_with_facecap_meshopt_arkit_model(anim, tmp_path):
    """facecap.glb: 52 ARKit targets, EXT_meshopt_compression + KHR_mesh_quantization + KHR_texture_basisu."""
    from toolkit.export.blend import write_blend

    with pytest.warns(UserWarning, match="KHR_texture_basisu"):
        summary = write_blend(anim, tmp_path / "facecap.blend", model=FACECAP)
    assert [m["shape_keys"] for m in summary["meshes"]] == [52]
    _check_drive(anim, FACECAP, tmp_path / "facecap.blend")


def _shared_eye_vrm(path: Path) -> Path:
    """A VRM 1.0 whose two eye nodes place one mesh: blinkLeft binds the left node, blinkRight the right."""
    from toolkit.export.gltf import _Doc

    xs, ys = np.meshgrid(np.linspace(0, 0.1, 3), np.linspace(0, 0.1, 3))
    pos = np.stack([xs.ravel(), ys.ravel(), np.zeros(9)], 1).astype(np.float32)
    idx = np.array([0, 1, 4, 0, 4, 3, 1, 2, 5, 1, 5, 4, 3, 4, 7, 3, 7, 6, 4, 5, 8, 4, 8, 7], np.uint16)
    lift = np.zeros((9, 3), np.float32)
    lift[4, 2] = 0.01
    blob = b"".join(a.tobytes() for a in (pos, lift, idx))
    views = [{"buffer": 0, "byteOffset": 0, "byteLength": pos.nbytes},
             {"buffer": 0, "byteOffset": pos.nbytes, "byteLength": lift.nbytes},
             {"buffer": 0, "byteOffset": 2 * pos.nbytes, "byteLength": idx.nbytes}]
    accs = [{"bufferView": 0, "componentType": 5126, "count": 9, "type": "VEC3", "min": pos.min(0).tolist(),
             "max": pos.max(0).tolist()},
            {"bufferView": 1, "componentType": 5126, "count": 9, "type": "VEC3", "min": lift.min(0).tolist(),
             "max": lift.max(0).tolist()},
            {"bufferView": 2, "componentType": 5123, "count": idx.size, "type": "SCALAR"}]

    def mesh(name, target):
        return {"name": name, "extras": {"targetNames": [target]},
                "primitives": [{"attributes": {"POSITION": 0}, "indices": 2, "targets": [{"POSITION": 1}]}]}

    def bind(node):
        return {"morphTargetBinds": [{"node": node, "index": 0, "weight": 1.0}]}

    doc = {"asset": {"version": "2.0"}, "extensionsUsed": ["VRMC_vrm"],
           "buffers": [{"byteLength": len(blob) + (-len(blob) % 4)}], "bufferViews": views, "accessors": accs,
           "meshes": [mesh("Face", "A"), mesh("Eye", "Close")],
           "nodes": [{"name": "Face", "mesh": 0}, {"name": "EyeL", "mesh": 1, "translation": [0.03, 0, 0]},
                     {"name": "EyeR", "mesh": 1, "translation": [-0.03, 0, 0]}],
           "scenes": [{"nodes": [0, 1, 2]}], "scene": 0,
           "extensions": {"VRMC_vrm": {"specVersion": "1.0", "meta": {"name": "eyes"}, "humanoid": {"humanBones": {}},
                                       "expressions": {"preset": {"aa": bind(0), "blinkLeft": bind(1),
                                                                  "blinkRight": bind(2)}}}}}
    path.write_bytes(_Doc(doc, bytearray(blob)).glb_bytes())
    return path


@needs_bpy
def test_vrm_nodes_sharing_one_mesh_keep_their_own_weights(anim, tmp_path):
    """blinkLeft and blinkRight on two nodes of one eye mesh do not collapse into one shape key."""
    from toolkit.export.blend import write_blend

    n = anim.n_frames
    winks = anim.with_channels(["eyeBlinkLeft", "eyeBlinkRight"],
                               np.stack([np.linspace(0, 1, n), np.zeros(n)], 1).astype(np.float32))
    model = _shared_eye_vrm(tmp_path / "eyes.vrm")
    write_blend(winks, tmp_path / "eyes.blend", model=model)
    got = _inspect(tmp_path / "eyes.blend")
    left, right = (np.array(got["meshes"][k]["values"])[:, 0] for k in ("EyeL", "EyeR"))
    assert left.max() > 0.9 and np.abs(right).max() < 1e-3
    _check_drive(winks, model, tmp_path / "eyes.blend")


@needs_bpy
def test_bad_inputs_give_clear_errors(anim, tmp_path):
    from toolkit.export.blend import write_blend

    bad = tmp_path / "model.obj"
    bad.write_text("v 0 0 0\n")
    with pytest.raises(ValueError, match="model.obj"):
        write_blend(anim, tmp_path / "x.blend", model=bad)
    plain = tmp_path / "plain.gltf"
    plain.write_text(json.dumps({"asset": {"version": "2.0"}, "scenes": [{"nodes": []}], "scene": 0}))
    with pytest.raises(ValueError, match=r"plain\.gltf.*no morph targets"):
        write_blend(anim, tmp_path / "y.blend", model=plain)
    assert not (tmp_path / "y.blend").exists() and not list(tmp_path.glob(".y.*"))


def _blender_session_started(tmp: Path) -> bool:
    """Blender made its session folder (blender_XXXXXX) somewhere under ``tmp``: bpy is running."""
    try:
        return any(tmp.rglob("blender_*"))
    except OSError:   # a folder removed while it is read
        return False


@needs_bpy
def test_a_signal_during_a_blend_export_leaves_no_blender_folder(speech, tmp_path):
    """SIGTERM while Blender writes the .blend: Blender's own session folder goes with the toolkit's
    temporary one (Blender killed by a signal never removes it), the old output stays, exit 143."""
    import signal
    import sys
    import time

    out_dir, tmp = tmp_path / "out", tmp_path / "tmp"
    out_dir.mkdir()
    tmp.mkdir()
    (out_dir / "take.blend").write_bytes(b"the user's old scene")
    cmd = [sys.executable, "-m", "toolkit.cli", "animate", str(speech), "-o", str(out_dir / "take.blend")]
    p = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=dict(os.environ, TMPDIR=str(tmp)))
    end = time.monotonic() + 120
    while time.monotonic() < end and p.poll() is None and not _blender_session_started(tmp):
        time.sleep(0.02)
    assert p.poll() is None, "the export ended before it could be interrupted"
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + signal.SIGTERM, err
    assert (out_dir / "take.blend").read_bytes() == b"the user's old scene"
    assert [x.name for x in out_dir.iterdir()] == ["take.blend"]
    assert [x.name for x in tmp.iterdir() if not x.name.startswith("viseme-toolkit-shaders")] == []


def test_missing_bpy_environment_says_what_to_do_in_a_checkout_and_in_an_install(anim, tmp_path, monkeypatch):
    """Without bpy a checkout is told `make setup` (naming its .venv-blender), an installed toolkit the
    [blender] extra: an install was told `make setup` and named site-packages/.venv-blender/bin/python."""
    import importlib.util

    from toolkit.export import blend

    monkeypatch.setenv("VISEME_BLENDER_PYTHON", str(tmp_path / "no-such-python"))
    with pytest.raises(blend.BlenderError, match=f"^VISEME_BLENDER_PYTHON names {tmp_path / 'no-such-python'}, "
                                                 "which is missing"):
        blend.write_fbx(anim, tmp_path / "a.fbx")
    monkeypatch.delenv("VISEME_BLENDER_PYTHON")
    if importlib.util.find_spec("bpy") is not None:
        pytest.skip("this Python has bpy: the checkout and install messages are never needed")
    checkout = tmp_path / "checkout"  # a clone without its .venv-blender
    checkout.mkdir()
    monkeypatch.setattr(blend, "CHECKOUT", checkout)
    with pytest.raises(blend.BlenderError) as e:
        blend.write_fbx(anim, tmp_path / "a.fbx")
    assert f"{checkout / '.venv-blender' / 'bin' / 'python'} is missing" in str(e.value) and "make setup" in str(e.value)
    monkeypatch.setattr(blend, "CHECKOUT", None)  # an installed toolkit: site-packages around it
    with pytest.raises(blend.BlenderError) as e:
        blend.write_fbx(anim, tmp_path / "a.fbx")
    assert "pip install 'viseme-toolkit[blender]'" in str(e.value), str(e.value)
    assert ".venv-blender" not in str(e.value) and "make setup" not in str(e.value), str(e.value)


@needs_bpy
def test_fbx_and_blend_characters_as_cli_model_inputs(speech, tmp_path, capsys):
    """`--model face.fbx` / `--model face.blend`: the character's shape keys play the new speech, not the
    animation the file came with."""
    from toolkit.animation import Animation
    from toolkit.cli import main
    from toolkit.export.blend import write_blend, write_fbx
    from toolkit.pipeline import animate

    # the characters: the default head as FBX and as .blend, each carrying an animation of other speech
    other = animate(REPO / "assets" / "samples" / "bob.wav", (REPO / "assets" / "samples" / "bob.txt").read_text(),
                    fps=30, engine="align", blinks=False, head_motion=False)
    write_fbx(other, tmp_path / "face.fbx")
    write_blend(other, tmp_path / "face.blend")
    for model, out, frames in (("face.fbx", "talk.blend", 0), ("face.blend", "talk.fbx", None)):
        js = tmp_path / f"{Path(out).stem}-{Path(model).suffix[1:]}.json"
        rc = main(["animate", str(speech), "--text", SENTENCE, "--engine", "align", "--no-blinks", "--no-head",
                   "--model", str(tmp_path / model), "-o", str(js), "-o", str(tmp_path / out)])
        assert rc == 0, capsys.readouterr().err
        anim = Animation.load(js)
        got = _inspect(tmp_path / out, frames=anim.n_frames if frames is None else frames)
        faces = [m for m in got["meshes"].values() if "jawOpen" in m["names"]]
        assert faces, f"{model} -> {out}: no face mesh in {sorted(got['meshes'])}"
        for mesh in faces:
            values = np.array(mesh["values"])
            assert len(values) >= anim.n_frames
            np.testing.assert_allclose(values[:anim.n_frames], _expected(anim, mesh["names"]), atol=2e-3)
        j = faces[0]["names"].index("jawOpen")
        assert np.array(faces[0]["values"])[:, j].max() > 0.2
