"""Test helpers for glTF models: a procedural glTF builder, a Ready Player Me-like avatar, a speech-like
animation with a known /m/, reading a written clip back, and the real models in ../shared/data/models."""
from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from toolkit.animation import ARKIT_BLENDSHAPES, VISEMES, empty_animation
from toolkit.gltf.read import load_model
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


def real(rel: str) -> Path:
    p = MODELS / rel
    if not p.exists():
        pytest.skip(f"{p} not present (real test models live in ../shared/data/models)")
    return p


def leftover_temp_files(folder: Path) -> list[Path]:
    """Temporary files `toolkit.files.atomic_write` left in ``folder`` (it names them .NAME.XXXX.part.EXT)."""
    return sorted(folder.glob(".*.part*"))


# The bones a VRM humanoid must have besides hips and head (three-vrm refuses a VRM without them)
LIMBS = ["spine"] + [f"{side}{part}" for side in ("left", "right")
                     for part in ("UpperLeg", "LowerLeg", "Foot", "UpperArm", "LowerArm", "Hand")]


def _limbs(b: Builder, hips: int, skip=()) -> dict[str, int]:
    """Nodes for the required humanoid bones (children of ``hips``), {bone: node}."""
    out = {}
    for bone in LIMBS:
        if bone not in skip:
            out[bone] = b.node(False, name=bone[0].upper() + bone[1:], translation=[0, 0.1, 0])
            b.doc["nodes"][hips].setdefault("children", []).append(out[bone])
    return out


def vrm1_model(tmp_path: Path, binds: dict[str, list[dict]], target_names=None, name="face.vrm",
               full_humanoid=False) -> Path:
    """A VRM 1.0 model: Hips -> Head bones, a face mesh with 3 morph targets (node #2, unnamed
    unless ``target_names``), and the expressions ``binds`` {preset: morphTargetBinds};
    ``full_humanoid``: every required humanoid bone too (nodes #3 on), as real VRMs have."""
    b = Builder()
    face = b.mesh("Face", target_names, n_targets=3)
    head = b.node(False, name="Head", translation=[0, 0.5, 0])
    b.node(name="Hips", children=[head])
    b.node(name="Face", mesh=face)
    bones = {"hips": {"node": 1}, "head": {"node": 0}}
    if full_humanoid:
        bones.update({k: {"node": v} for k, v in _limbs(b, 1).items()})
    b.doc["extensionsUsed"] = ["VRMC_vrm"]
    b.doc["extensions"] = {"VRMC_vrm": {
        "specVersion": "1.0", "meta": {"name": "test", "licenseUrl": "https://vrm.dev/licenses/1.0/"},
        "humanoid": {"humanBones": bones},
        "expressions": {"preset": {k: {"morphTargetBinds": v} for k, v in binds.items()}}}}
    return b.save(tmp_path / name)


def vrm0_model(tmp_path, binds_ok=True, full_humanoid=False) -> Path:
    """A VRM 0.x avatar: skinned face with Fcl_MTH_A..O + Fcl_EYE_Close, A I U E O and Blink groups
    (Blink bound to target 9, which does not exist, unless ``binds_ok``); ``full_humanoid``: every
    required humanoid bone in the humanoid, as real VRMs have."""
    b = Builder()
    b.skeleton()
    bones = [{"bone": "head", "node": 0}]
    if full_humanoid:  # the skeleton is Hips(3) -> Spine(2) -> Neck(1) -> Head(0)
        bones += [{"bone": "hips", "node": 3}, {"bone": "spine", "node": 2}, {"bone": "neck", "node": 1}]
        bones += [{"bone": k, "node": v} for k, v in _limbs(b, 3, skip=("spine",)).items()]
    face = b.mesh("Face", [f"Fcl_MTH_{v}" for v in "AIUEO"] + ["Fcl_EYE_Close"], skinned=True)
    b.node(name="Body", mesh=face, skin=0)
    groups = [{"name": v, "presetName": v.lower(), "binds": [{"mesh": 0, "index": i, "weight": 100}]}
              for i, v in enumerate("AIUEO")]
    groups.append({"name": "Blink", "presetName": "blink", "binds": [{"mesh": 0, "index": 5 if binds_ok else 9,
                                                                        "weight": 50}]})
    b.doc["extensionsUsed"] = ["VRM"]
    b.doc["extensions"] = {"VRM": {"specVersion": "0.0", "meta": {"title": "test"},
                                   "humanoid": {"humanBones": bones},
                                   "blendShapeMaster": {"blendShapeGroups": groups}}}
    return b.save(tmp_path / "avatar.vrm")
