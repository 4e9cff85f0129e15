"""Real avatars rendered right: skinned, quantized, meshopt-compressed characters (as gltfpack writes
them) show their face upright and centred, their lips meet on /p b m/, the head bone turns the head and
not the body; textures through KHR_texture_transform, WebP beside Basis, MASK hair cards, BLEND far to
near; a morph that barely moves vertices keeps the model's own normals (no dark blotches)."""
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest

if importlib.util.find_spec("pyrender") is None:   # not importorskip: the GL platform is chosen on first import
    pytest.skip("pyrender not installed (pip install 'viseme-toolkit[render]')", allow_module_level=True)
pytest.importorskip("meshopt", reason="the packed avatar is EXT_meshopt_compression data")

import avatar_helpers as av  # noqa: E402
from gltf_helpers import PP, Builder, speech_anim  # noqa: E402

from toolkit.render.preview import pose  # noqa: E402
from toolkit.render.scene import FaceRenderer, load_face_model  # noqa: E402
from toolkit.rotation import axis_angle_quat  # noqa: E402

SIZE = 160
MODELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "models"


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    return load_face_model(av.packed_avatar(tmp_path_factory.mktemp("avatar") / "avatar.glb"))


@pytest.fixture(scope="module")
def view(packed):
    r = FaceRenderer(packed, size=SIZE)
    yield r
    r.close()


def _near(img, rgb, tol=60) -> np.ndarray:
    return np.abs(img.astype(int) - np.asarray(rgb)).sum(2) < tol


def _box(r, x0, x1, y0, y1, z=av.FACE_Z):
    (c0, r0), (c1, r1) = r.project([[x0, y1, z], [x1, y0, z]])
    return slice(int(round(r0)), int(round(r1)) + 1), slice(int(round(c0)), int(round(c1)) + 1)


def _dark(img) -> np.ndarray:
    """The mouth's inside and the eyes (lit, a dark red-brown); lips, skin, shirt and hair are brighter."""
    return img.astype(int).sum(2) < 300


def _skin(img) -> np.ndarray:
    """Lit skin: light, warm (red over green over blue)."""
    r, g, b = (img[..., k].astype(int) for k in range(3))
    return (r > 190) & (g > 140) & (b > 100) & (r >= g) & (g >= b) & (r - b > 30)


HAIR = (144, 103, 82)   # the strands' colour as lit here


def test_the_face_shows_upright_centred_and_textured(packed, view):
    """The bind pose comes from joints x inverse bind matrices: the face lands where it belongs, upright,
    centred, under its hair; KHR_texture_transform picks the skin half of the WebP (the Basis image
    beside it cannot be decoded and is not taken)."""
    assert packed.notes == []                                   # the WebP was decoded, not the KTX2
    img = view.render(np.zeros(len(packed.target_names), np.float32))
    skin = _skin(img)
    assert skin.mean() > 0.2
    cols = np.flatnonzero(skin.any(0))
    assert abs((cols.min() + cols.max()) / 2 - SIZE / 2) < 0.1 * SIZE     # centred
    assert (img[..., 1].astype(int) - img[..., 0] > 80).sum() == 0        # no green: the transform applies
    for sx in (-1, 1):                                          # both eyes where they are, on one row
        rows, cols_ = _box(view, sx * av.EYE_X - 0.008, sx * av.EYE_X + 0.008, av.EYE_Y - 0.004, av.EYE_Y + 0.004)
        assert _dark(img[rows, cols_]).mean() > 0.8, sx
    # the hair card: strands drawn, the forehead seen through the masked-out gaps (alpha 0.3 < cutoff 0.5)
    strand = img[_box(view, 0.006, 0.014, 1.75, 1.76, av.FACE_Z + 0.004)]
    gap = img[_box(view, 0.045, 0.055, 1.75, 1.76, av.FACE_Z + 0.004)]
    assert _near(strand, HAIR).mean() > 0.8
    assert _skin(gap).mean() > 0.9 and not _near(gap, HAIR, 120).any()


def test_the_lips_meet_at_the_closure_frame(packed, view):
    """speech_anim: "aa", then /m/ (frames 15-23): the mouth's dark inside shows between the lips on
    the vowel and not at all on the bilabial (the arkit52 rig drives jawOpen/mouthClose/mouthPress)."""
    weights, _ = pose(speech_anim(), packed)
    mouth = _box(view, -av.MOUTH_HALF_W + 0.004, av.MOUTH_HALF_W - 0.004, av.LIP_Y - 0.012, av.LIP_Y + 0.004)
    opened = _dark(view.render(weights[5])[mouth]).sum()
    closed = [_dark(view.render(weights[f])[mouth]).sum() for f in range(PP.start + 1, PP.stop)]
    assert opened > 30 and max(closed) == 0, (opened, closed)


