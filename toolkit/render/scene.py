"""A face under lights, offscreen: load a glTF/VRM character, blend its morph targets, render frames.

`load_face_model` reads every triangle primitive of a .glb/.gltf/.vrm into
world space with its morph targets (dense numpy deltas), base colour factor
and texture.  `FaceRenderer` keeps one pyrender scene for the whole clip and,
per frame, blends the targets with numpy, recomputes normals and rewrites
only the vertex buffers, then renders with a small Lambert + Blinn shader
(pyrender's PBR shader is several times slower on a CPU rasteriser).

OpenGL platform: ``$PYOPENGL_PLATFORM`` when set, else EGL when a GPU device
is present, else OSMesa (CPU).  It must be chosen before OpenGL is imported,
so this module sets it on import.

Example
-------
>>> model = load_face_model(DEFAULT_HEAD)                 # doctest: +SKIP
>>> r = FaceRenderer(model, size=256)                     # doctest: +SKIP
>>> rgb = r.render(np.zeros(len(model.target_names)))     # doctest: +SKIP
"""
from __future__ import annotations

import base64
import glob
import io
import json
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_HEAD = Path(__file__).resolve().parents[2] / "assets" / "head" / "head.glb"


class ModelError(ValueError):
    """A character file that cannot be rendered."""


# -- OpenGL platform ----------------------------------------------------------------------------
def gl_platform() -> str:
    """The platform PyOpenGL will use: the environment's, else egl with a GPU, else osmesa."""
    if os.environ.get("PYOPENGL_PLATFORM"):
        return os.environ["PYOPENGL_PLATFORM"]
    has_gpu = os.path.exists("/dev/nvidia0") or bool(glob.glob("/dev/dri/renderD*"))
    return "egl" if has_gpu else "osmesa"


# PyOpenGL picks its platform when first imported: settle it now, before anything imports OpenGL
os.environ.setdefault("PYOPENGL_PLATFORM", gl_platform())


def _import_pyrender():
    os.environ.setdefault("PYOPENGL_PLATFORM", gl_platform())
    import OpenGL

    OpenGL.ERROR_CHECKING = False   # a glGetError after every call costs a third of the frame time
    OpenGL.ERROR_LOGGING = False
    if not hasattr(np, "infty"):  # pyrender 0.1.45 still uses the alias numpy 2 removed
        np.infty = np.inf
    try:
        import pyrender
    except ImportError as e:
        raise ImportError("the preview renderer needs pyrender: pip install 'viseme-toolkit[render]' "
                          f"(pyrender==0.1.45, PyOpenGL==3.1.10) ({e})") from None
    return pyrender


# -- model loading ----------------------------------------------------------------------------------
@dataclass
class MeshPart:
    """One triangle primitive in world space with its morph targets."""

    positions: np.ndarray                 # (n, 3) float32, rest pose
    indices: np.ndarray                   # (m, 3) uint32
    normals: np.ndarray | None = None     # (n, 3)
    uv: np.ndarray | None = None          # (n, 2)
    colors: np.ndarray | None = None      # (n, 4) linear RGBA multiplier
    targets: np.ndarray | None = None     # (t, n, 3) position deltas in world space
    target_slots: np.ndarray | None = None  # (t,) index of each target in Model.target_names
    base_color: tuple = (1.0, 1.0, 1.0, 1.0)
    texture: np.ndarray | None = None     # (h, w, 3|4) uint8, sRGB
    double_sided: bool = False
    blend: bool = False
    name: str = ""


