"""glTF / GLB / VRM / VRMA reading and animated writing, checked with the Khronos validator and by
reading every written file back."""
from __future__ import annotations

import hashlib
import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_valid_gltf as assert_valid  # the validator helper, shared with test_head_asset

from toolkit import rigs
from toolkit.animation import ARKIT_BLENDSHAPES, VISEMES, empty_animation
from toolkit.export import gltf as G
from toolkit.gltf_io import ModelError, inspect_model, load_model
from toolkit.visemes.tables import VISEME_POSES

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT.parent / "shared" / "data" / "models"
OCULUS = [f"viseme_{v}" for v in VISEMES]
RPM_VIS = [n.replace("viseme_ih", "viseme_I").replace("viseme_oh", "viseme_O").replace("viseme_ou", "viseme_U")
           for n in OCULUS]
PP = slice(15, 24)  # frames of the /m/ in speech_anim


def speech_anim(fps=30, n=60):
    """aa, then /m/ (frames 15-23), aa, silence; ARKit from the viseme poses; a blink; a head turn."""
    a = empty_animation(n, fps)
    col = a.channels.index
    a.values[0:15, col("viseme_aa")] = 1.0
    a.values[PP, col("viseme_PP")] = 1.0
    a.values[24:45, col("viseme_aa")] = 1.0
    a.values[45:, col("viseme_sil")] = 1.0
    vis = a.values[:, :15].copy()
    for i, v in enumerate(VISEMES):
        for k, w in VISEME_POSES[v].items():
            a.values[:, col(k)] += vis[:, i] * w
    a.values[39:42, col("eyeBlinkLeft")] = 1.0
    a.values[39:42, col("eyeBlinkRight")] = 1.0
    t = np.arange(n) / fps
    a.values[:, col("headYaw")] = 0.25 * np.sin(2 * np.pi * t)
    a.values[:, col("headPitch")] = 0.1 * np.cos(2 * np.pi * t)
    return a