def test_the_head_bone_turns_the_head_and_not_the_body(packed, view):
    """A head turn moves the face (a rigid skin of the Head bone) and the upper neck (blended), and
    leaves the shirt collar (skinned to the Spine) where it was."""
    w = np.zeros(len(packed.target_names), np.float32)
    rest = view.render(w).astype(int)
    turned = view.render(w, axis_angle_quat(1, np.array([0.35]))[0]).astype(int)
    diff = np.abs(turned - rest).sum(2) > 40
    collar_top = int(np.ceil(view.project([[0, av.COLLAR_TOP, av.COLLAR_Z]])[0][1])) + 1
    face = _box(view, -0.07, 0.07, av.EYE_Y - 0.03, av.EYE_Y + 0.03)
    assert diff[face].mean() > 0.2                                  # the face moved
    assert collar_top < SIZE - 3 and diff[collar_top:].mean() < 0.002   # the collar did not
    assert np.allclose(packed.head_pivot, av.HEAD_JOINT, atol=1e-4)


def test_quantized_meshopt_model_renders_like_the_plain_one(packed, view, tmp_path):
    """KHR_mesh_quantization + EXT_meshopt_compression decode to the geometry the float model has."""
    plain = load_face_model(av.packed_avatar(tmp_path / "plain.glb", quantize=False, meshopt=False))
    r = FaceRenderer(plain, size=SIZE)
    try:
        weights, _ = pose(speech_anim(), plain)
        a, b = r.render(weights[5]).astype(int), view.render(pose(speech_anim(), packed)[0][5]).astype(int)
    finally:
        r.close()
    assert (np.abs(a - b).sum(2) > 60).mean() < 0.01


def test_the_camera_frames_the_head_bone_without_face_targets(packed):
    """No morph target to go by: the camera frames the vertices that follow the head bone, not the body."""
    still = dataclasses.replace(packed, parts=[dataclasses.replace(p, targets=None, target_slots=None)
                                               for p in packed.parts])
    lo, hi, what = still.focus()
    assert what == "head" and lo[1] > av.CHIN_Y - 0.1 and hi[1] < 1.8
    assert packed.focus()[2] == "face" and packed.bounds()[0][1] < 1.2   # (the body reaches far below)


def _relief_face(path: Path) -> Path:
    """A bumpy face whose authored normals all face the viewer (as anime faces and neck seams have
    edited normals), with a target that moves a patch by a hundredth of a millimetre."""
    n = 24
    xs, ys = np.meshgrid(np.linspace(-0.1, 0.1, n), np.linspace(-0.1, 0.1, n))
    z = 0.012 * np.sin(xs * 90) * np.cos(ys * 70)
    pos = np.stack([xs.ravel(), ys.ravel(), z.ravel()], 1).astype(np.float32)
    idx = np.array([[v, v + 1, v + n + 1, v, v + n + 1, v + n] for j in range(n - 1) for v in range(j * n, j * n + n - 1)],
                   np.uint16).ravel()
    d = np.zeros_like(pos)
    patch = (np.abs(pos[:, 0]) < 0.05) & (np.abs(pos[:, 1]) < 0.05)
    d[patch, 2] = 1e-5
    b = Builder()
    prim = {"attributes": {"POSITION": b.acc(pos, "VEC3", minmax=True, target=34962),
                           "NORMAL": b.acc(np.tile(np.array([0, 0, 1], np.float32), (len(pos), 1)), "VEC3",
                                           target=34962)},
            "indices": b.acc(idx, "SCALAR", target=34963), "material": 0,
            "targets": [{"POSITION": b.acc(d, "VEC3", minmax=True, target=34962)}]}
    b.doc["materials"] = [{"pbrMetallicRoughness": {"baseColorFactor": [0.2, 0.15, 0.12, 1], "roughnessFactor": 1}}]
    b.doc["meshes"].append({"name": "Face", "primitives": [prim], "weights": [0.0],
                            "extras": {"targetNames": ["jawOpen"]}})
    b.node(name="Face", mesh=0)
    return b.save(path)


