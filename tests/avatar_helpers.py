"""A procedural avatar written the way gltfpack writes real ones, for renderer tests.

`packed_avatar` builds a small skinned character: an armature (scaled 0.01, as FBX exports are) with
Hips -> Spine -> Neck -> Head; a body on one skin (neck skinned from Neck to Head, a shirt collar on
Spine); a head on a second skin, authored in the Head joint's space, whose face has lips over a dark
mouth hole, eyes and lids (ARKit morph targets jawOpen, mouthClose, eyeBlink*, mouthFunnel...); a hair
card with MASK alpha, a rigid child of the Head bone.  With ``quantize`` the geometry is stored as
KHR_mesh_quantization integers (int16 positions, int8 normals, uint16 UVs, uint8 joints and
weights), each mesh on its own grid, the dequantization baked into the inverse bind matrices (the
hair's into its node), so the bind pose only makes sense once skinned; with ``meshopt``
every bufferView is EXT_meshopt_compression data; the face texture is WebP (EXT_texture_webp) beside
an undecodable KTX2 (KHR_texture_basisu), and its UVs address the left half of the image only
through KHR_texture_transform (the right half is green: a renderer that ignores the transform shows it).

Geometry (metres, face looking +Z): the Head joint at HEAD_JOINT; lips meet at LIP_Y on the face
plane FACE_Z; the collar's top is COLLAR_TOP, in front of the chin at COLLAR_Z.
"""
from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np

from toolkit.rotation import quat_to_matrix

HEAD_JOINT = np.array([0.0, 1.56, 0.0])
FACE_Z = 0.09
LIP_Y = 1.615
MOUTH_HALF_W = 0.03
EYE_Y = 1.69
EYE_X = 0.035
CHIN_Y = 1.585
COLLAR_TOP = 1.575
COLLAR_Z = 0.12
SKIN = (224, 172, 140)
LIP = (190, 40, 50)
SHIRT = (40, 70, 200)
HAIR = (90, 50, 20)
TARGETS = ["jawOpen", "mouthClose", "eyeBlinkLeft", "eyeBlinkRight", "mouthFunnel", "mouthSmileLeft"]


def _quad(x0, x1, y0, y1, z):
    """4 vertices, 2 triangles facing +Z."""
    p = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], np.float64)
    return p, np.array([[0, 1, 2], [0, 2, 3]])


def _box(x0, x1, y0, y1, z0, z1):
    """A closed box: 6 faces of 4 vertices (flat normals), triangles facing out."""
    c = np.array([[x, y, z] for z in (z0, z1) for y in (y0, y1) for x in (x0, x1)], np.float64)
    faces = [(4, 5, 7, 6), (1, 0, 2, 3), (0, 4, 6, 2), (5, 1, 3, 7), (2, 6, 7, 3), (0, 1, 5, 4)]
    pos, tri = [], []
    for f in faces:
        base = len(pos)
        pos += [c[i] for i in f]
        tri += [[base, base + 1, base + 2], [base, base + 2, base + 3]]
    return np.array(pos), np.array(tri)


