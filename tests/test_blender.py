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
        pytest.skip("espeak-ng is not installed (scripts/setup.sh installs it)")
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


def test_missing_bpy_environment_says_run_make_setup(anim, tmp_path, monkeypatch):
    from toolkit.export.blend import BlenderError, write_fbx

    monkeypatch.setenv("VISEME_BLENDER_PYTHON", str(tmp_path / "no-such-python"))
    with pytest.raises(BlenderError, match="make setup"):
        write_fbx(anim, tmp_path / "a.fbx")
