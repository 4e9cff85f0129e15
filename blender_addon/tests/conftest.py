"""Fixtures for the add-on tests, run in the bpy environment:

    .venv-blender/bin/python -m pytest blender_addon/tests -q

Blender keeps installed extensions under BLENDER_USER_RESOURCES; the tests
point it at a temporary folder (before bpy is imported) so they never touch
the user's own Blender setup.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_RES = os.environ.get("BLENDER_USER_RESOURCES") or tempfile.mkdtemp(prefix="viseme-blender-")
os.environ["BLENDER_USER_RESOURCES"] = _RES
# the add-on must run its bundled toolkit, not the checkout's: keep the repo off sys.path
sys.path[:] = [p for p in sys.path if p not in ("", ".", str(REPO))]

bpy = pytest.importorskip("bpy")

SENTENCE = "My mama made lemon jam on Monday."


@pytest.fixture(scope="session")
def addon_zip() -> Path:
    """The extension zip, built by the repo's build script (wheels come from its cache after the first build)."""
    out = Path(tempfile.mkdtemp(prefix="viseme-dist-"))
    r = subprocess.run([sys.executable, str(REPO / "blender_addon" / "build.py"), "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    zips = list(out.glob("viseme_lipsync-*.zip"))
    assert len(zips) == 1
    return zips[0]


@pytest.fixture(scope="session")
def addon(addon_zip):
    """Install the zip the way a user does (Get Extensions > Install from Disk) and enable it."""
    result = bpy.ops.extensions.package_install_files(filepath=str(addon_zip), repo="user_default",
                                                      enable_on_install=True)
    assert result == {"FINISHED"}
    module = "bl_ext.user_default.viseme_lipsync"
    assert module in {a.module for a in bpy.context.preferences.addons}
    assert hasattr(bpy.ops.viseme, "generate")
    return sys.modules[module]


@pytest.fixture(scope="session")
def speech(tmp_path_factory) -> Path:
    """Real synthesized speech (espeak-ng) of SENTENCE at 22.05 kHz."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/setup.sh installs it)")
    wav = tmp_path_factory.mktemp("audio") / "mama.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(wav), SENTENCE], check=True)
    return wav


def new_face(name: str, keys: list[str]):
    """A fresh scene holding one mesh (an ico sphere) with these shape keys, active and selected."""
    for ob in list(bpy.data.objects):
        bpy.data.objects.remove(ob)
    mesh = bpy.data.meshes.new(name)
    import bmesh

    bm = bmesh.new()
    bmesh.ops.create_icosphere(bm, subdivisions=2, radius=0.1)
    bm.to_mesh(mesh)
    bm.free()
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.shape_key_add(name="Basis")
    for i, k in enumerate(keys):
        kb = obj.shape_key_add(name=k)
        # move a few vertices per key so exporters see a real morph
        for j in range(i % 7, len(kb.data), 7):
            kb.data[j].co.z += 0.01
        kb.value = 0.0  # shape_key_add starts a key at 1; a face at rest (and imported models) have 0
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    return obj


def pytest_sessionfinish(session, exitstatus):
    session.config._viseme_exitstatus = int(exitstatus)


def pytest_unconfigure(config):
    # bpy 4.5 can deadlock in its own teardown at interpreter exit; the report is printed by now,
    # so leave at once with pytest's status
    status = getattr(config, "_viseme_exitstatus", None)
    if status is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