@dataclass
class Model:
    parts: list[MeshPart]
    target_names: list[str | None]          # one slot per morph target of every mesh, in file order
    facing: str = "+z"                      # where the face looks: "+z" (glTF, VRM 1.0) or "-z" (VRM 0.x)
    source: str = ""
    meta: dict = field(default_factory=dict)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        pts = np.concatenate([p.positions for p in self.parts])
        return pts.min(0), pts.max(0)

    def face_box(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounding box of the vertices the morph targets move (the face), else of the whole model."""
        moved = []
        for p in self.parts:
            if p.targets is not None and len(p.targets):
                m = np.abs(p.targets).max(axis=(0, 2))
                if m.max() > 0:
                    moved.append(p.positions[m > 0.15 * m.max()])
        pts = np.concatenate(moved) if moved and sum(len(m) for m in moved) >= 8 else \
            np.concatenate([p.positions for p in self.parts])
        lo, hi = np.percentile(pts, 1, axis=0), np.percentile(pts, 99, axis=0)
        return lo, hi


_CTYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_NCOMP = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_NORM = {np.int8: 127.0, np.uint8: 255.0, np.int16: 32767.0, np.uint16: 65535.0}


class _GltfReader:
    """Just enough glTF 2.0 to render: buffers (GLB, data URI, file), accessors (strided, normalized, sparse)."""

    def __init__(self, path: Path):
        self.path = path
        raw = path.read_bytes()
        self.bin = b""
        if raw[:4] == b"glTF":
            try:
                length = struct.unpack_from("<I", raw, 8)[0]
                off, js = 12, None
                while off < min(length, len(raw)):
                    clen, ctype = struct.unpack_from("<II", raw, off)
                    chunk = raw[off + 8: off + 8 + clen]
                    if ctype == 0x4E4F534A:
                        js = json.loads(chunk.decode("utf-8"))
                    elif ctype == 0x004E4942:
                        self.bin = chunk
                    off += 8 + clen
            except (struct.error, UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ModelError(f"{path}: corrupt GLB container ({e})") from None
            if js is None:
                raise ModelError(f"{path}: GLB without a JSON chunk")
            self.js = js
        else:
            try:
                self.js = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ModelError(f"{path}: neither a GLB nor a glTF JSON file ({e})") from None
        if not isinstance(self.js, dict) or "asset" not in self.js:
            raise ModelError(f"{path}: not a glTF 2.0 file (no 'asset')")
        need = set(self.js.get("extensionsRequired", [])) - {"KHR_materials_unlit", "KHR_texture_transform",
                                                             "KHR_materials_emissive_strength"}
        if need:
            raise ModelError(f"{path}: needs glTF extensions this renderer cannot read: {', '.join(sorted(need))}")
        self._buffers: dict[int, bytes] = {}

    def _uri_bytes(self, uri: str) -> bytes:
        if uri.startswith("data:"):
            return base64.b64decode(uri.split(",", 1)[1])
        f = self.path.parent / uri
        if not f.exists():
            raise ModelError(f"{self.path}: referenced file {uri!r} is missing")
        return f.read_bytes()

    def buffer(self, i: int) -> bytes:
        if i not in self._buffers:
            b = self.js["buffers"][i]
            self._buffers[i] = self._uri_bytes(b["uri"]) if "uri" in b else self.bin
        return self._buffers[i]

    def view_bytes(self, i: int) -> tuple[bytes, int, int | None]:
        v = self.js["bufferViews"][i]
        buf = self.buffer(v["buffer"])
        off = v.get("byteOffset", 0)
        return buf[off: off + v["byteLength"]], v.get("byteStride"), v["byteLength"]

    def accessor(self, i: int) -> np.ndarray:
        a = self.js["accessors"][i]
        dt = np.dtype(_CTYPES[a["componentType"]]).newbyteorder("<")
        nc, count = _NCOMP[a["type"]], a["count"]
        if "bufferView" in a:
            data, stride, _ = self.view_bytes(a["bufferView"])
            off = a.get("byteOffset", 0)
            item = dt.itemsize * nc
            stride = stride or item
            if stride == item:
                arr = np.frombuffer(data, dt, count * nc, off).reshape(count, nc)
            else:
                rows = np.lib.stride_tricks.as_strided(np.frombuffer(data, np.uint8, offset=off),
                                                       (count, item), (stride, 1))
                arr = np.ascontiguousarray(rows).view(dt).reshape(count, nc)
            arr = arr.astype(np.float32) if a.get("normalized") or dt.kind == "f" else arr.copy()
        else:
            arr = np.zeros((count, nc), np.float32 if dt.kind == "f" or a.get("normalized") else dt)
        if a.get("normalized") and dt.type in _NORM:
            arr = np.maximum(arr / _NORM[dt.type], -1.0).astype(np.float32)
        sp = a.get("sparse")
        if sp:
            n = sp["count"]
            idt = np.dtype(_CTYPES[sp["indices"]["componentType"]]).newbyteorder("<")
            idata, _, _ = self.view_bytes(sp["indices"]["bufferView"])
            idx = np.frombuffer(idata, idt, n, sp["indices"].get("byteOffset", 0)).astype(np.int64)
            vdata, _, _ = self.view_bytes(sp["values"]["bufferView"])
            vals = np.frombuffer(vdata, dt, n * nc, sp["values"].get("byteOffset", 0)).reshape(n, nc)
            if a.get("normalized") and dt.type in _NORM:
                vals = vals / _NORM[dt.type]
            arr = np.array(arr, dtype=np.float32 if arr.dtype.kind == "f" else arr.dtype)
            arr[idx] = vals
        return arr

    def image(self, i: int) -> np.ndarray | None:
        from PIL import Image

        im = self.js["images"][i]
        try:
            if "bufferView" in im:
                data = self.view_bytes(im["bufferView"])[0]
            else:
                data = self._uri_bytes(im["uri"])
            img = Image.open(io.BytesIO(data))
            img = img.convert("RGBA" if img.mode in ("RGBA", "LA", "P") else "RGB")
            return np.asarray(img)
        except Exception:  # an unreadable texture (KTX2, WebP without codec...) renders untextured
            return None


def _node_matrix(n: dict) -> np.ndarray:
    if "matrix" in n:
        return np.asarray(n["matrix"], np.float64).reshape(4, 4).T
    t = np.asarray(n.get("translation", [0, 0, 0]), np.float64)
    x, y, z, w = n.get("rotation", [0, 0, 0, 1])
    s = np.asarray(n.get("scale", [1, 1, 1]), np.float64)
    r = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                  [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                  [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    m = np.eye(4)
    m[:3, :3] = r * s
    m[:3, 3] = t
    return m


def load_face_model(path: str | Path) -> Model:
    """Read a .glb/.gltf/.vrm character: triangles, materials and morph targets, in world space.

    Skinned meshes are taken in their bind pose.  Raises `ModelError` naming
    the file for anything that cannot be rendered (not glTF, no triangles...).
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: model file not found")
    rd = _GltfReader(path)
    js = rd.js
    nodes = js.get("nodes", [])
    scene_i = js.get("scene", 0)
    roots = js["scenes"][scene_i]["nodes"] if js.get("scenes") else list(range(len(nodes)))
    parts: list[MeshPart] = []
    names: list[str | None] = []
    tex_cache: dict[int, np.ndarray | None] = {}
    stack = [(i, np.eye(4)) for i in roots]
    seen = set()
    while stack:
        ni, parent = stack.pop()
        if ni in seen or ni >= len(nodes):
            continue
        seen.add(ni)
        node = nodes[ni]
        world = parent @ _node_matrix(node)
        stack.extend((c, world) for c in node.get("children", []))
        if "mesh" not in node:
            continue
        mesh = js["meshes"][node["mesh"]]
        m = np.eye(4) if "skin" in node else world  # skinned vertices are already in bind (world) space
        lin = m[:3, :3]
        nrm_m = np.linalg.inv(lin).T if abs(np.linalg.det(lin)) > 1e-12 else lin
        n_t = max((len(p.get("targets", [])) for p in mesh["primitives"]), default=0)
        tnames = (mesh.get("extras") or {}).get("targetNames") or \
            ((mesh["primitives"][0].get("extras") or {}).get("targetNames") if mesh["primitives"] else None)
        tnames = list(tnames) if tnames and len(tnames) == n_t else [None] * n_t
        slots = np.arange(len(names), len(names) + n_t)
        names.extend(tnames)
        for prim in mesh["primitives"]:
            if prim.get("mode", 4) != 4 or "POSITION" not in prim.get("attributes", {}):
                continue
            at = prim["attributes"]
            pos = rd.accessor(at["POSITION"]).astype(np.float64)
            idx = (rd.accessor(prim["indices"]).ravel() if "indices" in prim else np.arange(len(pos)))
            idx = idx.astype(np.uint32)
            if len(idx) < 3 or idx.max(initial=0) >= len(pos):
                continue
            part = MeshPart(positions=(pos @ m[:3, :3].T + m[:3, 3]).astype(np.float32),
                            indices=idx[: len(idx) // 3 * 3].reshape(-1, 3), name=mesh.get("name", ""))
            if "NORMAL" in at:
                n = rd.accessor(at["NORMAL"]) @ nrm_m.T
                part.normals = (n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)).astype(np.float32)
            if "TEXCOORD_0" in at:
                part.uv = rd.accessor(at["TEXCOORD_0"]).astype(np.float32)
            if "COLOR_0" in at:
                c = rd.accessor(at["COLOR_0"]).astype(np.float32)
                part.colors = np.concatenate([c, np.ones((len(c), 1), np.float32)], 1) if c.shape[1] == 3 else c
            tg = prim.get("targets", [])
            if tg:
                d = np.zeros((len(tg), len(pos), 3), np.float32)
                for k, t in enumerate(tg):
                    if "POSITION" in t:
                        d[k] = rd.accessor(t["POSITION"]) @ lin.T
                keep = np.abs(d).max(axis=(1, 2)) > 0
                part.targets, part.target_slots = d[keep], slots[: len(tg)][keep]
            mat = js.get("materials", [])[prim["material"]] if "material" in prim else {}
            pbr = mat.get("pbrMetallicRoughness", {})
            part.base_color = tuple(pbr.get("baseColorFactor", [1, 1, 1, 1]))
            part.double_sided = bool(mat.get("doubleSided", False))
            part.blend = mat.get("alphaMode", "OPAQUE") in ("BLEND", "MASK")
            ti = pbr.get("baseColorTexture", {}).get("index")
            if ti is not None and part.uv is not None:
                src = js["textures"][ti].get("source")
                if src is not None:
                    if src not in tex_cache:
                        tex_cache[src] = rd.image(src)
                    part.texture = tex_cache[src]
            parts.append(part)
    if not parts:
        raise ModelError(f"{path}: no triangle meshes to render")
    facing = "-z" if "VRM" in js.get("extensions", {}) and "VRMC_vrm" not in js.get("extensions", {}) else "+z"
    return Model(parts=parts, target_names=names, facing=facing, source=str(path))


# -- geometry ---------------------------------------------------------------------------------------
class NormalSolver:
    """Smooth vertex normals of a deforming mesh; vertices at the same rest position share a normal
    (so UV seams do not show as creases)."""

    def __init__(self, positions: np.ndarray, indices: np.ndarray):
        _, self.weld = np.unique(np.round(positions / 1e-6).astype(np.int64), axis=0, return_inverse=True)
        self.weld = self.weld.ravel()
        self.n_unique = int(self.weld.max()) + 1
        self.tri = indices.astype(np.int64)
        self.corner = self.weld[self.tri].T.ravel()   # corner -> welded vertex, grouped by corner slot

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        p = positions
        fn = np.cross(p[self.tri[:, 1]] - p[self.tri[:, 0]], p[self.tri[:, 2]] - p[self.tri[:, 0]])
        fn3 = np.tile(fn, (3, 1))
        acc = np.stack([np.bincount(self.corner, fn3[:, k], self.n_unique) for k in range(3)], 1)
        n = acc[self.weld]
        ln = np.linalg.norm(n, axis=1, keepdims=True)
        return (n / np.where(ln > 0, ln, 1.0)).astype(np.float32)


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """Camera pose (camera looks along its -Z) at `eye` looking at `target`."""
    f = np.asarray(target, float) - np.asarray(eye, float)
    f /= np.linalg.norm(f)
    r = np.cross(f, up)
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = r, u, -f, eye
    return m


# -- the shader -------------------------------------------------------------------------------------
_VERT = """#version 330 core
// Lighting is done per vertex (Gouraud): on a CPU rasteriser the fragment work dominates, and
// the heads we draw have a few thousand vertices, so it looks the same at a fraction of the cost.
struct Material {
    vec3 emissive_factor;
#ifdef USE_METALLIC_MATERIAL
    vec4 base_color_factor;
    float metallic_factor;
    float roughness_factor;
#endif
#ifdef USE_GLOSSY_MATERIAL
    vec4 diffuse_factor;
    vec3 specular_factor;
    float glossiness_factor;
#endif
#ifdef HAS_BASE_COLOR_TEX
    sampler2D base_color_texture;
#endif
#ifdef HAS_DIFFUSE_TEX
    sampler2D diffuse_texture;
#endif
};
struct DirectionalLight { vec3 color; float intensity; vec3 direction; };
layout(location = 0) in vec3 position;
#ifdef NORMAL_LOC
layout(location = NORMAL_LOC) in vec3 normal;
#endif
#ifdef TEXCOORD_0_LOC
layout(location = TEXCOORD_0_LOC) in vec2 texcoord_0;
#endif
#ifdef COLOR_0_LOC
layout(location = COLOR_0_LOC) in vec4 color_0;
#endif
layout(location = INST_M_LOC) in mat4 inst_m;
uniform mat4 M;
uniform mat4 V;
uniform mat4 P;
uniform Material material;
uniform vec3 cam_pos;
uniform vec3 ambient_light;
uniform int n_directional_lights;
uniform DirectionalLight directional_lights[MAX_DIRECTIONAL_LIGHTS + 1];
out vec4 albedo;
out vec3 diffuse;
out vec3 specular;
#ifdef TEXCOORD_0_LOC
out vec2 uv_0;
#endif
void main() {
    vec4 world = M * inst_m * vec4(position, 1.0);
    gl_Position = P * V * world;
#ifdef USE_METALLIC_MATERIAL
    albedo = material.base_color_factor;
    float rough = material.roughness_factor;
#else
    albedo = vec4(1.0);
    float rough = 0.6;
#endif
#ifdef USE_GLOSSY_MATERIAL
    albedo = material.diffuse_factor;
    rough = 1.0 - material.glossiness_factor;
#endif
#ifdef COLOR_0_LOC
    albedo *= color_0;
#endif
#ifdef TEXCOORD_0_LOC
    uv_0 = texcoord_0;
#endif
    vec3 v = normalize(cam_pos - world.xyz);
#ifdef NORMAL_LOC
    vec3 n = normalize(mat3(M * inst_m) * normal);
#else
    vec3 n = v;
#endif
    if (dot(n, v) < 0.0) n = -n;
    diffuse = ambient_light * (0.75 + 0.25 * n.y);
    specular = vec3(0.0);
    float shin = clamp(2.0 / max(rough * rough * rough * rough, 1e-3) - 2.0, 4.0, 256.0);
    float ks = 0.25 * (1.0 - rough) + 0.03;
    for (int i = 0; i < n_directional_lights; i++) {
        vec3 l = -normalize(directional_lights[i].direction);
        vec3 li = directional_lights[i].color * directional_lights[i].intensity;
        float ndl = dot(n, l);
        diffuse += li * max((ndl + 0.15) / 1.15, 0.0);   // slightly wrapped: softer terminator
        vec3 h = normalize(l + v);
        specular += li * ks * pow(max(dot(n, h), 0.0), shin) * step(0.0, ndl);
    }
    specular += vec3(0.08, 0.09, 0.11) * pow(1.0 - max(dot(n, v), 0.0), 3.0);   // rim
}
"""

_FRAG = """#version 330 core
struct Material {
    vec3 emissive_factor;
#ifdef USE_METALLIC_MATERIAL
    vec4 base_color_factor;
    float metallic_factor;
    float roughness_factor;
#endif
#ifdef USE_GLOSSY_MATERIAL
    vec4 diffuse_factor;
    vec3 specular_factor;
    float glossiness_factor;
#endif
#ifdef HAS_BASE_COLOR_TEX
    sampler2D base_color_texture;
#endif
#ifdef HAS_DIFFUSE_TEX
    sampler2D diffuse_texture;
#endif
};
uniform Material material;
in vec4 albedo;
in vec3 diffuse;
in vec3 specular;
#ifdef TEXCOORD_0_LOC
in vec2 uv_0;
#endif
out vec4 frag_color;
void main() {
    vec4 base = albedo;
#ifdef HAS_BASE_COLOR_TEX
    vec4 t = texture(material.base_color_texture, uv_0);
    base *= vec4(t.rgb * t.rgb, t.a);    // sRGB to linear, gamma 2
#endif
#ifdef HAS_DIFFUSE_TEX
    vec4 t2 = texture(material.diffuse_texture, uv_0);
    base *= vec4(t2.rgb * t2.rgb, t2.a);
#endif
    if (base.a < 0.05) discard;
    vec3 c = base.rgb * diffuse + specular;
    c = c / (1.0 + 0.15 * c);                // gentle highlight roll-off
    frag_color = vec4(sqrt(clamp(c, 0.0, 1.0)), base.a);   // linear to display, gamma 2
}
"""


def _shader_dir() -> str:
    """pyrender loads shaders from a folder: its own, with mesh.frag replaced by ours."""
    pyrender = _import_pyrender()
    src = Path(pyrender.__file__).parent / "shaders"
    d = Path(tempfile.gettempdir()) / f"viseme-toolkit-shaders-{os.getuid() if hasattr(os, 'getuid') else 0}"
    d.mkdir(exist_ok=True)
    for f in src.iterdir():
        target = d / f.name
        text = {"mesh.frag": _FRAG, "mesh.vert": _VERT}.get(f.name) or f.read_text()
        if not target.exists() or target.read_text() != text:
            tmp = d / (f.name + f".{os.getpid()}.tmp")
            tmp.write_text(text)
            os.replace(tmp, target)
    return str(d)


# -- the renderer ---------------------------------------------------------------------------------
def merge_by_material(parts: list[MeshPart]) -> list[MeshPart]:
    """Parts sharing a material drawn as one primitive (fewer draw calls: the per-call cost is Python)."""
    groups: dict[tuple, list[MeshPart]] = {}
    for p in parts:
        key = (tuple(np.round(p.base_color, 6)), id(p.texture) if p.texture is not None else None,
               p.double_sided, p.blend, p.uv is not None)
        groups.setdefault(key, []).append(p)
    out = []
    for grp in groups.values():
        if len(grp) == 1:
            out.append(grp[0])
            continue
        n = [len(p.positions) for p in grp]
        offs = np.concatenate([[0], np.cumsum(n)[:-1]])
        slots = sorted({int(s) for p in grp if p.target_slots is not None for s in p.target_slots})
        merged = MeshPart(
            positions=np.concatenate([p.positions for p in grp]),
            indices=np.concatenate([p.indices + o for p, o in zip(grp, offs)]).astype(np.uint32),
            normals=np.concatenate([p.normals if p.normals is not None else
                                    NormalSolver(p.positions, p.indices)(p.positions) for p in grp]),
            uv=np.concatenate([p.uv for p in grp]) if grp[0].uv is not None else None,
            colors=(np.concatenate([p.colors if p.colors is not None else np.ones((len(p.positions), 4), np.float32)
                                    for p in grp]) if any(p.colors is not None for p in grp) else None),
            base_color=grp[0].base_color, texture=grp[0].texture, double_sided=grp[0].double_sided,
            blend=grp[0].blend, name="+".join(p.name for p in grp))
        if slots:
            d = np.zeros((len(slots), len(merged.positions), 3), np.float32)
            for p, o in zip(grp, offs):
                if p.targets is not None:
                    for k, s in enumerate(p.target_slots):
                        d[slots.index(int(s)), o:o + len(p.positions)] = p.targets[k]
            merged.targets, merged.target_slots = d, np.asarray(slots)
        out.append(merged)
    return out


class FaceRenderer:
    """One offscreen scene for a clip: `render(weights, head_quat)` -> (size, size, 3) uint8 RGB.

    ``weights`` has one value per slot of ``model.target_names``; ``head_quat``
    (x, y, z, w) rotates the model about its neck.  Create, use and delete it in
    one thread (the GL context belongs to it).
    """

    def __init__(self, model: Model, size: int = 512, width: int | None = None, background=(0.16, 0.17, 0.20)):
        pyrender = _import_pyrender()
        from pyrender.shader_program import ShaderProgramCache

        self.model, self.size = model, int(size)
        self.width = int(width or size)
        self._pyrender = pyrender
        self.scene = pyrender.Scene(ambient_light=np.array([0.34, 0.34, 0.38]), bg_color=[*background, 1.0])
        self._parts = []
        lo, hi = model.face_box()
        self.face_lo, self.face_hi = lo, hi
        sign = 1.0 if model.facing == "+z" else -1.0
        # the head turns about a point at the back of the jaw, below the face's middle
        self.pivot = np.array([(lo[0] + hi[0]) / 2, lo[1] + 0.05 * (hi[1] - lo[1]), (lo[2] + hi[2]) / 2])
        self.head_node = pyrender.Node(name="head", matrix=np.eye(4))
        self.scene.add_node(self.head_node)
        for part in merge_by_material(model.parts):
            prim, mesh = self._make_primitive(part)
            self.scene.add(mesh, parent_node=self.head_node)
            dyn = part.targets is not None and len(part.targets) > 0
            self._parts.append({"part": part, "prim": prim, "dynamic": dyn,
                                "normals": NormalSolver(part.positions, part.indices) if dyn else None,
                                "last": None})
        # camera: frame the face with room for the hair above and the chin below
        h = max(hi[1] - lo[1], (hi[0] - lo[0]) * 1.1, 1e-3)
        top, bottom = hi[1] + 0.62 * h, lo[1] - 0.22 * h
        centre = np.array([(lo[0] + hi[0]) / 2, (top + bottom) / 2, (lo[2] + hi[2]) / 2])
        yfov = np.radians(24.0)
        dist = 0.5 * (top - bottom) / np.tan(yfov / 2)
        depth_front = hi[2] if sign > 0 else lo[2]
        eye = np.array([centre[0], centre[1] + 0.03 * h, depth_front + sign * dist])
        self.camera = pyrender.PerspectiveCamera(yfov=yfov, aspectRatio=self.width / self.size,
                                                 znear=max(dist * 0.05, 1e-3), zfar=dist * 20)
        cam_pose = look_at(eye, centre)
        self.cam_pose, self.yfov = cam_pose, yfov
        self.scene.add(self.camera, pose=cam_pose)
        # key light high on the camera's left, fill from the right, a back light for the outline
        for az, el, inten, col in ((-0.55, 0.55, 1.7, (1.0, 0.96, 0.90)), (0.75, 0.10, 0.55, (0.85, 0.90, 1.0)),
                                   (2.6, 0.6, 0.9, (1.0, 1.0, 1.0))):
            d = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el) * sign])
            self.scene.add(pyrender.DirectionalLight(color=col, intensity=inten),
                           pose=look_at(centre + d, centre))
        self.renderer = pyrender.OffscreenRenderer(self.width, self.size)
        self.renderer._renderer._program_cache = ShaderProgramCache(shader_dir=_shader_dir())
        self._flags = pyrender.RenderFlags.NONE

    def _make_primitive(self, part: MeshPart):
        pr = self._pyrender
        tex = None
        if part.texture is not None:
            tex = pr.Texture(source=part.texture, source_channels="RGBA" if part.texture.shape[2] == 4 else "RGB")
        mat = pr.MetallicRoughnessMaterial(baseColorFactor=np.asarray(part.base_color, np.float32),
                                           baseColorTexture=tex, metallicFactor=0.0,
                                           roughnessFactor=0.55, doubleSided=part.double_sided,
                                           alphaMode="BLEND" if part.blend else "OPAQUE")
        normals = part.normals if part.normals is not None else NormalSolver(part.positions, part.indices)(
            part.positions)
        prim = pr.Primitive(positions=part.positions, normals=normals, texcoord_0=part.uv,
                            color_0=part.colors, indices=part.indices, material=mat, mode=4)
        return prim, pr.Mesh(primitives=[prim])

    def _vertex_block(self, prim) -> np.ndarray:
        cols = [prim.positions, prim.normals]
        for a in (prim.tangents, prim.texcoord_0, prim.texcoord_1, prim.color_0):
            if a is not None:
                cols.append(a)
        return np.ascontiguousarray(np.hstack(cols).astype(np.float32))

    def set_pose(self, weights: np.ndarray, head_quat=None) -> None:
        """Blend the morph targets for these weights and turn the head."""
        from OpenGL import GL

        weights = np.asarray(weights, np.float32)
        current = False
        for st in self._parts:
            if not st["dynamic"]:
                continue
            part = st["part"]
            w = weights[part.target_slots]
            if st["last"] is not None and np.array_equal(w, st["last"]):
                continue
            st["last"] = w.copy()
            nz = np.flatnonzero(np.abs(w) > 1e-4)
            pos = part.positions + np.tensordot(w[nz], part.targets[nz], axes=1) if len(nz) else part.positions
            prim = st["prim"]
            prim.positions = pos.astype(np.float32)
            prim.normals = st["normals"](pos)
            if prim._vaid is not None:  # already on the GPU: overwrite its vertex buffer in place
                if not current:
                    self.renderer._platform.make_current()
                    current = True
                GL.glBindBuffer(GL.GL_ARRAY_BUFFER, prim._buffers[0])
                data = self._vertex_block(prim)
                GL.glBufferSubData(GL.GL_ARRAY_BUFFER, 0, data.nbytes, data)
        m = np.eye(4)
        if head_quat is not None:
            x, y, z, w_ = [float(a) for a in head_quat]
            r = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w_), 2 * (x * z + y * w_)],
                          [2 * (x * y + z * w_), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w_)],
                          [2 * (x * z - y * w_), 2 * (y * z + x * w_), 1 - 2 * (x * x + y * y)]])
            m[:3, :3] = r
            m[:3, 3] = self.pivot - r @ self.pivot
        self.scene.set_pose(self.head_node, m)

    def render(self, weights=None, head_quat=None) -> np.ndarray:
        """One frame, (size, width, 3) uint8 RGB, C-contiguous."""
        if weights is not None:
            self.set_pose(weights, head_quat)
        r = self.renderer
        if r._platform.supports_framebuffers():   # EGL: pyrender's own path (multisampled framebuffer)
            color, _ = r.render(self.scene, flags=self._flags)
            return np.ascontiguousarray(color[..., :3])
        # OSMesa: draw into the default framebuffer and read back colour only (no depth readback)
        from OpenGL import GL

        r._platform.make_current()
        rr = r._renderer
        rr.viewport_width, rr.viewport_height = self.width, self.size
        rr.render(self.scene, self._flags)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, 0)
        GL.glReadBuffer(GL.GL_FRONT)
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
        buf = GL.glReadPixels(0, 0, self.width, self.size, GL.GL_RGB, GL.GL_UNSIGNED_BYTE)
        img = np.frombuffer(buf, np.uint8).reshape(self.size, self.width, 3)
        return np.ascontiguousarray(img[::-1])

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixel (column, row) of world points in the rest pose (for tests and overlays)."""
        p = np.atleast_2d(np.asarray(points, float))
        cam = (p - self.cam_pose[:3, 3]) @ self.cam_pose[:3, :3]     # world -> camera axes
        f = 1.0 / np.tan(self.yfov / 2)
        x_ndc = f * cam[:, 0] / (-cam[:, 2]) * self.size / self.width
        y_ndc = f * cam[:, 1] / (-cam[:, 2])
        return np.stack([(x_ndc + 1) / 2 * self.width, (1 - y_ndc) / 2 * self.size], 1)

    def close(self) -> None:
        if self.renderer is not None:
            self.renderer.delete()
            self.renderer = None