# -- a small glTF builder ----------------------------------------------------------
class Builder:
    """Builds test glTFs from numpy arrays: meshes with named/unnamed/sparse targets, skins, VRM."""

    def __init__(self):
        self.doc = {"asset": {"version": "2.0", "generator": "test"}, "buffers": [], "bufferViews": [],
                    "accessors": [], "meshes": [], "nodes": [], "scenes": [{"nodes": []}], "scene": 0}
        self.blob = bytearray()

    def view(self, data: bytes, target=None, stride=None) -> int:
        self.blob += b"\0" * (-len(self.blob) % 4)
        v = {"buffer": 0, "byteOffset": len(self.blob), "byteLength": len(data)}
        if target:
            v["target"] = target
        if stride:
            v["byteStride"] = stride
        self.blob += data
        self.doc["bufferViews"].append(v)
        return len(self.doc["bufferViews"]) - 1

    def acc(self, arr, type_, minmax=False, target=None) -> int:
        arr = np.ascontiguousarray(arr)
        comp = {np.dtype(np.float32): 5126, np.dtype(np.uint16): 5123, np.dtype(np.uint8): 5121,
                np.dtype(np.uint32): 5125}[arr.dtype]
        k = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}[type_]
        a = {"bufferView": self.view(arr.tobytes(), target), "componentType": comp, "count": arr.size // k,
             "type": type_}
        if minmax:
            flat = arr.reshape(-1, k)
            a["min"], a["max"] = flat.min(0).tolist(), flat.max(0).tolist()
        self.doc["accessors"].append(a)
        return len(self.doc["accessors"]) - 1

    def mesh(self, name, target_names, n_prims=1, sparse=False, skinned=False, n_targets=None) -> int:
        n_t = len(target_names) if target_names is not None else n_targets
        prims = []
        for p in range(n_prims):
            xs, ys = np.meshgrid(np.linspace(0, 1, 4), np.linspace(0, 1, 4))
            pos = np.stack([xs.ravel() + p, ys.ravel(), np.zeros(16)], 1).astype(np.float32)
            idx = []
            for j in range(3):
                for i in range(3):
                    v = j * 4 + i
                    idx += [v, v + 1, v + 5, v, v + 5, v + 4]
            prim = {"attributes": {"POSITION": self.acc(pos, "VEC3", minmax=True, target=34962)},
                    "indices": self.acc(np.asarray(idx, np.uint16), "SCALAR", target=34963), "targets": []}
            if skinned:
                prim["attributes"]["JOINTS_0"] = self.acc(np.tile(np.array([3, 0, 0, 0], np.uint8), 16), "VEC4",
                                                          target=34962)
                prim["attributes"]["WEIGHTS_0"] = self.acc(np.tile(np.array([1, 0, 0, 0], np.float32), 16), "VEC4",
                                                           target=34962)
            for t in range(n_t):
                d = np.zeros((16, 3), np.float32)
                d[t % 16, 2] = 0.01 * (t + 1)  # target t lifts vertex t: recognizable on read-back
                if sparse:
                    vals = d[[t % 16]]
                    acc = {"componentType": 5126, "count": 16, "type": "VEC3", "min": d.min(0).tolist(),
                           "max": d.max(0).tolist(),
                           "sparse": {"count": 1,
                                      "indices": {"bufferView": self.view(np.array([t % 16], np.uint16).tobytes()),
                                                  "componentType": 5123},
                                      "values": {"bufferView": self.view(vals.tobytes())}}}
                    self.doc["accessors"].append(acc)
                    prim["targets"].append({"POSITION": len(self.doc["accessors"]) - 1})
                else:
                    prim["targets"].append({"POSITION": self.acc(d, "VEC3", minmax=True, target=34962)})
            if not prim["targets"]:
                del prim["targets"]
            prims.append(prim)
        m = {"primitives": prims}
        if name:
            m["name"] = name
        if n_t:
            m["weights"] = [0.0] * n_t
        if target_names is not None and n_t:
            m["extras"] = {"targetNames": list(target_names)}
        self.doc["meshes"].append(m)
        return len(self.doc["meshes"]) - 1

    def node(self, root=True, **kw) -> int:
        self.doc["nodes"].append(kw)
        i = len(self.doc["nodes"]) - 1
        if root:
            self.doc["scenes"][0]["nodes"].append(i)
        return i

    def skeleton(self) -> int:
        """Hips -> Spine -> Neck -> Head (Head rotated at rest, so local != world axes); returns the skin."""
        head = self.node(False, name="mixamorig:Head", translation=[0, 0.2, 0], rotation=[0, 0.3826834, 0, 0.9238795])
        neck = self.node(False, name="Neck", translation=[0, 0.3, 0], children=[head],
                         rotation=[0.2588190, 0, 0, 0.9659258])
        spine = self.node(False, name="Spine", translation=[0, 0.5, 0], children=[neck])
        hips = self.node(True, name="Hips", translation=[0, 1, 0], children=[spine])
        ibm = np.tile(np.eye(4, dtype=np.float32).ravel(), 4)
        self.doc["skins"] = [{"joints": [hips, spine, neck, head], "inverseBindMatrices": self.acc(ibm, "MAT4")}]
        return 0

    def glb(self, extra_buffers=()) -> bytes:
        self.blob += b"\0" * (-len(self.blob) % 4)
        self.doc["buffers"] = [{"byteLength": len(self.blob)}] + list(extra_buffers)
        js = json.dumps(self.doc).encode()
        js += b" " * (-len(js) % 4)
        return (struct.pack("<4sII", b"glTF", 2, 28 + len(js) + len(self.blob)) + struct.pack("<II", len(js),
                0x4E4F534A) + js + struct.pack("<II", len(self.blob), 0x004E4942) + bytes(self.blob))

    def save(self, path: Path) -> Path:
        if path.suffix == ".gltf":  # external .bin next to it
            self.blob += b"\0" * (-len(self.blob) % 4)
            (path.parent / (path.stem + ".bin")).write_bytes(bytes(self.blob))
            self.doc["buffers"] = [{"byteLength": len(self.blob), "uri": path.stem + ".bin"}]
            path.write_text(json.dumps(self.doc))
        else:
            path.write_bytes(self.glb())
        return path