def _normals(pos, tri):
    n = np.zeros_like(pos)
    fn = np.cross(pos[tri[:, 1]] - pos[tri[:, 0]], pos[tri[:, 2]] - pos[tri[:, 0]])
    for k in range(3):
        np.add.at(n, tri[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


class _Part:
    """Triangles with per-vertex head weight, uv, morph deltas, one material."""

    def __init__(self):
        self.pos, self.tri, self.uv, self.head_w, self.deltas = [], [], [], [], {}

    def add(self, pos, tri, uv=None, head_w=1.0, deltas=None):
        base = sum(len(p) for p in self.pos)
        self.pos.append(pos)
        self.tri.append(tri + base)
        self.uv.append(uv if uv is not None else np.zeros((len(pos), 2)))
        self.head_w.append(np.broadcast_to(np.asarray(head_w, float), (len(pos),)).copy())
        for k, d in (deltas or {}).items():
            self.deltas.setdefault(k, {})[len(self.pos) - 1] = d

    def arrays(self, names=()):
        pos = np.concatenate(self.pos)
        d = {}
        for k in names:
            full = []
            for i, p in enumerate(self.pos):
                full.append(self.deltas.get(k, {}).get(i, np.zeros_like(p)))
            d[k] = np.concatenate(full)
        return pos, np.concatenate(self.tri), np.concatenate(self.uv), np.concatenate(self.head_w), d


def _images():
    from PIL import Image

    face = np.zeros((8, 8, 3), np.uint8)
    face[:, :5] = SKIN           # the left half (and a texel more), which the texture transform addresses
    face[:, 5:] = (0, 255, 0)    # green: shows only if the transform is ignored
    webp = io.BytesIO()
    Image.fromarray(face).save(webp, format="WEBP", lossless=True)
    hair = np.zeros((8, 8, 4), np.uint8)
    hair[..., :3] = HAIR
    hair[..., 3] = 77            # 0.3: under the cutoff, so the forehead shows through
    hair[:, ::4, 3] = 255        # strands
    png = io.BytesIO()
    Image.fromarray(hair).save(png, format="PNG")
    return webp.getvalue(), png.getvalue()


def _face_part():
    face = _Part()
    eye_h = 0.012
    # the face plate with a hole for the mouth (the lips cover it at rest): left, right, above, below
    x0, x1, y0, y1 = -0.08, 0.08, CHIN_Y, 1.78
    mx, my0, my1 = MOUTH_HALF_W, LIP_Y - 0.025, LIP_Y + 0.012
    for qx0, qx1, qy0, qy1 in ((x0, -mx, y0, y1), (mx, x1, y0, y1), (-mx, mx, my1, y1), (-mx, mx, y0, my0)):
        p, t = _quad(qx0, qx1, qy0, qy1, FACE_Z)
        face.add(p, t, uv=np.c_[(p[:, 0] - x0) / (x1 - x0), 1 - (p[:, 1] - y0) / (y1 - y0)])
    # the back of the head: a box behind the plate
    p, t = _box(-0.08, 0.08, CHIN_Y, 1.78, -0.09, FACE_Z - 0.045)
    face.add(p, t, uv=np.full((len(p), 2), 0.25))
    return face


def _lips_part():
    lips = _Part()
    open_d = 0.025
    p, t = _quad(-MOUTH_HALF_W - 0.004, MOUTH_HALF_W + 0.004, LIP_Y, LIP_Y + 0.013, FACE_Z + 0.002)
    lips.add(p, t)
    p, t = _quad(-MOUTH_HALF_W - 0.004, MOUTH_HALF_W + 0.004, LIP_Y - 0.031, LIP_Y, FACE_Z + 0.002)
    down = np.zeros_like(p)
    down[:, 1] = -open_d
    lips.add(p, t, deltas={"jawOpen": down, "mouthClose": -down})
    # a small funnel/smile shift keep these targets moving something
    side = np.zeros_like(p)
    side[:, 0] = 0.002
    lips.add(*_quad(-0.001, 0.001, LIP_Y + 0.02, LIP_Y + 0.021, FACE_Z + 0.001),
             deltas={"mouthFunnel": np.full((4, 3), [0, 0, 0.001]), "mouthSmileLeft": np.full((4, 3), [0.001, 0, 0])})
    return lips


def _dark_part():
    dark = _Part()
    # the mouth's inside, behind the hole; the eyes
    p, t = _quad(-MOUTH_HALF_W - 0.01, MOUTH_HALF_W + 0.01, LIP_Y - 0.045, LIP_Y + 0.02, FACE_Z - 0.03)
    dark.add(p, t)
    for sx in (-1, 1):
        p, t = _quad(sx * EYE_X - 0.015, sx * EYE_X + 0.015, EYE_Y - 0.008, EYE_Y + 0.008, FACE_Z + 0.001)
        dark.add(p, t)
    return dark


def _lid_part():
    lids = _Part()
    for sx, name in ((1, "eyeBlinkLeft"), (-1, "eyeBlinkRight")):
        p, t = _quad(sx * EYE_X - 0.017, sx * EYE_X + 0.017, EYE_Y + 0.009, EYE_Y + 0.012, FACE_Z + 0.002)
        d = np.zeros_like(p)
        d[[0, 1], 1] = -0.022    # the lid's lower edge drops over the eye
        lids.add(p, t, deltas={name: d})
    return lids


def _body_parts():
    neck, collar = _Part(), _Part()
    # the neck: a box in rings, skinned from Neck (below) to Head (above)
    ys = np.linspace(1.43, 1.60, 8)
    for ya, yb in zip(ys[:-1], ys[1:]):
        p, t = _box(-0.045, 0.045, ya, yb, -0.05, 0.05)
        neck.add(p, t, head_w=np.clip((p[:, 1] - 1.47) / 0.1, 0, 1))
    # shirt: torso and a high collar in front of the neck and chin, on the Spine
    p, t = _box(-0.18, 0.18, 1.10, 1.46, -0.1, 0.1)
    collar.add(p, t, head_w=0.0)
    p, t = _quad(-0.1, 0.1, 1.46, COLLAR_TOP, COLLAR_Z)
    collar.add(p, t, head_w=0.0)
    return neck, collar


def _hair_part():
    hair = _Part()
    p, t = _quad(-0.08, 0.08, 1.73, 1.78, FACE_Z + 0.004)
    hair.add(p, t, uv=np.c_[(p[:, 0] + 0.08) / 0.16, 1 - (p[:, 1] - 1.73) / 0.05])
    return hair


class _Glb:
    def __init__(self, meshopt: bool):
        self.doc = {"asset": {"version": "2.0", "generator": "viseme-toolkit tests (gltfpack-like)"},
                    "bufferViews": [], "accessors": []}
        self.blob = bytearray()
        self.packed = bytearray() if meshopt else None
        self.plain_len = 0

    def _align(self, buf):
        buf.extend(b"\0" * (-len(buf) % 4))

    def view(self, data: bytes, target=None, stride=None, mode=None, arr=None, elem=None) -> int:
        v = {"byteLength": len(data)}
        if target:
            v["target"] = target
        if stride:
            v["byteStride"] = stride
        if self.packed is not None and mode is not None:
            import meshopt

            enc = meshopt.encode_gltf_buffer(arr, mode)
            self._align(self.blob)
            v.update(buffer=1, byteOffset=self.plain_len)
            self.plain_len += len(data) + (-len(data) % 4)
            v["extensions"] = {"EXT_meshopt_compression": {
                "buffer": 0, "byteOffset": len(self.blob), "byteLength": len(enc), "byteStride": elem,
                "mode": mode, "count": len(arr)}}
            self.blob.extend(enc)
        else:
            self._align(self.blob)
            v.update(buffer=0, byteOffset=len(self.blob))
            self.blob.extend(data)
        self.doc["bufferViews"].append(v)
        return len(self.doc["bufferViews"]) - 1

    def acc(self, arr, type_, comp, normalized=False, minmax=False, target=None, mode="ATTRIBUTES") -> int:
        arr = np.ascontiguousarray(arr)
        k = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}[type_]
        rows = arr.reshape(len(arr), -1) if arr.ndim > 1 else arr
        if mode == "ATTRIBUTES" and arr.ndim == 2 and arr.dtype.itemsize * k % 4:
            # meshopt (and glTF vertex attributes) need 4-byte strides: pad each element
            pad = (4 - arr.dtype.itemsize * k % 4) // arr.dtype.itemsize
            rows = np.concatenate([arr, np.zeros((len(arr), pad), arr.dtype)], 1)
        elem = rows.dtype.itemsize * (rows.shape[1] if rows.ndim == 2 else 1)
        a = {"bufferView": self.view(rows.tobytes(), target, elem if mode == "ATTRIBUTES" and target else None,
                                     mode if target else None, rows if target else None, elem),
             "componentType": comp, "count": len(arr), "type": type_}
        if normalized:
            a["normalized"] = True
        if minmax:
            a["min"], a["max"] = arr.reshape(len(arr), k).min(0).tolist(), arr.reshape(len(arr), k).max(0).tolist()
        self.doc["accessors"].append(a)
        return len(self.doc["accessors"]) - 1

    def glb(self) -> bytes:
        self._align(self.blob)
        bufs = [{"byteLength": len(self.blob)}]
        if self.packed is not None:
            bufs.append({"byteLength": self.plain_len, "extensions": {"EXT_meshopt_compression": {"fallback": True}}})
        self.doc["buffers"] = bufs
        js = json.dumps(self.doc).encode()
        js += b" " * (-len(js) % 4)
        return (struct.pack("<4sII", b"glTF", 2, 28 + len(js) + len(self.blob)) + struct.pack("<II", len(js),
                0x4E4F534A) + js + struct.pack("<II", len(self.blob), 0x004E4942) + bytes(self.blob))


def _trs(t=(0, 0, 0), r=(0, 0, 0, 1), s=(1, 1, 1)) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = quat_to_matrix(np.asarray(r, float)) * np.asarray(s, float)[None, :]
    m[:3, 3] = t
    return m


def packed_avatar(path: Path, quantize: bool = True, meshopt: bool = True) -> Path:
    """Write the avatar (see the module docstring) to ``path`` (.glb) and return it."""
    g = _Glb(meshopt)
    doc = g.doc
    used = {"KHR_texture_transform", "EXT_texture_webp", "KHR_texture_basisu"}
    if quantize:
        used.add("KHR_mesh_quantization")
    if meshopt:
        used.add("EXT_meshopt_compression")
    doc["extensionsUsed"] = sorted(used)
    if used & {"KHR_mesh_quantization", "EXT_meshopt_compression"}:
        doc["extensionsRequired"] = sorted(used & {"KHR_mesh_quantization", "EXT_meshopt_compression"})
    # skeleton: Armature (cm, as FBX exports) -> Hips -> Spine -> Neck -> Head; Head turned at rest
    arm_s = 0.01
    joints = [("Hips", [0, 100, 0], [0, 0, 0, 1]), ("Spine", [0, 30, 0], [0, 0, 0, 1]),
              ("Neck", [0, 14, 0], [0.0871557, 0, 0, 0.9961947]), ("Head", None, [0, 0.258819, 0, 0.9659258])]
    nodes = [{"name": "Armature", "scale": [arm_s] * 3, "children": [1]}]
    world = [_trs(s=[arm_s] * 3)]
    for i, (name, t, r) in enumerate(joints):
        parent_w = world[-1]
        if t is None:   # place the head joint exactly at HEAD_JOINT (world), whatever the neck's turn
            t = (np.linalg.inv(parent_w) @ np.r_[HEAD_JOINT, 1])[:3].tolist()
        n = {"name": name, "translation": list(map(float, t)), "rotation": list(map(float, r))}
        if i + 1 < len(joints):
            n["children"] = [len(nodes) + 1]
        nodes.append(n)
        world.append(parent_w @ _trs(t, r))
    J = {name: 1 + i for i, (name, _, _) in enumerate(joints)}   # node index of each joint
    head_w = world[J["Head"]]
    parts = {"face": _face_part(), "lips": _lips_part(), "dark": _dark_part(), "lids": _lid_part()}
    neck, collar = _body_parts()
    parts.update(neck=neck, collar=collar, hair=_hair_part())
    # the head's meshes are authored in the Head joint's space (as exporters write meshes bound to one
    # bone), the body in the model's; each mesh gets its own quantization grid (gltfpack's default)
    to_head = np.linalg.inv(head_w)
    space = {"Head": to_head, "Hair": to_head, "Body": np.eye(4)}
    meshes = {"Head": ["face", "lips", "dark", "lids"], "Body": ["neck", "collar"], "Hair": ["hair"]}
    grids = {}
    for mname, pnames in meshes.items():
        pts = np.concatenate([np.concatenate(parts[pn].pos) for pn in pnames])
        pts = pts @ space[mname][:3, :3].T + space[mname][:3, 3]
        lo = pts.min(0) if quantize else np.zeros(3)
        scale = float((pts.max(0) - lo).max()) / 32767.0 if quantize else 1.0
        D = np.eye(4)
        D[:3, :3] *= scale
        D[:3, 3] = lo
        grids[mname] = (lo, scale, D)
    # skin 0 (the body): every joint, inverse bind matrices with the body's dequantization baked in;
    # skin 1 (the head): the Head joint only, its inverse bind matrix is the dequantization alone
    ibms0 = [np.linalg.inv(world[J[n]]) @ grids["Body"][2] for n in ("Hips", "Spine", "Neck", "Head")]
    doc["skins"] = [
        {"joints": [J["Hips"], J["Spine"], J["Neck"], J["Head"]], "skeleton": J["Hips"],
         "inverseBindMatrices": g.acc(np.stack([m.T.ravel() for m in ibms0]).astype(np.float32), "MAT4", 5126)},
        {"joints": [J["Head"]], "skeleton": J["Head"],
         "inverseBindMatrices": g.acc(grids["Head"][2].T.ravel()[None].astype(np.float32), "MAT4", 5126)}]
    webp, png = _images()
    doc["images"] = [{"bufferView": g.view(b"\xabKTX 20\xbb\r\n\x1a\n" + bytes(64)), "mimeType": "image/ktx2"},
                     {"bufferView": g.view(webp), "mimeType": "image/webp"},
                     {"bufferView": g.view(png), "mimeType": "image/png"}]
    doc["samplers"] = [{"magFilter": 9728, "minFilter": 9728, "wrapS": 33071, "wrapT": 33071}]
    doc["textures"] = [{"sampler": 0, "extensions": {"KHR_texture_basisu": {"source": 0},
                                                      "EXT_texture_webp": {"source": 1}}},
                       {"sampler": 0, "source": 2}]
    uv_t = {"KHR_texture_transform": {"offset": [0.0, 0.0], "scale": [0.5, 1.0]}}
    doc["materials"] = [
        {"name": "Skin", "pbrMetallicRoughness": {"baseColorTexture": {"index": 0, "extensions": uv_t},
                                                  "metallicFactor": 0}},
        {"name": "Lips", "pbrMetallicRoughness": {"baseColorFactor": [c / 255 for c in LIP] + [1], "metallicFactor": 0}},
        {"name": "Dark", "pbrMetallicRoughness": {"baseColorFactor": [0.05, 0.01, 0.01, 1], "metallicFactor": 0}},
        {"name": "SkinFlat", "pbrMetallicRoughness": {"baseColorFactor": [(c / 255) ** 2.2 for c in SKIN] + [1],
                                                      "metallicFactor": 0}},
        {"name": "Shirt", "pbrMetallicRoughness": {"baseColorFactor": [(c / 255) ** 2.2 for c in SHIRT] + [1],
                                                   "metallicFactor": 0}},
        {"name": "Hair", "alphaMode": "MASK", "alphaCutoff": 0.5, "doubleSided": True,
         "pbrMetallicRoughness": {"baseColorTexture": {"index": 1}, "metallicFactor": 0}},
    ]
    mat = {"face": 0, "lips": 1, "dark": 2, "lids": 3, "neck": 3, "collar": 4, "hair": 5}
    doc["meshes"], doc["nodes"] = [], nodes
    root_children = [1]
    for mname, pnames in meshes.items():
        lo, scale, D = grids[mname]
        prims = []
        targets = TARGETS if mname == "Head" else []
        for pn in pnames:
            pos, tri, uv, hw, deltas = parts[pn].arrays(targets)
            nrm = _normals(pos, tri)
            pos = pos @ space[mname][:3, :3].T + space[mname][:3, 3]
            nrm = nrm @ space[mname][:3, :3].T
            nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
            deltas = {k: d @ space[mname][:3, :3].T for k, d in deltas.items()}
            attrs = {}
            if quantize:
                q = np.round((pos - lo) / scale).astype(np.int16)
                attrs["POSITION"] = g.acc(q, "VEC3", 5122, minmax=True, target=34962)
                attrs["NORMAL"] = g.acc(np.round(nrm * 127).astype(np.int8), "VEC3", 5120, normalized=True,
                                        target=34962)
                attrs["TEXCOORD_0"] = g.acc(np.round(np.clip(uv, 0, 1) * 65535).astype(np.uint16), "VEC2", 5123,
                                            normalized=True, target=34962)
            else:
                attrs["POSITION"] = g.acc(pos.astype(np.float32), "VEC3", 5126, minmax=True, target=34962)
                attrs["NORMAL"] = g.acc(nrm.astype(np.float32), "VEC3", 5126, target=34962)
                attrs["TEXCOORD_0"] = g.acc(uv.astype(np.float32), "VEC2", 5126, target=34962)
            if mname == "Body":
                j = np.zeros((len(pos), 4), np.uint8)
                j[:, 0], j[:, 1] = 3, (2 if pn == "neck" else 1)   # Head, and Neck or Spine
                wq = np.zeros((len(pos), 4), np.int64)
                wq[:, 0] = np.round(hw * 255)
                wq[:, 1] = 255 - wq[:, 0]     # quantized weights still sum to one
                attrs["JOINTS_0"] = g.acc(j, "VEC4", 5121, target=34962)
                attrs["WEIGHTS_0"] = g.acc(wq.astype(np.uint8), "VEC4", 5121, normalized=True, target=34962)
            elif mname == "Head":
                attrs["JOINTS_0"] = g.acc(np.zeros((len(pos), 4), np.uint8), "VEC4", 5121, target=34962)
                w = np.zeros((len(pos), 4), np.float32)
                w[:, 0] = 1
                attrs["WEIGHTS_0"] = g.acc(w, "VEC4", 5126, target=34962)
            prim = {"attributes": attrs, "material": mat[pn],
                    "indices": g.acc(tri.astype(np.uint16).ravel(), "SCALAR", 5123, target=34963, mode="INDICES")}
            if targets:
                prim["targets"] = [{"POSITION": g.acc((deltas[k] / scale).astype(np.float32), "VEC3", 5126,
                                                      minmax=True, target=34962)} for k in targets]
            prims.append(prim)
        m = {"name": mname, "primitives": prims}
        if targets:
            m["weights"] = [0.0] * len(targets)
            m["extras"] = {"targetNames": list(targets)}
        doc["meshes"].append(m)
        node = {"name": mname, "mesh": len(doc["meshes"]) - 1}
        if mname == "Hair":   # a rigid accessory on the head bone; its dequantization is its node transform
            node.update(translation=lo.tolist(), scale=[scale] * 3)
            nodes.append(node)
            nodes[J["Head"]]["children"] = [len(nodes) - 1]
            continue
        # (a skinned mesh's own node transform is ignored by the spec: give it one that would hurt)
        node.update(skin=0 if mname == "Body" else 1, translation=[0, -3, 0])
        nodes.append(node)
        root_children.append(len(nodes) - 1)
    nodes[0]["children"] = root_children
    doc["scenes"] = [{"nodes": [0]}]
    doc["scene"] = 0
    path.write_bytes(g.glb())
    return path
