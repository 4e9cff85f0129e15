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
    assert HEAD.stat().st_size < 2_000_000
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
    # a swing about the hinge (which glides forward a little): distances to the hinge axis (x) are
    # kept within a few per cent
    r0 = np.linalg.norm((pos - bh.HINGE)[chin][:, 1:], axis=1)
    r1 = np.linalg.norm((pos + d - bh.JAW_GLIDE - bh.HINGE)[chin][:, 1:], axis=1)
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


# -- the shapes look like their names (geometry checks; tests/test_render.py checks the pixels) --------
@pytest.fixture(scope="module")
def built():
    """The head's parts straight from build_head (names, the lids' frames)."""
    return {p.name: p for p in bh.build()}


def _skin(model):
    return max(model.parts, key=lambda p: len(p.positions))


def _target(part, model, name):
    k = model.target_names.index(name)
    if part.target_slots is None or k not in list(part.target_slots):
        return np.zeros_like(part.positions)
    return part.targets[list(part.target_slots).index(k)]


def _edges(tris):
    e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]]).astype(np.int64)
    return np.unique(np.sort(e, axis=1), axis=0)


def _eyeball_radius(u, axis):
    """Distance from the eye centre to the eyeball's surface along unit directions u (cornea included)."""
    polar = np.arccos(np.clip(u @ axis, -1, 1))
    return bh.EYE_R * (1 + bh.CORNEA * np.clip(np.cos(polar / 0.55 * np.pi / 2), 0, None) * (polar < 0.55))


@pytest.mark.parametrize("with_", [(), ("eyeLookUp",), ("eyeLookDown",), ("eyeSquint",), ("cheekSquint",),
                                   ("eyeWide",), ("eyeLookUp", "eyeWide")])
def test_lids_stay_off_the_eyeball_over_the_whole_blink(built, with_):
    """At every stage of a blink (alone or with the eye looking up/down, squinting, wide) every
    lid vertex in front of the eyeball is outside it: the iris never draws over a lid."""
    look = {"eyeLookUp": -np.radians(24) * 0.8, "eyeLookDown": np.radians(24) * 0.8}
    for part in (p for p in built.values() if hasattr(p, "lid_a")):
        sign, nm = part.eye_sign, part.eye_name
        c = bh.EYE_C * (sign, 1, 1)
        for w in np.linspace(0, 1, 11):
            pos = part.v + w * sum(part.targets.get(f"{k}{nm}", 0) for k in ("eyeBlink",) + with_)
            turn = sum(look.get(k, 0.0) for k in with_) * w
            axis = bh.rot_x(turn) @ bh.rot_y(-sign * 0.02) @ bh.rot_x(0.03) @ np.array([0, 0, 1.0])
            q = pos - c
            r = np.linalg.norm(q, axis=1)
            u = q / r[:, None]
            front = u @ axis > np.cos(1.2)
            assert (r[front] / _eyeball_radius(u[front], axis)).min() > 1.005, (part.name, with_, w)


def test_blink_closes_the_lids_at_the_corners_too(built):
    """Closed, the upper lid's margin comes down past the lower lid's all the way to the corners."""
    for nm in ("Left", "Right"):
        up, lo = built[f"lidUpper{nm}"], built[f"lidLower{nm}"]
        for part in (up, lo):
            rim = part.lid_k == bh.LID_RIM
            part.rim_y = (part.v + part.targets[f"eyeBlink{nm}"])[rim]
            part.rim_a = part.lid_a[rim]
        inside = np.abs(up.rim_a) < bh.CANTHUS_A
        lo_y = np.interp(up.rim_a[inside], lo.rim_a, lo.rim_y[:, 1])
        assert (up.rim_y[inside, 1] <= lo_y + 1e-4).all(), nm