def rpm_avatar(tmp_path, suffix=".glb", skin=True) -> Path:
    """Ready Player Me-like avatar: head (visemes + ARKit), teeth (visemes, 2 primitives), hair (no targets)."""
    b = Builder()
    skin_i = b.skeleton() if skin else None
    head = b.mesh("Wolf3D_Head", RPM_VIS + ARKIT_BLENDSHAPES, skinned=skin)
    teeth = b.mesh("Wolf3D_Teeth", RPM_VIS + ["jawOpen"], n_prims=2)
    hair = b.mesh("Wolf3D_Hair", [])
    kw = {"skin": skin_i} if skin else {}
    b.node(name="Head", mesh=head, **kw)
    b.node(name="Teeth", mesh=teeth)
    b.node(name="Hair", mesh=hair)
    return b.save(tmp_path / f"avatar{suffix}")


def read_clip(path: Path, name: str = "viseme-talk"):
    """The written animation read back with the reader: {(node, path): (times, values, interpolation)}."""
    m = load_model(path)
    clip = [a for a in m.doc["animations"] if a.get("name") == name][-1]
    out = {}
    for ch in clip["channels"]:
        s = clip["samplers"][ch["sampler"]]
        t = m.accessor(s["input"])
        v = m.accessor(s["output"])
        if ch["target"]["path"] == "weights":
            v = v.reshape(len(t), -1)
        out[(ch["target"]["node"], ch["target"]["path"])] = (t, v, s.get("interpolation", "LINEAR"))
    return m, out


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def node_index(m, name) -> int:
    return next(i for i, n in enumerate(m.doc["nodes"]) if n.get("name") == name)


# -- tests -----------------------------------------------------------------------------
def test_glb_drives_every_face_mesh_and_the_head_bone(tmp_path):
    src = rpm_avatar(tmp_path)
    before = digest(src)
    a = speech_anim()
    out = tmp_path / "talking.glb"
    rep = G.write_animated_model(a, src, out)
    assert digest(src) == before
    assert "readyplayerme" in rep.via and len(rep.driven) == 2 and "mixamorig:Head" in rep.head_node
    assert_valid(out)
    m, clip = read_clip(out)
    head, teeth = node_index(m, "Head"), node_index(m, "Teeth")
    assert (node_index(m, "Hair"), "weights") not in clip
    t, w, interp = clip[(head, "weights")]
    assert interp == "LINEAR" and len(t) == a.n_frames + 1
    assert t[-1] == pytest.approx(a.duration_s)  # the clip lasts as long as the audio
    names = m.meshes[m.doc["nodes"][head]["mesh"]].target_names
    pp, aa, jaw = names.index("viseme_PP"), names.index("viseme_aa"), names.index("jawOpen")
    assert w[PP, pp].min() > 0.99 and w[:15, pp].max() < 0.01  # lips closed during the /m/
    assert w[:15, aa].min() > 0.99 and w[PP, aa].max() < 0.01
    assert np.all(w[:, jaw] == 0)  # RPM: visemes move the mouth, the ARKit jaw is not added on top
    assert w[40, names.index("eyeBlinkLeft")] == pytest.approx(1.0)
    tw = clip[(teeth, "weights")][1]
    assert tw[PP, RPM_VIS.index("viseme_PP")].min() > 0.99  # the teeth follow the same visemes
    # the rest of the model is untouched: same meshes, skins, accessors before ours
    src_m = load_model(src)
    assert m.doc["meshes"] == src_m.doc["meshes"] and m.doc["skins"] == src_m.doc["skins"]
    for i in range(len(src_m.doc["accessors"])):
        assert np.array_equal(m.accessor(i), src_m.accessor(i))


