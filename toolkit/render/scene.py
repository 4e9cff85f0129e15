"""A face under lights, offscreen: load a glTF/VRM character, blend its morph targets, render frames.

`load_face_model` turns what `toolkit.gltf.read` reads (the one glTF reader)
into a render scene: every triangle primitive placed in world space with its
morph targets (dense numpy deltas), base colour and texture.  Each node that
places a mesh with targets gets one weight *slot* per target
(`FaceModel.slots`), so a character's `toolkit.gltf.drive.Performance` (rig
profiles, VRM expression binds) goes straight onto the scene.
`FaceRenderer` keeps one pyrender scene for the whole clip and, per frame,
blends only the targets with non-zero weight, recomputes normals and rewrites
the vertex buffers in place, then renders with a small per-vertex Lambert +
Blinn shader (pyrender's PBR shader is several times slower on a CPU rasteriser).

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

import glob
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolkit.files import atomic_write
from toolkit.gltf import materials, skin
from toolkit.gltf import read as gltf_read
from toolkit.gltf.scene import turning_with
from toolkit.gltf.errors import ModelError  # noqa: F401  (re-exported: the renderer's errors are the reader's)
from toolkit.resources import DEFAULT_HEAD  # noqa: F401  (what the renderer draws when given no model)



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


# -- the render scene -------------------------------------------------------------------------------
@dataclass
class MeshPart:
    """One triangle primitive in world space with its morph targets."""

    positions: np.ndarray                 # (n, 3) float32, rest pose
    indices: np.ndarray                   # (m, 3) uint32
    normals: np.ndarray | None = None     # (n, 3)
    uv: np.ndarray | None = None          # (n, 2), texture transform applied
    colors: np.ndarray | None = None      # (n, 4) linear RGBA multiplier
    targets: np.ndarray | None = None     # (t, n, 3) position deltas in world space
    target_slots: np.ndarray | None = None  # (t,) index of each target in FaceModel.target_names
    base_color: tuple = (1.0, 1.0, 1.0, 1.0)
    texture: np.ndarray | None = None     # (h, w, 3|4) uint8, sRGB
    texture_wrap: tuple = (10497, 10497)  # the texture's glTF sampler wrap modes (s, t): REPEAT, CLAMP...
    double_sided: bool = False
    blend: bool = False                   # alpha BLEND: drawn after the rest, far to near, blended
    alpha_cutoff: float = -1.0            # fragments with less alpha are dropped (MASK's cutoff; -1: opaque)
    head_weight: np.ndarray | None = None  # (n,) how much each vertex follows the head bone (None: all of it)
    name: str = ""

    @property
    def follows(self) -> str:
        """"head" (every vertex turns with the head), "still" (none does) or "neck" (some, partly)."""
        h = self.head_weight
        if h is None or len(h) == 0 or h.min() >= 1 - 1e-4:
            return "head"
        return "still" if h.max() <= 1e-4 else "neck"


@dataclass
class FaceModel:
    """A character ready to render: world-space parts, and one weight slot per morph target of
    every node that places a mesh with targets (``slots[node]`` lists that node's slots in target
    order).  ``gltf`` is the `toolkit.gltf.read.Model` it came from; ``notes`` says what was left out.
    ``head_node`` is the node head rotation turns (parts say how much of them follows it);
    ``head_pivot`` the world point it turns about when it is a bone (None: a point at the back of the
    jaw); ``face_slots`` the slots the character's rig drives (None: all), which frame the face."""

    parts: list[MeshPart]
    target_names: list[str | None]
    facing: str = "+z"                      # where the face looks: "+z" (glTF, VRM 1.0) or "-z" (VRM 0.x)
    source: str = ""
    meta: dict = field(default_factory=dict)
    gltf: gltf_read.Model | None = None
    slots: dict[int, np.ndarray] = field(default_factory=dict)
    default_weights: np.ndarray | None = None   # (slots,) the meshes' own weights
    notes: list[str] = field(default_factory=list)
    head_node: int | None = None
    head_pivot: np.ndarray | None = None
    face_slots: np.ndarray | None = None

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        pts = np.concatenate([p.positions for p in self.parts])
        return pts.min(0), pts.max(0)

    def face_box(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounding box of what the camera frames (see `focus`)."""
        return self.focus()[:2]

    def focus(self) -> tuple[np.ndarray, np.ndarray, str]:
        """(lo, hi, what): the box of the vertices the rig's morph targets move ("face"), else of the
        vertices that follow the head bone ("head"), else of the whole model ("model") -- never the
        whole body when the face or the head is known."""
        moved = []
        for p in self.parts:
            if p.targets is None or not len(p.targets):
                continue
            keep = np.ones(len(p.target_slots), bool) if self.face_slots is None else \
                np.isin(p.target_slots, self.face_slots)
            if keep.any():
                m = np.abs(p.targets[keep]).max(axis=(0, 2))
                if m.max() > 0:
                    moved.append(p.positions[m > 0.15 * m.max()])
        if moved and sum(len(m) for m in moved) >= 8:
            pts = np.concatenate(moved)
            return np.percentile(pts, 1, axis=0), np.percentile(pts, 99, axis=0), "face"
        if self.head_node is not None:
            head = [p.positions[p.head_weight > 0.5] for p in self.parts if p.head_weight is not None]
            head = np.concatenate(head) if head else np.zeros((0, 3))
            if len(head) >= 8 and len(head) < sum(len(p.positions) for p in self.parts):
                return np.percentile(head, 1, axis=0), np.percentile(head, 99, axis=0), "head"
        pts = np.concatenate([p.positions for p in self.parts])
        return np.percentile(pts, 1, axis=0), np.percentile(pts, 99, axis=0), "model"


Model = FaceModel   # the name this module used before; `toolkit.gltf.read.Model` is the parsed file


def _scene_nodes(g) -> list[int]:
    """Nodes of the file's default scene (all root nodes when it names none)."""
    if g.scenes:
        roots = list(g.scenes[g.scene if g.scene is not None and g.scene < len(g.scenes) else 0].nodes or [])
    else:
        child = {c for n in g.nodes for c in (n.children or [])}
        roots = [i for i in range(len(g.nodes)) if i not in child]
    out, stack = [], list(roots)
    while stack:
        i = stack.pop()
        if 0 <= i < len(g.nodes) and i not in out:
            out.append(i)
            stack.extend(g.nodes[i].children or [])
    return sorted(out)


_UNTEXTURED_GREY = 0.5   # brightness standing in for a texture that cannot be decoded


def _texture(gm: gltf_read.Model, img: int | None, cache: dict, notes: list[str]) -> np.ndarray | None:
    """Decoded image ``img`` (uint8, h x w x 4), else None (with a note when one was there)."""
    if img is None:
        return None
    if img not in cache:
        try:
            cache[img] = gm.image_rgba(img)
        except ModelError as e:   # a missing image file: still worth a preview, untextured
            cache[img] = None
            notes.append(f"{e}: drawn with the base colour factor x {_UNTEXTURED_GREY}")
            return None
        if cache[img] is None:
            mime = gm.gltf.images[img].mimeType or "unknown type"
            hint = " (KHR_texture_basisu: Basis Universal is not decoded)" if "ktx2" in mime else ""
            notes.append(f"image #{img} ({mime}) cannot be decoded{hint}: drawn with the base colour factor "
                         f"x {_UNTEXTURED_GREY}")
    return cache[img]


def _character(gm: gltf_read.Model) -> tuple[int | None, dict[int, list[int]]]:
    """(the head node, {node: driven target indices}) as the character's Performance has them."""
    from toolkit.animation import empty_animation
    from toolkit.gltf import drive
    from toolkit.rigs import RigError

    try:
        perf = drive.perform(empty_animation(1, fps=30), gm)
    except (ModelError, RigError):
        return drive.head_node(gm), {}
    return perf.head_node, perf.driven


def _oriented(normals: np.ndarray, pos: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """The normals, negated when they mostly disagree with the triangles' winding (an export with
    inverted normals would otherwise shade its front faces as back faces: dark)."""
    fn = np.cross(pos[tri[:, 1]] - pos[tri[:, 0]], pos[tri[:, 2]] - pos[tri[:, 0]])
    agree = sum(np.einsum("ij,ij->i", normals[tri[:, k]], fn).sum() for k in range(3))
    return -normals if agree < 0 else normals


def face_model_from_gltf(gm: gltf_read.Model) -> FaceModel:
    """The render scene of a model parsed by `toolkit.gltf.read` (see `load_face_model`)."""
    g = gm.gltf
    world = gm.world_matrices() if g.nodes else np.zeros((0, 4, 4))
    head, driven = _character(gm)
    turning = turning_with(gm, head) if head is not None else set()
    is_bone = head is not None and (any(head in (s.joints or []) for s in g.skins) or
                                    (gm.vrm is not None and gm.vrm.head_node == head))
    parts: list[MeshPart] = []
    names: list[str | None] = []
    defaults: list[float] = []
    slots: dict[int, np.ndarray] = {}
    notes: list[str] = []
    tex_cache: dict[int, np.ndarray | None] = {}
    for ni in _scene_nodes(g):
        node = g.nodes[ni]
        if node.mesh is None:
            continue
        if node.mesh >= len(gm.meshes):
            raise ModelError(f"{gm.path}: node #{ni} places mesh #{node.mesh}, which does not exist")
        mesh = gm.meshes[node.mesh]
        if mesh.n_targets:
            slots[ni] = np.arange(len(names), len(names) + mesh.n_targets)
            names.extend(mesh.target_names)
            defaults.extend(mesh.default_weights.tolist())
        for prim in mesh.primitives:
            if "POSITION" not in prim.attributes or prim.mode not in (4, 5, 6):
                continue
            tri = prim.triangles()
            if len(tri) == 0:
                continue
            if int(tri.max()) >= len(prim.vertices()):
                raise ModelError(f"{gm.path}: {mesh.label} primitive {prim.index} indexes vertex {int(tri.max())} "
                                 f"but has {len(prim.positions)} vertices (broken indices)")
            # the bind pose: skinned vertices through their joints x inverse bind matrices, others
            # through their node (gltfpack's dequantization lives in one or the other)
            xf = skin.vertex_transforms(gm, ni, prim, world)
            pos = skin.apply(xf, prim.positions.astype(np.float64))
            mirrored = skin.determinants(xf)[tri[:, 0]] < 0
            if mirrored.any():   # a mirroring transform turns the winding inside out
                tri = tri.copy()
                tri[mirrored] = tri[mirrored][:, ::-1]
            part = MeshPart(positions=pos.astype(np.float32), indices=np.ascontiguousarray(tri, np.uint32),
                            name=mesh.label)
            if prim.normals is not None:
                part.normals = _oriented(skin.apply_normals(xf, prim.normals.astype(np.float64)), pos,
                                         tri.astype(np.int64)).astype(np.float32)
            surf = materials.surface(gm, prim.material)
            uv = prim.texcoord(surf.texcoord)
            if uv is not None:
                part.uv = surf.transform_uv(uv[:, :2].astype(np.float32))
            if prim.colors is not None:
                c = prim.colors.astype(np.float32)
                part.colors = np.concatenate([c, np.ones((len(c), 1), np.float32)], 1) if c.shape[1] == 3 else c
            if prim.targets:
                d = skin.apply_linear(xf, prim.target_deltas("POSITION").astype(np.float64)).astype(np.float32)
                keep = np.abs(d).max(axis=(1, 2)) > 0
                part.targets, part.target_slots = d[keep], slots[ni][: len(prim.targets)][keep]
            if head is not None:
                part.head_weight = skin.joint_share(gm, ni, prim, turning).astype(np.float32)
            part.base_color = tuple(float(x) for x in surf.color)
            part.double_sided = surf.double_sided
            part.blend = surf.alpha_mode == "BLEND"
            part.alpha_cutoff = {"MASK": surf.alpha_cutoff, "BLEND": _BLEND_MIN_ALPHA}.get(surf.alpha_mode, -1.0)
            if surf.image is not None and part.uv is not None:
                part.texture, part.texture_wrap = _texture(gm, surf.image, tex_cache, notes), surf.wrap
                if part.texture is None:
                    # the factor alone is usually white (it tints the lost image): take it at the
                    # brightness of a typical texture, so the shading still reads
                    part.base_color = tuple(float(x) * _UNTEXTURED_GREY for x in surf.color[:3]) + \
                        (float(surf.color[3]),)
            parts.append(part)
    if not parts:
        raise ModelError(f"{gm.path}: no triangle meshes to render")
    face = [int(s) for n, idx in driven.items() if n in slots for s in slots[n][idx]]
    return FaceModel(parts=parts, target_names=names, facing=gm.facing, source=str(gm.path), gltf=gm, slots=slots,
                     default_weights=np.asarray(defaults, np.float32), notes=notes, head_node=head,
                     head_pivot=world[head][:3, 3].copy() if is_bone else None,
                     face_slots=np.asarray(face, np.int64) if face else None)


# BLEND fragments with less alpha than this are dropped, so they leave no depth behind
_BLEND_MIN_ALPHA = 1.0 / 255.0


def load_face_model(path: str | Path) -> FaceModel:
    """Read a .glb/.gltf/.vrm character with `toolkit.gltf.read` and place it in world space for rendering.

    Skinned meshes are taken in their bind pose (joints x inverse bind matrices, so quantized and
    bone-space meshes land where they belong).  Textures Pillow cannot decode (KTX2/Basis) fall
    back to the base colour factor, listed in ``notes``.  Raises `ModelError` naming the file for
    anything that cannot be rendered.

    >>> m = load_face_model(DEFAULT_HEAD)                  # doctest: +SKIP
    >>> len(m.target_names), m.facing                      # doctest: +SKIP
    (52, '+z')
    """
    return face_model_from_gltf(gltf_read.load_model(path))



# -- geometry ---------------------------------------------------------------------------------------
def corner_angles(p: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """The angle at each corner of each triangle, (3 * triangles,), grouped by corner slot (all
    first corners, then all second, then all third)."""
    p = np.asarray(p, np.float64)
    e0, e1, e2 = p[tri[:, 1]] - p[tri[:, 0]], p[tri[:, 2]] - p[tri[:, 1]], p[tri[:, 0]] - p[tri[:, 2]]
    l0, l1, l2 = (np.maximum(np.linalg.norm(e, axis=1), 1e-30) for e in (e0, e1, e2))
    cos = [-np.einsum("ij,ij->i", e0, e2) / (l0 * l2),     # at p0: between p0->p1 and p0->p2
           -np.einsum("ij,ij->i", e1, e0) / (l1 * l0),     # at p1
           -np.einsum("ij,ij->i", e2, e1) / (l2 * l1)]     # at p2
    return np.arccos(np.clip(np.concatenate(cos), -1.0, 1.0))


class NormalSolver:
    """Smooth vertex normals of a deforming mesh: unit face normals weighted by each corner's angle
    in the rest pose.  Unlike area weighting this does not change with how a quad happens to be split
    into triangles, so a mirrored mesh shades symmetrically and a vertex on a sharp fold (the lip
    line) gets the same normal in every column; taking the angles from the rest pose keeps a frame
    as cheap as area weighting.  Vertices at the same rest position share a normal (so UV seams do
    not show as creases)."""

    def __init__(self, positions: np.ndarray, indices: np.ndarray):
        _, self.weld = np.unique(np.round(positions / 1e-6).astype(np.int64), axis=0, return_inverse=True)
        self.weld = self.weld.ravel()
        self.n_unique = int(self.weld.max()) + 1
        self._set_triangles(indices.astype(np.int64), corner_angles(positions, indices.astype(np.int64)))

    def _set_triangles(self, tri: np.ndarray, angles: np.ndarray) -> None:
        self.tri = tri
        self.angles = angles.astype(np.float32)
        self.corner = self.weld[self.tri].T.ravel()   # corner -> welded vertex, grouped by corner slot

    def subset(self, keep: np.ndarray) -> "NormalSolver":
        """A solver over the triangles `keep` (bool per triangle) only, sharing the welding."""
        sub = NormalSolver.__new__(NormalSolver)
        sub.weld, sub.n_unique = self.weld, self.n_unique
        n = len(self.tri)
        sub._set_triangles(self.tri[keep], self.angles.reshape(3, n)[:, keep].ravel())
        return sub

    def normals_at(self, positions: np.ndarray, vertices: np.ndarray) -> np.ndarray:
        """Normals of `vertices` only (every triangle around them must be in this solver)."""
        p, t = positions, self.tri
        fn = np.cross(p[t[:, 1]] - p[t[:, 0]], p[t[:, 2]] - p[t[:, 0]])
        # corner weight = angle / |face normal|: the unit normal times the angle, without normalising fn
        w = self.angles.reshape(3, -1) / np.maximum(np.sqrt(np.einsum("ij,ij->i", fn, fn)), 1e-30)
        n = np.stack([np.bincount(self.corner, (w * fn[:, k]).ravel(), self.n_unique) for k in range(3)],
                     1)[self.weld[vertices]]
        ln = np.linalg.norm(n, axis=1, keepdims=True)
        return (n / np.where(ln > 0, ln, 1.0)).astype(np.float32)

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        return self.normals_at(positions, np.arange(len(self.weld)))


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
#ifdef TEXCOORD_1_LOC
#define TWO_SIDED
#endif
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
#ifdef TWO_SIDED
out vec3 diffuse_back;
out vec3 specular_back;
#endif
#ifdef TEXCOORD_0_LOC
out vec2 uv_0;
#endif
// Lighting of one side of the surface, normal n, towards the camera v.
void light(vec3 n, vec3 v, float rough, out vec3 dif, out vec3 spec) {
    dif = ambient_light * (0.75 + 0.25 * n.y);
    spec = vec3(0.0);
    float shin = clamp(2.0 / max(rough * rough * rough * rough, 1e-3) - 2.0, 4.0, 256.0);
    float ks = 0.25 * (1.0 - rough) + 0.03;
    for (int i = 0; i < n_directional_lights; i++) {
        vec3 l = -normalize(directional_lights[i].direction);
        vec3 li = directional_lights[i].color * directional_lights[i].intensity;
        float ndl = dot(n, l);
        dif += li * max((ndl + 0.15) / 1.15, 0.0);   // slightly wrapped: softer terminator
        vec3 h = normalize(l + v);
        spec += li * ks * pow(max(dot(n, h), 0.0), shin) * step(0.0, ndl);
    }
    spec += vec3(0.08, 0.09, 0.11) * pow(1.0 - max(dot(n, v), 0.0), 3.0);   // rim
}
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
    // The front faces are lit by their normal, as the model has it (never flipped per vertex: a
    // triangle whose corners flip differently shades in dark streaks); a double-sided material's
    // back faces by the opposite one, picked per fragment (TWO_SIDED: see FaceRenderer._make_primitive).
    light(n, v, rough, diffuse, specular);
#ifdef TWO_SIDED
    light(-n, v, rough, diffuse_back, specular_back);
#endif
}
"""

_FRAG = """#version 330 core
#ifdef TEXCOORD_1_LOC
#define TWO_SIDED
#endif
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
#ifdef TWO_SIDED
in vec3 diffuse_back;
in vec3 specular_back;
#endif
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
    if (base.a < material.emissive_factor.x) discard;   // the alpha cutoff (MASK; ~0 for BLEND; -1 opaque)
#ifdef TWO_SIDED
    vec3 c = gl_FrontFacing ? base.rgb * diffuse + specular : base.rgb * diffuse_back + specular_back;
#else
    vec3 c = base.rgb * diffuse + specular;
#endif
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
            atomic_write(target, text)  # another process may be reading the folder
    return str(d)


def _program_cache_class():
    from pyrender.shader_program import ShaderProgramCache

    class ProgramCache(ShaderProgramCache):
        """pyrender's cache keyed without the GL context object: OSMesa hands out a new, unequal
        pointer object for the same context on every call, so pyrender's own key never matched and
        it compiled (and leaked) every shader program on every frame.  One renderer owns one context."""

        def get_program(self, vertex_shader, fragment_shader, geometry_shader=None, defines=None):
            from pyrender.shader_program import ShaderProgram

            defines = defines or {}
            names = [os.path.basename(f) for f in (vertex_shader, fragment_shader, geometry_shader) if f]
            key = tuple(names) + tuple(sorted(defines.items()))
            prog = self._program_cache.get(key)
            if prog is None:
                files = [os.path.join(self.shader_dir, f) if f else None
                         for f in (vertex_shader, fragment_shader, geometry_shader)]
                prog = self._program_cache[key] = ShaderProgram(*files, defines=defines)
            return prog

    return ProgramCache


def _program_cache(shader_dir: str):
    return _program_cache_class()(shader_dir=shader_dir)


# -- the renderer ---------------------------------------------------------------------------------
def merge_by_material(parts: list[MeshPart]) -> list[MeshPart]:
    """Parts drawn as few primitives as possible: the per-draw cost is Python (pyrender sets ~20
    uniforms per primitive), not the rasteriser.  Untextured parts are merged whatever their
    colour, which moves into the vertex colours (the shader multiplies them); textured ones
    merge when they share the texture and colour.  Parts merge only when they are drawn alike
    (sides, alpha) and follow the head alike."""
    groups: dict[tuple, list[MeshPart]] = {}
    for p in parts:
        textured = p.texture is not None and p.uv is not None
        key = (tuple(np.round(p.base_color, 6)) if textured else None,
               (id(p.texture), p.texture_wrap) if textured else None,
               p.double_sided, p.blend, round(p.alpha_cutoff, 6), textured, p.follows)
        groups.setdefault(key, []).append(p)
    out = []
    for (_, _, double_sided, blend, cutoff, textured, follows), grp in groups.items():
        if len(grp) == 1 and (textured or grp[0].colors is None):
            out.append(grp[0])
            continue
        n = [len(p.positions) for p in grp]
        offs = np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64)

        def colors(p: MeshPart) -> np.ndarray:
            c = p.colors if p.colors is not None else np.ones((len(p.positions), 4), np.float32)
            return c if textured else c * np.asarray(p.base_color, np.float32)

        def head(p: MeshPart) -> np.ndarray:
            return p.head_weight if p.head_weight is not None else np.ones(len(p.positions), np.float32)

        slots = sorted({int(s) for p in grp if p.target_slots is not None for s in p.target_slots})
        merged = MeshPart(
            positions=np.concatenate([p.positions for p in grp]),
            indices=np.concatenate([p.indices.astype(np.int64) + o for p, o in zip(grp, offs)]).astype(np.uint32),
            normals=np.concatenate([p.normals if p.normals is not None else
                                    NormalSolver(p.positions, p.indices)(p.positions) for p in grp]),
            uv=np.concatenate([p.uv for p in grp]) if textured else None,
            colors=(np.concatenate([colors(p) for p in grp]).astype(np.float32)
                    if not textured or any(p.colors is not None for p in grp) else None),
            base_color=grp[0].base_color if textured else (1.0, 1.0, 1.0, 1.0),
            texture=grp[0].texture if textured else None, texture_wrap=grp[0].texture_wrap,
            double_sided=double_sided,
            blend=blend, alpha_cutoff=cutoff, name="+".join(p.name for p in grp),
            head_weight=(np.concatenate([head(p) for p in grp])
                         if any(p.head_weight is not None for p in grp) else None))
        if slots:
            d = np.zeros((len(slots), len(merged.positions), 3), np.float32)
            where = {s: k for k, s in enumerate(slots)}
            for p, o in zip(grp, offs):
                if p.targets is not None:
                    for k, s in enumerate(p.target_slots):
                        d[where[int(s)], o:o + len(p.positions)] = p.targets[k]
            merged.targets, merged.target_slots = d, np.asarray(slots)
        out.append(merged)
    return out


class _Deformer:
    """Per-frame geometry of one deforming primitive, in the interleaved vertex block it keeps and
    overwrites in place.

    Morph targets: only the vertices some target moves are blended, only with the targets whose
    weight is not ~0; only the normals around them are recomputed, and kept as the model's own
    normals plus the change the deformation makes (replacing authored normals by computed ones
    shades a barely moved neck seam differently from the body beside it: dark blotches).
    A part that straddles the neck (``neck``): the vertices that follow the head bone turn with it,
    each by its share (linear blend skinning with the head and the rest of the body as the two
    bones).  ``origin`` is subtracted from the positions written (a part drawn from its centre)."""

    def __init__(self, part: MeshPart, normals: np.ndarray, extra_cols: list[np.ndarray],
                 origin: np.ndarray | None = None, neck: bool = False):
        self.part = part
        self.origin = np.zeros(3, np.float32) if origin is None else np.asarray(origin, np.float32)
        self.rest = part.positions.astype(np.float32)
        self.pos = self.rest.copy()
        self.own_n = normals.astype(np.float32)
        self.nrm = self.own_n.copy()
        self.deltas = None
        self.active = self.ring = np.zeros(0, np.int64)
        if part.targets is not None and len(part.targets):
            moved = np.abs(part.targets).max(axis=(0, 2)) > 0
            self.active = np.flatnonzero(moved)
            self.deltas = np.ascontiguousarray(part.targets[:, self.active])   # (t, active, 3)
            # normals: triangles touching a moved vertex change, and so do the normals of all their corners
            solver = NormalSolver(part.positions, part.indices)
            moved_w = np.zeros(solver.n_unique, bool)
            moved_w[solver.weld[self.active]] = True
            tri_w = solver.weld[solver.tri]
            touched = moved_w[tri_w].any(1)
            ring_w = np.zeros(solver.n_unique, bool)
            ring_w[tri_w[touched].ravel()] = True
            self.ring = np.flatnonzero(ring_w[solver.weld])                      # vertices whose normal changes
            self.solver = solver.subset(ring_w[tri_w].any(1))                     # over the ring's triangles
            self.ring_rest = self.solver.normals_at(self.rest, self.ring)         # computed, at rest
        self.neck = None
        if neck and part.head_weight is not None:
            idx = np.flatnonzero(part.head_weight > 1e-4)
            self.neck = (idx, part.head_weight[idx, None].astype(np.float32))
        self.block = np.ascontiguousarray(np.hstack([self.pos - self.origin, self.nrm] + extra_cols), np.float32)
        self.last = None
        self.last_turn = None

    def update(self, w: np.ndarray | None, rot: np.ndarray | None = None, pivot=None) -> np.ndarray | None:
        """New vertex block for these target weights and this head turn (3x3 rotation about
        ``pivot``), or None when nothing changed."""
        changed = False
        if self.deltas is not None and (self.last is None or not np.array_equal(w, self.last)):
            self.last = w.copy()
            nz = np.flatnonzero(np.abs(w) > 1e-4)
            act = self.rest[self.active]
            if len(nz):
                act = act + np.tensordot(w[nz], self.deltas[nz], axes=1)
            self.pos[self.active] = act
            n = self.own_n[self.ring] + self.solver.normals_at(self.pos, self.ring) - self.ring_rest
            self.nrm[self.ring] = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
            self.block[self.active, 0:3] = act - self.origin
            self.block[self.ring, 3:6] = self.nrm[self.ring]
            changed = True
        if self.neck is not None:
            r = np.eye(3, dtype=np.float32) if rot is None else np.asarray(rot, np.float32)
            if changed or self.last_turn is None or not np.array_equal(r, self.last_turn):
                self.last_turn = r.copy()
                idx, h = self.neck
                p0 = np.asarray(pivot if pivot is not None else np.zeros(3), np.float32)
                x, n = self.pos[idx], self.nrm[idx]
                self.block[idx, 0:3] = x + h * ((x - p0) @ r.T + p0 - x) - self.origin
                nn = n + h * (n @ r.T - n)
                self.block[idx, 3:6] = nn / np.maximum(np.linalg.norm(nn, axis=1, keepdims=True), 1e-12)
                changed = True
        return self.block if changed else None


def _sorted_far_to_near(part: MeshPart, eye: np.ndarray) -> MeshPart:
    """The part with its triangles reordered farthest from ``eye`` first (blending needs it; the
    camera does not move)."""
    import dataclasses

    centres = part.positions[part.indices.astype(np.int64)].mean(1)
    order = np.argsort(-np.linalg.norm(centres - eye, axis=1), kind="stable")
    return dataclasses.replace(part, indices=np.ascontiguousarray(part.indices[order]))


def _read_colour(framebuffer: int, width: int, height: int, front: bool = False) -> np.ndarray:
    """The RGB pixels of a framebuffer (0: the default one, its front buffer), top row first."""
    from OpenGL import GL

    GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, framebuffer)
    if front:
        GL.glReadBuffer(GL.GL_FRONT)
    GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
    buf = GL.glReadPixels(0, 0, width, height, GL.GL_RGB, GL.GL_UNSIGNED_BYTE)
    return np.ascontiguousarray(np.frombuffer(buf, np.uint8).reshape(height, width, 3)[::-1])


