"""The default head (assets/head/head.glb): 52 named ARKit targets that each move the right part of the face."""
from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from toolkit.animation import ARKIT_BLENDSHAPES

ROOT = Path(__file__).resolve().parents[1]
HEAD = ROOT / "assets" / "head" / "head.glb"
sys.path.insert(0, str(ROOT / "assets" / "head"))
import build_head as bh  # noqa: E402


def _gltf_json(path: Path) -> dict:
    raw = path.read_bytes()
    assert raw[:4] == b"glTF"
    n = struct.unpack_from("<I", raw, 12)[0]
    return json.loads(raw[20:20 + n])


@pytest.fixture(scope="module")
def model():
    from toolkit.render.scene import load_face_model

    return load_face_model(HEAD)


@pytest.fixture(scope="module")
def deltas(model):
    """target name -> (all rest positions, displacement) over every part of the head."""
    pos = np.concatenate([p.positions for p in model.parts])
    out = {}
    for k, name in enumerate(model.target_names):
        d = []
        for p in model.parts:
            dk = np.zeros_like(p.positions)
            if p.target_slots is not None and k in p.target_slots:
                dk = p.targets[list(p.target_slots).index(k)]
            d.append(dk)
        out[name] = (pos, np.concatenate(d))
    return out


def test_asset_is_small_and_has_52_named_targets_on_every_primitive():
    assert HEAD.exists(), "run: .venv/bin/python assets/head/build_head.py"
    assert HEAD.stat().st_size < 1_500_000
    js = _gltf_json(HEAD)
    assert len(js["meshes"]) == 1
    mesh = js["meshes"][0]
    assert mesh["extras"]["targetNames"] == ARKIT_BLENDSHAPES
    assert len(mesh["weights"]) == 52
    for prim in mesh["primitives"]:
        assert len(prim["targets"]) == 52
        assert "material" in prim
    mats = {m["name"] for m in js["materials"]}
    assert {"skin", "sclera", "iris", "pupil", "teeth", "tongue"} <= mats


def test_asset_passes_the_khronos_validator(gltf_validator):
    """Zero errors and zero warnings (sparse-only targets without a bufferView, min/max that cover
    the zeros of unmoved vertices)."""
    rep = gltf_validator(HEAD)
    assert rep["issues"]["numErrors"] == 0
    assert rep["issues"]["numWarnings"] == 0, [m for m in rep["issues"]["messages"] if m["severity"] == 1][:5]
    js = _gltf_json(HEAD)
    sparse_only = [a for a in js["accessors"] if "sparse" in a or "bufferView" not in a]
    assert sparse_only and all("byteOffset" not in a for a in sparse_only)


def test_every_target_moves_something(deltas):
    for name in ARKIT_BLENDSHAPES:
        _, d = deltas[name]
        assert np.linalg.norm(d, axis=1).max() > 0.0015, f"{name} barely moves"


def _centroid(pos, d, frac=0.5):
    """Displacement-weighted centre of the vertices that move at least `frac` of the most-moved one."""
    m = np.linalg.norm(d, axis=1)
    sel = m >= frac * m.max()
    return (pos[sel] * m[sel, None]).sum(0) / m[sel].sum()


def test_jaw_targets_move_the_chin_not_the_forehead(deltas):
    for name in ("jawOpen", "jawForward", "jawLeft", "jawRight"):
        pos, d = deltas[name]
        m = np.linalg.norm(d, axis=1)
        chin = (pos[:, 1] < bh.MOUTH_Y - 0.015) & (pos[:, 2] > 0.04)
        forehead = (pos[:, 1] > bh.EYE_C[1] + 0.02)
        assert m[chin].mean() > 0.003, name
        assert m[forehead].max() < 1e-6, name
    pos, d = deltas["jawOpen"]
    chin = (pos[:, 1] < bh.MOUTH_Y - 0.02) & (pos[:, 2] > 0.045)
    assert d[chin, 1].mean() < -0.01   # the chin drops by more than a centimetre
    # a swing about the hinge: distances to the hinge axis (x) are kept within a few per cent
    r0 = np.linalg.norm((pos - bh.HINGE)[chin][:, 1:], axis=1)
    r1 = np.linalg.norm((pos + d - bh.HINGE)[chin][:, 1:], axis=1)
    assert np.allclose(r0, r1, rtol=0.03)
    assert deltas["jawLeft"][1][chin, 0].mean() > 0 > deltas["jawRight"][1][chin, 0].mean()


def test_blinks_move_the_eyelids_of_their_own_eye(deltas):
    for name, sign in (("eyeBlinkLeft", 1), ("eyeBlinkRight", -1)):
        pos, d = deltas[name]
        c = _centroid(pos, d)
        assert np.sign(c[0]) == sign
        assert abs(abs(c[0]) - bh.EYE_C[0]) < 0.012 and abs(c[1] - bh.EYE_C[1]) < 0.02, (name, c)
        m = np.linalg.norm(d, axis=1)
        assert m[pos[:, 0] * sign < 0].max() < 0.0015      # the other eye stays open
        moved = m > 0.5 * m.max()
        assert d[moved, 1].mean() < -0.005                  # the lid comes down


def test_left_right_and_regions(deltas):
    mouth = np.array([0, bh.MOUTH_Y, bh.MOUTH_Z])
    for name in ARKIT_BLENDSHAPES:
        pos, d = deltas[name]
        c = _centroid(pos, d)
        if name.endswith("Left") and not name.startswith(("jaw", "mouthLeft")):
            assert c[0] > 0.004, (name, c)
        if name.endswith("Right") and not name.startswith(("jaw", "mouthRight")):
            assert c[0] < -0.004, (name, c)
        if name.startswith("mouth") and name != "mouthClose":
            assert np.linalg.norm(c - mouth) < 0.03, (name, c)
        if name.startswith("brow"):
            assert c[1] > bh.EYE_C[1] + 0.01, (name, c)
        if name.startswith("eye"):
            assert abs(c[1] - bh.EYE_C[1]) < 0.02, (name, c)
    pos, d = deltas["tongueOut"]
    assert d[:, 2].max() > 0.02      # the tongue comes forward out of the mouth
    pos, d = deltas["mouthFunnel"]
    up = (np.abs(pos[:, 0]) < 0.004) & (np.abs(pos[:, 1] - bh.MOUTH_Y) < 0.003) & (pos[:, 2] > bh.MOUTH_Z - 0.004)
    assert np.ptp(d[up, 1]) > 0.005  # the lips part in the middle (upper up, lower down)


def test_script_rebuilds_the_stored_asset(tmp_path):
    out = tmp_path / "head.glb"
    bh.main(["-o", str(out)])
    a, b = _gltf_json(out), _gltf_json(HEAD)
    assert a["meshes"][0]["extras"] == b["meshes"][0]["extras"]
    assert [acc["count"] for acc in a["accessors"]] == [acc["count"] for acc in b["accessors"]]
    assert abs(out.stat().st_size - HEAD.stat().st_size) < 1024