def test_head_rotation_turns_the_head_in_world_axes(tmp_path):
    src = rpm_avatar(tmp_path)
    a = speech_anim()
    G.write_animated_model(a, src, tmp_path / "o.glb")
    m, clip = read_clip(tmp_path / "o.glb")
    hn = node_index(m, "mixamorig:Head")
    q = clip[(hn, "rotation")][1]
    parent_w = m.world_matrices()[m.parents()[hn]][:3, :3]
    from toolkit.gltf_io import quat_to_matrix

    rest_world = parent_w @ quat_to_matrix(m.doc["nodes"][hn]["rotation"])
    delta = rigs.head_rotation(a, "+z")
    for f in (0, 7, 20):
        got = parent_w @ quat_to_matrix(q[f])
        assert np.allclose(got, quat_to_matrix(delta[f]) @ rest_world, atol=1e-5)


def test_gltf_with_external_bin_and_image_becomes_self_contained(tmp_path):
    from PIL import Image

    b = Builder()
    mesh = b.mesh("Face", ARKIT_BLENDSHAPES)
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 120, 100)).save(buf, "PNG")
    (tmp_path / "skin.png").write_bytes(buf.getvalue())
    b.doc["images"] = [{"uri": "skin.png"}]
    b.doc["textures"] = [{"source": 0}]
    b.doc["materials"] = [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}]
    for p in b.doc["meshes"][mesh]["primitives"]:
        p["material"] = 0
        p["attributes"]["TEXCOORD_0"] = b.acc(np.random.default_rng(0).random((16, 2), np.float32), "VEC2",
                                              target=34962)
    b.node(name="Face", mesh=mesh)
    src = b.save(tmp_path / "face.gltf")
    out_dir = tmp_path / "elsewhere"
    out_dir.mkdir()  # outputs never create folders: a missing one is an error
    out = out_dir / "face_talking.gltf"
    G.write_animated_model(speech_anim(), src, out)
    assert_valid(out)
    assert sorted(p.name for p in out_dir.iterdir()) == ["face_talking.gltf"]  # one file, nothing else
    m, clip = read_clip(out)
    assert m.base_color_image(0).shape == (4, 4, 4)
    w = clip[(0, "weights")][1]
    assert w[5, ARKIT_BLENDSHAPES.index("jawOpen")] == pytest.approx(VISEME_POSES["aa"]["jawOpen"], abs=1e-6)
    assert w[18, ARKIT_BLENDSHAPES.index("mouthPressLeft")] == pytest.approx(0.45, abs=1e-6)


def test_unnamed_targets_multi_primitive_with_index_rig(tmp_path):
    b = Builder()
    b.node(name="Blob", mesh=b.mesh(None, None, n_prims=2, n_targets=3))
    src = b.save(tmp_path / "blob.glb")
    with pytest.raises(ModelError, match="unnamed"):
        G.write_animated_model(speech_anim(), src, tmp_path / "x.glb")
    assert not (tmp_path / "x.glb").exists()
    rig = {"name": "blobrig", "targets_by_index": {"0": "viseme_PP", "2": {"viseme_aa": 0.5}}}
    (tmp_path / "blobrig.json").write_text(json.dumps(rig))
    out = tmp_path / "blob_talking.glb"
    G.write_animated_model(speech_anim(), src, out, profile=tmp_path / "blobrig.json")
    assert_valid(out)
    _, clip = read_clip(out)
    w = clip[(0, "weights")][1]
    assert w[PP, 0].min() == 1 and w[PP, 2].max() == 0 and w[5, 2] == pytest.approx(0.5) and np.all(w[:, 1] == 0)