def test_a_morph_that_barely_moves_keeps_the_model_normals(tmp_path):
    """The normals around moved vertices follow the deformation, starting from the model's own: the
    relief's authored normals shade it evenly, and a target moving a patch by 0.01 mm leaves that
    patch shaded like the rest (recomputing its normals from the triangles made a blotch there: what
    a face or a neck seam with edited normals shows as dark patches as soon as the mouth moves)."""
    m = load_face_model(_relief_face(tmp_path / "relief.glb"))
    r = FaceRenderer(m, size=96)
    try:
        rest = r.render(np.array([0.0], np.float32)).astype(int).sum(2)
        moved = r.render(np.array([1.0], np.float32)).astype(int).sum(2)
        inner = _box(r, -0.04, 0.04, -0.04, 0.04, 0.0)
    finally:
        r.close()
    def bumps(img):   # the largest step between neighbouring pixels (an even surface shades smoothly)
        a = img[inner]
        return max(np.abs(np.diff(a, axis=0)).max(), np.abs(np.diff(a, axis=1)).max())
    assert bumps(rest) <= 4 and bumps(moved) <= 4, (bumps(rest), bumps(moved))


def test_blended_parts_are_drawn_far_to_near(tmp_path):
    """Two half-transparent quads (BLEND), the near one first in the file: the far one still shows
    through the near one."""
    b = Builder()
    mats = []
    for z, col in ((0.05, [1, 0, 0, 0.5]), (0.0, [0, 0, 1, 0.5])):     # near red, far blue
        xs = np.array([[-0.1, -0.1, z], [0.1, -0.1, z], [0.1, 0.1, z], [-0.1, 0.1, z]], np.float32)
        prim = {"attributes": {"POSITION": b.acc(xs, "VEC3", minmax=True, target=34962)},
                "indices": b.acc(np.array([0, 1, 2, 0, 2, 3], np.uint16), "SCALAR", target=34963),
                "material": len(mats)}
        mats.append({"alphaMode": "BLEND", "pbrMetallicRoughness": {"baseColorFactor": col}})
        b.doc["meshes"].append({"primitives": [prim]})
        b.node(mesh=len(b.doc["meshes"]) - 1)
    b.doc["materials"] = mats
    m = load_face_model(b.save(tmp_path / "glass.glb"))
    r = FaceRenderer(m, size=64)
    try:
        px = r.render(np.zeros(0, np.float32))[32, 32].astype(int)
    finally:
        r.close()
    assert px[0] > 120 and px[2] > 80, px     # red over blue (not over the background alone: blue < 60)


def test_vrm_texture_transform_sample_renders_its_pass_marks():
    """The VRM specification's isBinary sample: at rest its big plane must be green with check marks
    (red means KHR_texture_transform was not applied) and its meters empty."""
    f = MODELS / "vrm" / "vrm-specification" / "VRMC_vrm_expressions_isBinary_Overrides.vrm"
    if not f.exists():
        pytest.skip(f"{f} not present (real VRM samples live in ../shared/data/models)")
    m = load_face_model(f)
    r = FaceRenderer(m, size=128)
    try:
        img = r.render(np.zeros(len(m.target_names), np.float32)).astype(int)
    finally:
        r.close()
    green = (img[..., 1] - img[..., 0] > 60).sum()
    red = (img[..., 0] - img[..., 1] > 60).sum()
    assert green > 0.1 * img.shape[0] * img.shape[1] and red < 0.02 * green, (green, red)


def test_real_skinned_vrm0_renders_its_head_framed():
    f = MODELS / "vrm" / "three-vrm_0.x_sphere.vrm"
    if not f.exists():
        pytest.skip(f"{f} not present (real VRM samples live in ../shared/data/models)")
    m = load_face_model(f)
    lo, hi, what = m.focus()
    assert what == "head" and m.head_node is not None and m.head_pivot is not None
    assert lo[1] > m.bounds()[0][1] + 0.3          # the head, not the whole skinned body


def test_the_packed_avatar_exports_valid_with_its_head_bone_turning(tmp_path, gltf_validator):
    """The glTF writer keeps the packed avatar (two skins, quantized, meshopt) valid (Khronos validator:
    0 errors) and animates the Head joint and the face's targets, as the preview shows them."""
    from gltf_helpers import read_clip

    from toolkit.export import gltf as G

    src = av.packed_avatar(tmp_path / "packed.glb")
    rep = G.write_animated_model(speech_anim(), src, tmp_path / "talking.glb")
    assert "arkit52" in rep.via and "Head" in rep.head_node
    gltf_validator(tmp_path / "talking.glb")
    m, clip = read_clip(tmp_path / "talking.glb")
    head = next(i for i, n in enumerate(m.doc["nodes"]) if n.get("name") == "Head" and "skin" not in n and "mesh" not in n)
    assert (head, "rotation") in clip