@pytest.mark.parametrize("w", [0.35, 0.6, 1.0])
def test_mouth_close_with_the_jaw_seals_the_lips_without_tearing(model, w):
    """jawOpen = mouthClose = w (how ARKit closes the lips over an open jaw): the two lips' copies
    of the lip line meet again, and no skin edge stretches to more than a few times its length."""
    from scipy.spatial import cKDTree

    skin = _skin(model)
    pos = skin.positions.astype(float)
    d = w * (_target(skin, model, "jawOpen") + _target(skin, model, "mouthClose"))
    pairs = cKDTree(pos).query_pairs(2e-5, output_type="ndarray")     # upper/lower lip-line copies
    assert len(pairs) > 10
    gap = np.linalg.norm((pos + d)[pairs[:, 0]] - (pos + d)[pairs[:, 1]], axis=1)
    assert gap.max() < 3e-4, gap.max()
    e = _edges(skin.indices)
    before = np.linalg.norm(pos[e[:, 0]] - pos[e[:, 1]], axis=1)
    after = np.linalg.norm((pos + d)[e[:, 0]] - (pos + d)[e[:, 1]], axis=1)
    ok = before > 2e-4
    assert (after[ok] / before[ok]).max() < 1.5 + 2.5 * w


def test_jaw_shapes_bend_the_skin_smoothly(model):
    """No crease from the mouth corners over the cheeks when the jaw moves sideways or forwards, and
    no shear of the throat when it opens: displacement changes slowly from vertex to vertex."""
    skin = _skin(model)
    pos = skin.positions.astype(float)
    e = _edges(skin.indices)
    length = np.linalg.norm(pos[e[:, 0]] - pos[e[:, 1]], axis=1)

    def steepest(name, region, q=100):
        d = _target(skin, model, name)
        g = np.linalg.norm(d[e[:, 0]] - d[e[:, 1]], axis=1) / np.maximum(length, 1e-9)
        sel = region[e[:, 0]] & region[e[:, 1]] & (length > 2e-4)
        return np.percentile(g[sel], q)

    cheek = (np.abs(pos[:, 0]) > bh.MOUTH_HALF_W + 0.004) & (pos[:, 1] > bh.MOUTH_Y - 0.03) & (pos[:, 2] > 0)
    for name in ("jawLeft", "jawRight", "jawForward"):
        assert steepest(name, cheek) < 0.6, name          # 6 mm of shift spread over a centimetre or more
    assert steepest("jawOpen", pos[:, 1] < -0.12, 99.5) < 1.1


def test_expressions_move_enough_to_see(model):
    """Smiles, frowns, cheeks and sneers move the skin by several millimetres (on a ~19 cm head)."""
    least_mm = {"mouthSmileLeft": 7, "mouthFrownLeft": 6, "mouthStretchLeft": 6, "mouthDimpleLeft": 4.5,
                "cheekPuff": 9, "cheekSquintLeft": 4, "noseSneerLeft": 6, "mouthLeft": 7}
    for name, mm in least_mm.items():
        for side in {name, name.replace("Left", "Right")}:
            d = np.concatenate([_target(p, model, side) for p in model.parts])
            assert np.linalg.norm(d, axis=1).max() > mm / 1000, side
    # a smile lifts the mouth corner, a frown lowers it
    skin = _skin(model)
    corner = np.argmin(np.linalg.norm(skin.positions - [bh.MOUTH_HALF_W, bh.MOUTH_Y + 0.0015, 0.085], axis=1))
    assert _target(skin, model, "mouthSmileLeft")[corner, 1] > 0.005
    assert _target(skin, model, "mouthFrownLeft")[corner, 1] < -0.004


def test_head_is_mirror_symmetric(model):
    """Every part is symmetric about x = 0, and each ...Left target is its ...Right twin mirrored
    (a ...Left shape acts on +x); the others are symmetric themselves."""
    pos = np.concatenate([p.positions for p in model.parts]).astype(float)
    key = lambda p: [tuple(k) for k in np.round(p / 2e-6).astype(np.int64)]  # noqa: E731
    where = {k: i for i, k in enumerate(key(pos))}
    mirror = np.array([where.get(k, -1) for k in key(pos * (-1, 1, 1))])
    assert (mirror >= 0).mean() > 0.999, "rest shape not symmetric"
    ok = mirror >= 0
    flip = np.array([-1.0, 1.0, 1.0])
    for name in ARKIT_BLENDSHAPES:
        twin = name[:-4] + "Right" if name.endswith("Left") else name[:-5] + "Left" if name.endswith("Right") \
            else name
        d = np.concatenate([_target(p, model, name) for p in model.parts])
        dt = np.concatenate([_target(p, model, twin) for p in model.parts])
        err = np.abs(dt[mirror[ok]] - d[ok] * flip).max()
        assert err < 2e-5, (name, twin, err)