def test_sparse_targets_are_read_and_kept(tmp_path):
    b = Builder()
    b.node(name="Face", mesh=b.mesh("Face", ["jawOpen", "mouthClose", "eyeBlink_L", "eyeBlink_R", "mouthPucker"],
                                    sparse=True))
    src = b.save(tmp_path / "sparse.glb")
    m = load_model(src)
    d = m.meshes[0].primitives[0].target_deltas()
    assert d.shape == (5, 16, 3)
    for t in range(5):
        assert d[t, t, 2] == pytest.approx(0.01 * (t + 1)) and np.count_nonzero(d[t]) == 1
    out = tmp_path / "sparse_talking.glb"
    G.write_animated_model(speech_anim(), src, out)
    assert_valid(out)
    assert np.array_equal(load_model(out).meshes[0].primitives[0].target_deltas(), d)


def _vrm0_model(tmp_path, binds_ok=True) -> Path:
    b = Builder()
    b.skeleton()
    face = b.mesh("Face", [f"Fcl_MTH_{v}" for v in "AIUEO"] + ["Fcl_EYE_Close"], skinned=True)
    b.node(name="Body", mesh=face, skin=0)
    groups = [{"name": v, "presetName": v.lower(), "binds": [{"mesh": 0, "index": i, "weight": 100}]}
              for i, v in enumerate("AIUEO")]
    groups.append({"name": "Blink", "presetName": "blink", "binds": [{"mesh": 0, "index": 5 if binds_ok else 9,
                                                                        "weight": 50}]})
    b.doc["extensionsUsed"] = ["VRM"]
    b.doc["extensions"] = {"VRM": {"specVersion": "0.0", "meta": {"title": "test"},
                                   "humanoid": {"humanBones": [{"bone": "head", "node": 0}]},
                                   "blendShapeMaster": {"blendShapeGroups": groups}}}
    return b.save(tmp_path / "avatar.vrm")


def test_vrm0_expressions_through_binds(tmp_path):
    src = _vrm0_model(tmp_path)
    out = tmp_path / "avatar_talking.vrm"
    rep = G.write_animated_model(speech_anim(), src, out)
    assert "VRM 0.x" in rep.via and "vrm0" in rep.via
    assert_valid(out)
    m, clip = read_clip(out)
    assert m.vrm is not None and m.vrm.version == "0.x"  # still a VRM
    assert m.doc["extensions"]["VRM"] == load_model(src).doc["extensions"]["VRM"]
    w = clip[(node_index(m, "Body"), "weights")][1]
    assert w[PP, :5].max() < 0.01  # all vowels shut for /m/
    assert w[5, 0] > 0.99  # A during aa
    assert w[40, 5] == pytest.approx(0.5)  # blink at bind weight 50/100
    assert (0, "rotation") in clip  # humanoid head bone


def test_vrm_with_broken_binds_is_refused(tmp_path):
    src = _vrm0_model(tmp_path, binds_ok=False)
    before = digest(src)
    with pytest.raises(ModelError, match=r"binds morph target #9.*only 6"):
        G.write_animated_model(speech_anim(), src, tmp_path / "o.vrm")
    assert digest(src) == before and not (tmp_path / "o.vrm").exists()


def test_vrm1_without_morph_binds_lists_what_was_found(tmp_path):
    b = Builder()
    b.node(name="Face", mesh=b.mesh("Face", ["Key 1", "Key 2"]))
    b.doc["extensionsUsed"] = ["VRMC_vrm"]
    b.doc["extensions"] = {"VRMC_vrm": {"specVersion": "1.0", "expressions": {"preset": {"aa": {}, "blink": {}}}}}
    src = b.save(tmp_path / "nobinds.vrm")
    with pytest.raises(ModelError, match=r"aa \(no morph binds\).*Key 1"):
        G.write_animated_model(speech_anim(), src, tmp_path / "o.vrm")