class FaceRenderer:
    """One offscreen scene for a clip: `render(weights, head_quat)` -> (size, size, 3) uint8 RGB.

    ``weights`` has one value per slot of ``model.target_names``; ``head_quat`` (x, y, z, w) is
    the head's turn in world axes: the parts that follow the head bone turn about it (a part that
    straddles the neck, vertex by vertex as its skin weights say), the body stays; a model without
    a known head turns as a whole about its neck.  ``antialias``: 4x multisampling on the OSMesa
    (CPU) path too (EGL always has it); smoother edges for ~1.6x the raster time.  Create, use and
    delete it in one thread (the GL context belongs to it).
    """

    def __init__(self, model: Model, size: int = 512, width: int | None = None, background=(0.16, 0.17, 0.20),
                 antialias: bool = False):
        pyrender = _import_pyrender()

        self.model, self.size, self.antialias = model, int(size), bool(antialias)
        self.width = int(width or size)
        self._pyrender = pyrender
        self.scene = pyrender.Scene(ambient_light=np.array([0.34, 0.34, 0.38]), bg_color=[*background, 1.0])
        self._parts = []
        lo, hi, what = model.focus()
        self.face_lo, self.face_hi = lo, hi
        sign = 1.0 if model.facing == "+z" else -1.0
        # the head turns about its bone; a rigid model about a point at the back of the jaw, below the face's middle
        self.pivot = np.asarray(model.head_pivot, float) if model.head_pivot is not None else \
            np.array([(lo[0] + hi[0]) / 2, lo[1] + 0.05 * (hi[1] - lo[1]), (lo[2] + hi[2]) / 2])
        # camera: frame the face with room for the hair above and the chin below (the head bone's
        # vertices, hair included, with a small margin)
        h = max(hi[1] - lo[1], (hi[0] - lo[0]) * 1.1, 1e-3)
        mid = (lo[1] + hi[1]) / 2
        top, bottom = (mid + 0.58 * h, mid - 0.58 * h) if what == "head" else (hi[1] + 0.62 * h, lo[1] - 0.22 * h)
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
        self.head_node = pyrender.Node(name="head", matrix=np.eye(4))
        self.still_node = pyrender.Node(name="still", matrix=np.eye(4))
        self.scene.add_node(self.head_node)
        self.scene.add_node(self.still_node)
        for part in merge_by_material(model.parts):
            follows = part.follows if model.head_node is not None else "head"
            origin = None
            if part.blend:   # blended: far to near, within the part and (by its centre) among parts
                part, origin = _sorted_far_to_near(part, eye), part.positions.mean(0)
            prim, mesh = self._make_primitive(part, origin)
            pose = np.eye(4)
            if origin is not None:
                pose[:3, 3] = origin
            self.scene.add_node(pyrender.Node(mesh=mesh, matrix=pose),
                                parent_node=self.head_node if follows == "head" else self.still_node)
            if (part.targets is not None and len(part.targets) > 0) or follows == "neck":
                extra = [a for a in (prim.tangents, prim.texcoord_0, prim.texcoord_1, prim.color_0) if a is not None]
                self._parts.append((part.target_slots, prim, _Deformer(part, prim.normals, extra, origin,
                                                                       neck=follows == "neck")))
        # key light high on the camera's left, fill from the right, a back light for the outline
        for az, el, inten, col in ((-0.55, 0.55, 1.7, (1.0, 0.96, 0.90)), (0.75, 0.10, 0.55, (0.85, 0.90, 1.0)),
                                   (2.6, 0.6, 0.9, (1.0, 1.0, 1.0))):
            d = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el) * sign])
            self.scene.add(pyrender.DirectionalLight(color=col, intensity=inten),
                           pose=look_at(centre + d, centre))
        self.renderer = pyrender.OffscreenRenderer(self.width, self.size)
        self.renderer._renderer._program_cache = _program_cache(_shader_dir())
        if self.antialias and not self.renderer._platform.supports_framebuffers():
            self.renderer._renderer._read_main_framebuffer = self._read_msaa_colour
        self._flags = pyrender.RenderFlags.NONE

    def _make_primitive(self, part: MeshPart, origin=None):
        pr = self._pyrender
        tex = None
        if part.texture is not None:
            tex = pr.Texture(source=part.texture, source_channels="RGBA" if part.texture.shape[2] == 4 else "RGB",
                             sampler=pr.Sampler(wrapS=part.texture_wrap[0], wrapT=part.texture_wrap[1]))
        # our shader draws no emission: the emissive slot, a per-material value pyrender hands every
        # draw, carries the alpha cutoff
        mat = pr.MetallicRoughnessMaterial(baseColorFactor=np.asarray(part.base_color, np.float32),
                                           baseColorTexture=tex, metallicFactor=0.0,
                                           roughnessFactor=0.55, doubleSided=part.double_sided,
                                           emissiveFactor=np.array([part.alpha_cutoff, 0.0, 0.0]),
                                           alphaMode="BLEND" if part.blend else
                                           "MASK" if part.alpha_cutoff > 0 else "OPAQUE",
                                           alphaCutoff=max(part.alpha_cutoff, 0.0))
        normals = part.normals if part.normals is not None else NormalSolver(part.positions, part.indices)(
            part.positions)
        pos = part.positions if origin is None else part.positions - np.asarray(origin, np.float32)
        # a double-sided part carries a second UV set, unused: pyrender compiles a shader variant per
        # set of vertex attributes, and its TEXCOORD_1_LOC selects two-sided lighting (lighting both
        # sides costs every fragment two more varyings, ~20 % of a frame on a CPU rasteriser)
        uv1 = np.zeros((len(pos), 2), np.float32) if part.double_sided else None
        prim = pr.Primitive(positions=pos, normals=normals, texcoord_0=part.uv, texcoord_1=uv1,
                            color_0=part.colors, indices=part.indices, material=mat, mode=4)
        return prim, pr.Mesh(primitives=[prim])

    def set_pose(self, weights: np.ndarray, head_quat=None) -> None:
        """Blend the morph targets for these weights and turn the head."""
        from OpenGL import GL

        weights = np.asarray(weights, np.float32)
        if weights.shape != (len(self.model.target_names),):
            raise ValueError(f"{self.model.source}: {weights.shape} weights for {len(self.model.target_names)} "
                             f"morph target slots")
        r = np.eye(3)
        if head_quat is not None:
            x, y, z, w_ = [float(a) for a in head_quat]
            r = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w_), 2 * (x * z + y * w_)],
                          [2 * (x * y + z * w_), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w_)],
                          [2 * (x * z - y * w_), 2 * (y * z + x * w_), 1 - 2 * (x * x + y * y)]])
        current = False
        for slots, prim, deform in self._parts:
            block = deform.update(weights[slots] if slots is not None else None, r, self.pivot)
            if block is None:
                continue
            if prim._vaid is None:   # not on the GPU yet: pyrender uploads the arrays on first render
                prim.positions = block[:, 0:3].copy()
                prim.normals = block[:, 3:6].copy()
                continue
            if not current:
                self.renderer._platform.make_current()
                current = True
            # overwrite the vertex buffer in place (pyrender would rebuild the whole primitive)
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, prim._buffers[0])
            GL.glBufferSubData(GL.GL_ARRAY_BUFFER, 0, block.nbytes, block)
        m = np.eye(4)
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
        r._platform.make_current()
        rr = r._renderer
        rr.viewport_width, rr.viewport_height = self.width, self.size
        if self.antialias:   # into pyrender's 4x multisampled framebuffer, resolved by _read_msaa_colour
            return rr.render(self.scene, self._flags | self._pyrender.RenderFlags.OFFSCREEN)
        # OSMesa: draw into the default framebuffer and read back colour only (no depth readback)
        rr.render(self.scene, self._flags)
        return _read_colour(0, self.width, self.size, front=True)

    def _read_msaa_colour(self, scene, flags) -> np.ndarray:
        """Stands in for pyrender's framebuffer read on the OSMesa path: resolves the multisampled
        colour buffer only (pyrender also reads and linearises the depth buffer, which costs more
        than the antialiasing itself)."""
        from OpenGL import GL

        rr = self.renderer._renderer
        w, h = rr._main_fb_dims
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, rr._main_fb_ms)
        GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, rr._main_fb)
        GL.glBlitFramebuffer(0, 0, w, h, 0, 0, w, h, GL.GL_COLOR_BUFFER_BIT, GL.GL_NEAREST)
        return _read_colour(rr._main_fb, w, h)

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