def test_meshopt_and_quantized_model_is_read_and_written(tmp_path):
    meshopt = pytest.importorskip("meshopt")
    b = Builder()
    mi = b.mesh("Face", ["jawOpen", "mouthClose", "eyeBlink_L", "eyeBlink_R", "mouthFunnel"])
    prim = b.doc["meshes"][mi]["primitives"][0]
    pos = b.doc["accessors"][prim["attributes"]["POSITION"]]
    xyz = np.asarray(np.meshgrid(np.arange(4), np.arange(4)), np.uint16).reshape(2, -1).T * 1000
    q = np.zeros((16, 4), np.uint16)  # KHR_mesh_quantization: uint16 positions, 8-byte stride
    q[:, :2] = xyz
    enc = meshopt.encode_gltf_buffer(q, "ATTRIBUTES")
    b.blob += b"\0" * (-len(b.blob) % 4)
    off = len(b.blob)
    b.blob += enc
    b.doc["bufferViews"].append({"buffer": 1, "byteOffset": 0, "byteLength": q.nbytes, "byteStride": 8,
                                 "target": 34962, "extensions": {"EXT_meshopt_compression": {
                                     "buffer": 0, "byteOffset": off, "byteLength": len(enc), "byteStride": 8,
                                     "mode": "ATTRIBUTES", "count": 16}}})
    pos.update({"bufferView": len(b.doc["bufferViews"]) - 1, "componentType": 5123, "byteOffset": 0,
                "min": [0, 0, 0], "max": [3000, 3000, 0]})
    b.doc["extensionsUsed"] = b.doc["extensionsRequired"] = ["EXT_meshopt_compression", "KHR_mesh_quantization"]
    b.node(name="Face", mesh=mi, scale=[0.001, 0.001, 0.001])
    src = tmp_path / "quant.glb"
    # the bufferView's own buffer is meshopt's data-less fallback buffer
    src.write_bytes(b.glb([{"byteLength": q.nbytes, "extensions": {"EXT_meshopt_compression": {"fallback": True}}}]))
    m = load_model(src)
    assert np.array_equal(m.meshes[0].primitives[0].positions, q[:, :3].astype(np.float32))
    out = tmp_path / "quant_talking.glb"
    G.write_animated_model(speech_anim(), src, out)
    assert_valid(out)
    m2, clip = read_clip(out)
    assert np.array_equal(m2.meshes[0].primitives[0].positions, q[:, :3].astype(np.float32))
    assert m2.doc["extensionsRequired"] == ["EXT_meshopt_compression", "KHR_mesh_quantization"]
    assert clip[(0, "weights")][1][5, 0] == pytest.approx(VISEME_POSES["aa"]["jawOpen"], abs=1e-6)


def test_unsupported_required_compression_is_named(tmp_path):
    b = Builder()
    b.node(name="Face", mesh=b.mesh("Face", ["jawOpen"]))
    b.doc["extensionsUsed"] = b.doc["extensionsRequired"] = ["KHR_draco_mesh_compression"]
    m = load_model(b.save(tmp_path / "draco.glb"))
    with pytest.raises(ModelError, match="KHR_draco_mesh_compression"):
        m.meshes[0].primitives[0].positions


def test_bad_inputs_write_nothing(tmp_path):
    a = speech_anim()
    b = Builder()
    b.node(name="Rock", mesh=b.mesh("Rock", []))
    rock = b.save(tmp_path / "rock.glb")
    with pytest.raises(ModelError, match=r"no morph targets.*Rock"):
        G.write_animated_model(a, rock, tmp_path / "o.glb")
    src = rpm_avatar(tmp_path)
    before = digest(src)
    with pytest.raises(ValueError, match="overwrite the input"):
        G.write_animated_model(a, src, src)
    with pytest.raises(ModelError, match="not a VRM"):
        G.write_animated_model(a, src, tmp_path / "o.vrm")
    broken = tmp_path / "broken.glb"
    broken.write_bytes(src.read_bytes()[:-200])
    with pytest.raises(ModelError, match="broken|truncated"):
        G.write_animated_model(a, broken, tmp_path / "o.glb")
    gsrc = rpm_avatar(tmp_path, ".gltf")
    (tmp_path / "avatar.bin").write_bytes((tmp_path / "avatar.bin").read_bytes()[:100])
    with pytest.raises(ModelError, match=r"buffer #0 is broken"):
        G.write_animated_model(a, gsrc, tmp_path / "o.glb")
    with pytest.raises(ValueError, match="output must end in"):
        G.write_animated_model(a, gsrc, tmp_path / "avatar.bin")  # would clobber the model's buffer
    assert digest(src) == before
    assert not (tmp_path / "o.glb").exists() and not (tmp_path / "o.vrm").exists()
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind


def test_inspect_lists_targets_profile_and_missing(tmp_path):
    src = rpm_avatar(tmp_path)
    text = inspect_model(src)
    for want in ["Wolf3D_Head", "Wolf3D_Teeth", "primitive 1", "viseme_PP", "readyplayerme", "head rotation node",
                 "mixamorig:Head"]:
        assert want in text, want
    b = Builder()
    b.node(name="F", mesh=b.mesh("F", ["jawOpen", "eyeBlink_L", "eyeBlink_R", "mouthClose", "mouthFunnel",
                                       "mouthPucker", "mouthSmile_L", "mouthSmile_R", "browInnerUp",
                                       "tongueOut", "cheekPuff", "mouthPress_L", "mouthPress_R",
                                       "noseSneer_L", "noseSneer_R", "jawForward", "jawLeft", "jawRight",
                                       "mouthLeft", "mouthRight", "mouthRollLower", "mouthRollUpper",
                                       "mouthShrugLower", "mouthShrugUpper", "mouthClose"][:26]))
    text = inspect_model(b.save(tmp_path / "partial.glb"))
    assert "arkit52" in text and "missing:" in text and "eyeWideLeft" in text


def test_vrma_expression_tracks_and_head(tmp_path):
    a = speech_anim()
    out = tmp_path / "talk.vrma"
    G.write_vrma(a, out)
    assert_valid(out)
    m, clip = read_clip(out)
    ext = m.doc["extensions"]["VRMC_vrm_animation"]
    assert ext["specVersion"] == "1.0" and "head" in ext["humanoid"]["humanBones"]
    pre = ext["expressions"]["preset"]
    assert {"aa", "ih", "ou", "ee", "oh", "blink"} <= set(pre)
    aa = clip[(pre["aa"]["node"], "translation")][1][:, 0]
    assert aa[:15].min() > 0.99 and aa[PP].max() < 0.01
    assert clip[(pre["blink"]["node"], "translation")][1][40, 0] == pytest.approx(1.0)
    q = clip[(ext["humanoid"]["humanBones"]["head"]["node"], "rotation")][1]
    assert np.allclose(q[:-1], rigs.head_rotation(a), atol=1e-6)


def test_standalone_head(tmp_path):
    if not G.DEFAULT_HEAD.is_file():
        pytest.skip("assets/head/head.glb not built yet (assets/head/build_head.py)")
    out = tmp_path / "head.glb"
    rep = G.write_standalone_head(speech_anim(), out)
    assert "arkit52" in rep.via
    assert_valid(out, inherited_from=G.DEFAULT_HEAD)
    _, clip = read_clip(out)
    w = next(v for (n, p), (t, v, i) in clip.items() if p == "weights")
    assert w[5, ARKIT_BLENDSHAPES.index("jawOpen")] == pytest.approx(VISEME_POSES["aa"]["jawOpen"], abs=1e-6)


# -- real files in ../shared/data/models ------------------------------------------------
def real(rel: str) -> Path:
    p = MODELS / rel
    if not p.exists():
        pytest.skip(f"{p} not present (real test models live in ../shared/data/models)")
    return p


def test_facecap_arkit_with_L_R_names_and_meshopt(tmp_path):
    src = real("facecap/facecap.glb")
    m = load_model(src)
    face = m.meshes[2]
    assert face.n_targets == 52 and "eyeBlink_L" in face.target_names
    p = face.primitives[0]
    assert p.positions.shape == (2694, 3) and p.target_deltas().shape == (52, 2694, 3)
    assert np.abs(p.target_deltas()[face.target_names.index("jawOpen")]).max() > 0
    out = tmp_path / "facecap_talking.glb"
    rep = G.write_animated_model(speech_anim(), src, out)
    assert "arkit52" in rep.via and "52/52" in rep.driven[0]
    assert_valid(out)
    m2, clip = read_clip(out)
    assert len(m2.doc["animations"]) == len(m.doc["animations"]) + 1  # the capture take is kept
    w = clip[(2, "weights")][1]
    assert w[5, face.target_names.index("jawOpen")] == pytest.approx(VISEME_POSES["aa"]["jawOpen"], abs=1e-6)
    assert w[18, face.target_names.index("mouthPress_L")] == pytest.approx(0.45, abs=1e-6)
    assert w[40, face.target_names.index("eyeBlink_R")] == pytest.approx(1.0)
    assert np.array_equal(m2.meshes[2].primitives[0].positions, p.positions)


def test_vrm1_cube_aa_and_blink_binds(tmp_path):
    src = real("vrm/three-vrm-core_cube/cube.gltf")
    out = tmp_path / "cube_talking.vrm"
    rep = G.write_animated_model(speech_anim(), src, out)
    assert "VRM 1.0" in rep.via and "Head" in rep.head_node
    assert_valid(out, inherited_from=src)  # the source's own missing thumbnail.png is its error, not ours
    m, clip = read_clip(out)
    assert "VRMC_vrm" in m.doc["extensions"] and m.vrm.version == "1.0"
    mouth = clip[(node_index(m, "Mouth"), "weights")][1]
    aa = rigs.retarget(speech_anim(), ["aa"], profile="vrm1")[:, 0]
    assert np.allclose(mouth[:-1, 1], 3 * aa, atol=1e-5)  # bind weight 3
    assert mouth[PP, 1].max() < 0.01
    eye = clip[(node_index(m, "LeftEyeMesh"), "weights")][1]
    assert eye[40, 1] == pytest.approx(-0.75)  # blinkLeft bind, not doubled by 'blink'


def test_vrm0_sphere_without_morphs_is_refused(tmp_path):
    src = real("vrm/three-vrm_0.x_sphere.vrm")
    with pytest.raises(ModelError, match="no morph targets"):
        G.write_animated_model(speech_anim(), src, tmp_path / "o.vrm")
    assert not (tmp_path / "o.vrm").exists()


def test_khronos_samples(tmp_path):
    simple = real("khronos_gltf_samples/SimpleMorph/glTF/SimpleMorph.gltf")
    rig = {"name": "simple", "targets_by_index": {"0": "jawOpen", "1": "viseme_PP"}}
    out = tmp_path / "simple.glb"
    G.write_animated_model(speech_anim(), simple, out, profile=rig)
    assert_valid(out)
    _, clip = read_clip(out)
    w = clip[(0, "weights")][1]
    assert w[PP, 1].min() == 1 and w[5, 0] == pytest.approx(0.65, abs=1e-6)
    prims = real("khronos_gltf_samples/MorphPrimitivesTest/glTF/MorphPrimitivesTest.gltf")
    out = tmp_path / "prims.gltf"
    G.write_animated_model(speech_anim(), prims, out, profile={"targets_by_index": {"0": "viseme_aa"}})
    assert_valid(out)
    stress = real("bevy/MorphStressTest.gltf")
    with pytest.raises(ModelError, match=r"Key 1.*Key 8"):
        G.write_animated_model(speech_anim(), stress, tmp_path / "s.glb")
