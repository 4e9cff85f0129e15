"""Reading glTF 2.0 models (.gltf, .glb, .vrm): the one place that parses a user's character.

The writer (`toolkit.export.gltf`), the renderer and the Blender helper all read
models through this module.  It keeps pygltflib's document untouched (so a
writer can hand the model back unchanged) and decodes geometry on demand:
binary (GLB) and embedded (data URI) and external buffers, sparse accessors,
normalized/quantized attributes (KHR_mesh_quantization) and
EXT_meshopt_compression (through the ``meshopt`` package).  Any other
*required* extension that changes how buffers are stored (e.g. Draco) is
refused with a message naming it when geometry is read.

API::

    load_model(path) -> Model                 parse a .gltf/.glb/.vrm (ModelError on bad input)
    load_model_bytes(data, name) -> Model     the same from GLB bytes in memory
    check_model(path, profile=None) -> Model  load, read every buffer and check an animation can drive
                                              the mouth: what the CLI calls before any work
    inspect_model(path, profile=None) -> str  every morph target of every mesh/primitive, the matching
                                              rig profile (or how ``profile`` maps), channel -> target
                                              mapping, what is missing, what an animation would drive
    model_morph_weights(anim, model, profile=None) -> MorphDrive
                                              per-mesh weights (frames x targets) for any model, VRM
                                              expression binds resolved; what renderers should call

    Model.meshes[i]          MeshInfo: name, target_names (None = unnamed), default_weights, primitives, nodes
    MeshInfo.primitives[j]   Primitive: positions (n,3) float32, normals, texcoord(0), indices/triangles()
                             (uint32), target_deltas("POSITION"|"NORMAL") (targets, n, 3), material
    Model.accessor(i)        any accessor as a float/int numpy array (sparse, quantization, meshopt decoded)
    Model.world_matrices()   (nodes, 4, 4) rest world transforms;  Model.mesh_instances(): (node, mesh, 4x4)
    Model.base_color(mat)    (rgba factor, image index or None, texcoord set)
    Model.image_bytes(i)     (bytes, mime type);  Model.base_color_image(mat) -> uint8 (h, w, 4) or None
    Model.vrm                VrmInfo or None: version, expressions {name: [(node, target, weight)]}, broken
                             binds {name: [what is wrong]}, head node
    Model.head_node          head bone (VRM humanoid or a head-bone name) or, without a skeleton, the head-named
                             node or the face's node; None if unknown.  find_head_node(face_nodes) for given faces
    Model.read_buffers()     read every buffer now (ModelError for a missing/short .bin);  external_files()
    Model.facing             "+z" (glTF, VRM 1.0) or "-z" (VRM 0.x)

Example
-------
>>> m = load_model("../shared/data/models/facecap/facecap.glb")        # doctest: +SKIP
>>> m.meshes[2].target_names[:2], m.meshes[2].primitives[0].positions.shape   # doctest: +SKIP
(['browInnerUp', 'browDown_L'], (530, 3))
"""
from __future__ import annotations

import base64
import re
import struct
import urllib.parse
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pygltflib

from toolkit import rigs
from toolkit.animation import Animation, empty_animation

_COMPONENT = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_NCOMP = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
# required extensions whose data this reader understands (the rest only change materials or
# are kept verbatim by the writer; those that change buffer storage are refused when read)
_GEOMETRY_EXTENSIONS_READ = {"KHR_mesh_quantization", "EXT_meshopt_compression"}
_GEOMETRY_EXTENSIONS_REFUSED = {"KHR_draco_mesh_compression", "EXT_mesh_gpu_instancing_compressed"}
# head bone names, normalized with rigs.normalize_name: "head" (Mixamo, VRoid, UE, Rigify), or ending in
# "head" (Bip001 Head, CC_Base_Head, Character1_Head, ORG-head, J_Bip_C_Head) or head plus a centre or
# joint tag (Head_M, headJnt, head_bone, Head01); not HeadTop_End / head_end / HeadNub, not forehead
_HEAD_NAME = re.compile(r"head(?:m|x|jnt|joint|bone|0?1)?$")


class ModelError(ValueError):
    """A model that cannot be read or used; the message names the file and the problem."""


# -- data classes ----------------------------------------------------------------
@dataclass
class Primitive:
    """One glTF primitive; geometry arrays are decoded on first use."""

    model: "Model" = field(repr=False)
    mesh: int
    index: int
    attributes: dict[str, int]
    indices_accessor: int | None
    mode: int
    material: int | None
    targets: list[dict[str, int]]

    def _attr(self, name: str) -> np.ndarray | None:
        i = self.attributes.get(name)
        return None if i is None else self.model.accessor(i).astype(np.float32)

    @cached_property
    def positions(self) -> np.ndarray:
        return self._attr("POSITION")

    @cached_property
    def normals(self) -> np.ndarray | None:
        return self._attr("NORMAL")

    def texcoord(self, n: int = 0) -> np.ndarray | None:
        return self._attr(f"TEXCOORD_{n}")

    @cached_property
    def colors(self) -> np.ndarray | None:
        return self._attr("COLOR_0")

    @cached_property
    def indices(self) -> np.ndarray:
        """Vertex indices as stored (uint32); 0..n-1 for a non-indexed primitive."""
        if self.indices_accessor is None:
            return np.arange(len(self.positions), dtype=np.uint32)
        return self.model.accessor(self.indices_accessor).astype(np.uint32).reshape(-1)

    def triangles(self) -> np.ndarray:
        """(t, 3) uint32 triangles for TRIANGLES/STRIP/FAN primitives; empty for points and lines."""
        idx = self.indices
        if self.mode == 4:
            return idx[: len(idx) // 3 * 3].reshape(-1, 3)
        if self.mode == 5:
            tri = [(idx[i], idx[i + 1], idx[i + 2]) if i % 2 == 0 else (idx[i + 1], idx[i], idx[i + 2])
                   for i in range(len(idx) - 2)]
            return np.asarray(tri, np.uint32).reshape(-1, 3)
        if self.mode == 6:
            return np.asarray([(idx[0], idx[i], idx[i + 1]) for i in range(1, len(idx) - 1)], np.uint32).reshape(-1, 3)
        return np.zeros((0, 3), np.uint32)

    def target_deltas(self, attribute: str = "POSITION") -> np.ndarray:
        """(targets, vertices, 3) float32 displacements; zeros where a target lacks the attribute."""
        n = len(self.positions)
        out = np.zeros((len(self.targets), n, 3), np.float32)
        for t, tgt in enumerate(self.targets):
            if attribute in tgt:
                out[t] = self.model.accessor(tgt[attribute]).astype(np.float32).reshape(n, 3)
        return out


@dataclass
class MeshInfo:
    index: int
    name: str | None
    primitives: list[Primitive]
    target_names: list[str | None]
    default_weights: np.ndarray
    nodes: list[int]

    @property
    def n_targets(self) -> int:
        return len(self.target_names)

    @property
    def label(self) -> str:
        return self.name or f"mesh #{self.index}"


@dataclass
class VrmInfo:
    """VRM expressions resolved to morph targets: ``expressions[name] = [(node, target, weight)]``
    with weight in glTF morph units (VRM 0.x binds name a mesh: expanded to every node placing it,
    and their 0-100 weights divided by 100).  Binds to a node, mesh or target that does not exist
    are not in ``expressions`` but in ``broken``."""

    version: str  # "0.x" or "1.0"
    expressions: dict[str, list[tuple[int, int, float]]]
    head_node: int | None
    other_binds: dict[str, str] = field(default_factory=dict)  # expression -> "material/texture binds only"
    broken: dict[str, list[str]] = field(default_factory=dict)  # expression -> what is wrong with its binds

    @property
    def bound(self) -> list[str]:
        """Expressions with morph target binds, broken ones included (driving those is an error)."""
        return [k for k, v in self.expressions.items() if v or k in self.broken]

    @property
    def kind(self) -> str:
        return "vrm0" if self.version == "0.x" else "vrm1"


# -- the model ------------------------------------------------------------------
class Model:
    """A parsed glTF document plus lazily decoded buffers (see the module docstring)."""

    def __init__(self, gltf: pygltflib.GLTF2, source: str, base_dir: Path | None, glb_bin: bytes | None,
                 is_glb: bool, doc: dict | None = None):
        self.gltf = gltf
        self.doc = doc if doc is not None else gltf.to_dict()  # the JSON as read (custom attributes kept)
        self.path = source
        self.base_dir = base_dir
        self.is_glb = is_glb
        self._glb_bin = glb_bin
        self._buffers: dict[int, bytes | None] = {}
        self._views: dict[int, bytes] = {}
        self.extensions_required = list(gltf.extensionsRequired or [])
        self.extensions_used = list(gltf.extensionsUsed or [])
        self.meshes = self._read_meshes()
        self.vrm = self._read_vrm()

    def __repr__(self) -> str:
        return f"Model({self.path!r}, meshes={len(self.meshes)}, vrm={self.vrm.version if self.vrm else None})"

    # -- buffers ------------------------------------------------------------
    def buffer_bytes(self, i: int) -> bytes | None:
        """Bytes of buffer ``i``; None for a buffer without data (a meshopt fallback buffer)."""
        if i in self._buffers:
            return self._buffers[i]
        try:
            buf = self.gltf.buffers[i]
        except IndexError:
            raise ModelError(f"{self.path}: buffer #{i} does not exist") from None
        data: bytes | None
        if buf.uri is None:
            if i == 0 and self.is_glb:
                data = self._glb_bin
                if data is None:
                    raise ModelError(f"{self.path}: buffer #0 refers to the GLB BIN chunk, which is missing")
            elif (buf.extensions or {}).get("EXT_meshopt_compression", {}).get("fallback"):
                data = None
            else:
                raise ModelError(f"{self.path}: buffer #{i} has no uri and no data")
        else:
            data = self._read_uri(buf.uri, f"buffer #{i}")
        if data is not None and len(data) < buf.byteLength:
            raise ModelError(f"{self.path}: buffer #{i} is broken: {len(data)} bytes, the file declares "
                             f"{buf.byteLength}")
        self._buffers[i] = data
        return data

    def _read_uri(self, uri: str, what: str) -> bytes:
        if uri.startswith("data:"):
            try:
                head, payload = uri.split(",", 1)
                return base64.b64decode(payload) if head.endswith(";base64") else urllib.parse.unquote_to_bytes(payload)
            except (ValueError, base64.binascii.Error) as e:
                raise ModelError(f"{self.path}: {what} has a broken data URI ({e})") from None
        if self.base_dir is None:
            raise ModelError(f"{self.path}: {what} refers to external file {uri!r} but the model has no folder")
        p = self.base_dir / urllib.parse.unquote(uri)
        try:
            return p.read_bytes()
        except OSError as e:
            raise ModelError(f"{self.path}: {what} refers to {uri!r}, which cannot be read ({e.strerror})") from None

    def external_files(self) -> list[Path]:
        """Files outside the model file that it refers to (buffers, images)."""
        out = []
        for obj in list(self.gltf.buffers) + list(self.gltf.images):
            if obj.uri and not obj.uri.startswith("data:") and self.base_dir is not None:
                out.append((self.base_dir / urllib.parse.unquote(obj.uri)).resolve())
        return out

    def read_buffers(self) -> None:
        """Read every buffer now, so a missing or short .bin is a ModelError before any work."""
        for i in range(len(self.gltf.buffers)):
            self.buffer_bytes(i)

    def unreadable_images(self) -> list[str]:
        """What is wrong with each image that cannot be read (writers keep those as references)."""
        out = []
        for i in range(len(self.gltf.images)):
            try:
                self.image_bytes(i)
            except ModelError as e:
                out.append(str(e))
        return out

    def view_bytes(self, i: int) -> bytes:
        """Plain bytes of bufferView ``i`` (EXT_meshopt_compression decoded)."""
        if i in self._views:
            return self._views[i]
        try:
            bv = self.gltf.bufferViews[i]
        except IndexError:
            raise ModelError(f"{self.path}: bufferView #{i} does not exist") from None
        ext = (bv.extensions or {}).get("EXT_meshopt_compression")
        if ext:
            data = self._decode_meshopt(i, ext)
        else:
            buf = self.buffer_bytes(bv.buffer)
            if buf is None:
                raise ModelError(f"{self.path}: bufferView #{i} lies in a fallback buffer without data")
            start = bv.byteOffset or 0
            data = buf[start: start + bv.byteLength]
            if len(data) < bv.byteLength:
                raise ModelError(f"{self.path}: bufferView #{i} runs past the end of buffer #{bv.buffer} "
                                 f"(broken buffer)")
        self._views[i] = data
        return data

    def _decode_meshopt(self, i: int, ext: dict) -> bytes:
        try:
            import meshopt
        except ImportError:
            raise ModelError(f"{self.path}: needs extension EXT_meshopt_compression, and the 'meshopt' package that "
                             f"decodes it is not installed (pip install meshopt)") from None
        src = self.buffer_bytes(ext["buffer"])
        if src is None:
            raise ModelError(f"{self.path}: EXT_meshopt_compression data of bufferView #{i} is in a buffer without data")
        off, length = ext.get("byteOffset", 0), ext["byteLength"]
        raw = src[off: off + length]
        filt = ext.get("filter", "NONE")
        try:
            out = meshopt.decode_gltf_buffer(raw, ext["count"], ext["byteStride"], ext["mode"],
                                             None if filt == "NONE" else filt)
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"{self.path}: bufferView #{i}: EXT_meshopt_compression data is broken ({e})") from None
        return np.ascontiguousarray(out).tobytes()

    def _check_geometry_extensions(self) -> None:
        bad = [e for e in self.extensions_required if e in _GEOMETRY_EXTENSIONS_REFUSED]
        if bad:
            raise ModelError(f"{self.path}: requires extension {', '.join(bad)}, which this reader does not support "
                             f"(supported: {', '.join(sorted(_GEOMETRY_EXTENSIONS_READ))}); re-export without it")

    def accessor(self, i: int) -> np.ndarray:
        """Accessor ``i`` as an array (count,) or (count, k); normalized integers become floats."""
        self._check_geometry_extensions()
        try:
            acc = self.gltf.accessors[i]
        except IndexError:
            raise ModelError(f"{self.path}: accessor #{i} does not exist") from None
        dtype = np.dtype(_COMPONENT[acc.componentType]).newbyteorder("<")
        k = _NCOMP[acc.type]
        if acc.bufferView is not None:
            bv = self.gltf.bufferViews[acc.bufferView]
            data = self.view_bytes(acc.bufferView)
            elem = dtype.itemsize * k
            stride = bv.byteStride or elem
            start = acc.byteOffset or 0
            need = start + stride * (acc.count - 1) + elem if acc.count else 0
            if need > len(data):
                raise ModelError(f"{self.path}: accessor #{i} needs {need} bytes, bufferView #{acc.bufferView} has "
                                 f"{len(data)} (broken buffer)")
            raw = np.frombuffer(data, np.uint8, count=max(0, need - start), offset=start) if acc.count else \
                np.zeros(0, np.uint8)
            if stride == elem:
                arr = raw.view(dtype).reshape(acc.count, k).copy()
            else:
                rows = np.lib.stride_tricks.as_strided(raw, (acc.count, elem), (stride, 1))
                arr = np.ascontiguousarray(rows).view(dtype).reshape(acc.count, k).copy()
        else:
            arr = np.zeros((acc.count, k), dtype)
        if acc.sparse is not None:
            sp = acc.sparse
            idt = np.dtype(_COMPONENT[sp.indices.componentType]).newbyteorder("<")
            idx = np.frombuffer(self.view_bytes(sp.indices.bufferView), idt, count=sp.count,
                                offset=sp.indices.byteOffset or 0)
            vals = np.frombuffer(self.view_bytes(sp.values.bufferView), dtype, count=sp.count * k,
                                 offset=sp.values.byteOffset or 0).reshape(sp.count, k)
            if idx.size and int(idx.max()) >= acc.count:
                raise ModelError(f"{self.path}: accessor #{i}: sparse index {int(idx.max())} >= count {acc.count}")
            arr = arr.copy()
            arr[idx.astype(np.int64)] = vals
        if acc.normalized and dtype.kind in "iu":
            arr = _dequantize(arr)
        return arr[:, 0] if k == 1 else arr

    # -- structure --------------------------------------------------------------
    def _read_meshes(self) -> list[MeshInfo]:
        g = self.gltf
        users: dict[int, list[int]] = {}
        for n, node in enumerate(g.nodes):
            if node.mesh is not None:
                users.setdefault(node.mesh, []).append(n)
        out = []
        for mi, mesh in enumerate(g.meshes):
            prims = []
            n_t = None
            raw_prims = (self.doc.get("meshes") or [])[mi].get("primitives") or []
            for pi, p in enumerate(mesh.primitives):
                raw = raw_prims[pi] if pi < len(raw_prims) else {}
                attrs = {k: int(v) for k, v in (raw.get("attributes") or {}).items() if v is not None}
                targets = [{k: int(v) for k, v in t.items() if v is not None} for t in raw.get("targets") or []]
                if n_t is not None and len(targets) != n_t:
                    raise ModelError(f"{self.path}: mesh {mesh.name or mi}: primitives have different numbers of "
                                     f"morph targets ({n_t} and {len(targets)})")
                n_t = len(targets)
                prims.append(Primitive(self, mi, pi, attrs, p.indices, 4 if p.mode is None else p.mode,
                                       p.material, targets))
            n_t = n_t or 0
            names = _target_names(mesh, n_t)
            w = np.zeros(n_t, np.float32)
            if mesh.weights and len(mesh.weights) == n_t:
                w[:] = mesh.weights
            out.append(MeshInfo(mi, mesh.name, prims, names, w, users.get(mi, [])))
        return out

    def _read_vrm(self) -> VrmInfo | None:
        """VRM 1.0 (VRMC_vrm) or 0.x (VRM) expressions with their binds checked; None for plain glTF."""
        ext = self.gltf.extensions or {}
        if "VRMC_vrm" in ext:
            v = ext["VRMC_vrm"] or {}
            info = VrmInfo("1.0", {}, ((v.get("humanoid") or {}).get("humanBones") or {}).get("head", {}).get("node"))
            groups = (v.get("expressions") or {})
            for group in ("preset", "custom"):
                for name, e in (groups.get(group) or {}).items():
                    self._add_expression(info, name, [self._vrm1_bind(b) for b in e.get("morphTargetBinds") or []],
                                         e.get("materialColorBinds") or e.get("textureTransformBinds"))
            return info
        if "VRM" in ext:
            v = ext["VRM"] or {}
            head = next((b.get("node") for b in (v.get("humanoid") or {}).get("humanBones") or []
                         if b.get("bone") == "head"), None)
            info = VrmInfo("0.x", {}, head)
            for grp in (v.get("blendShapeMaster") or {}).get("blendShapeGroups") or []:
                preset = (grp.get("presetName") or "").strip()
                name = preset if preset and preset.lower() != "unknown" else (grp.get("name") or "").strip()
                if name:
                    binds = [x for b in grp.get("binds") or [] for x in self._vrm0_bind(b)]
                    self._add_expression(info, name, binds, grp.get("materialValues"))
            return info
        return None

    @staticmethod
    def _add_expression(info: "VrmInfo", name: str, binds: list, other_binds) -> None:
        # binds are (node, target, weight) or a string saying why the bind is broken; broken ones
        # are kept apart so that driving the expression fails loudly instead of dropping the mouth
        info.expressions[name] = [b for b in binds if not isinstance(b, str)]
        broken = [b for b in binds if isinstance(b, str)]
        if broken:
            info.broken[name] = broken
        elif not info.expressions[name] and other_binds:
            info.other_binds[name] = "material/texture binds only"

    def _bind_target(self, node: int, index) -> "tuple[int, int] | str":
        """(node, target) of a bind to a morph target of the mesh ``node`` places, or what is wrong."""
        mesh = self.gltf.nodes[node].mesh
        if mesh is None:
            label = " ".join(x for x in (f"#{node}", self.gltf.nodes[node].name) if x)
            return f"binds node {label}, which places no mesh"
        m = self.meshes[mesh]
        i = _as_index(index)
        if i is None or i >= m.n_targets:
            return f"binds morph target #{index} of {m.label}, which has only {m.n_targets} targets"
        return node, i

    def _vrm1_bind(self, b: dict) -> "tuple[int, int, float] | str":
        node = _as_index(b.get("node"))
        if node is None or node >= len(self.gltf.nodes):
            return f"binds node #{b.get('node')}, which does not exist (the file has {len(self.gltf.nodes)} nodes)"
        t = self._bind_target(node, b.get("index", 0))
        return t if isinstance(t, str) else (*t, float(b.get("weight", 1.0)))

    def _vrm0_bind(self, b: dict) -> "list[tuple[int, int, float] | str]":
        """A VRM 0.x bind names a mesh: one bind per node placing it; weights 0-100 become 0-1."""
        mesh = _as_index(b.get("mesh"))
        if mesh is None or mesh >= len(self.meshes):
            return [f"binds mesh #{b.get('mesh')}, which does not exist (the file has {len(self.meshes)} meshes)"]
        if not self.meshes[mesh].nodes:
            return [f"binds mesh #{mesh} {self.meshes[mesh].label}, which no node places"]
        out = []
        for node in self.meshes[mesh].nodes:
            t = self._bind_target(node, b.get("index", 0))
            out.append(t if isinstance(t, str) else (*t, float(b.get("weight", 100.0)) / 100.0))
        # every node places the same mesh, so a bad target index is bad for all of them: say it once
        return out[:1] if isinstance(out[0], str) else out

    @property
    def facing(self) -> str:
        return "-z" if self.vrm is not None and self.vrm.version == "0.x" else "+z"

    def parents(self) -> list[int | None]:
        par: list[int | None] = [None] * len(self.gltf.nodes)
        for i, n in enumerate(self.gltf.nodes):
            for c in n.children or []:
                if 0 <= c < len(par):
                    par[c] = i
        return par

    def local_matrix(self, i: int) -> np.ndarray:
        n = self.gltf.nodes[i]
        if n.matrix is not None and len(n.matrix) == 16:
            return np.asarray(n.matrix, np.float64).reshape(4, 4).T  # glTF stores column-major
        t = np.asarray(n.translation or [0, 0, 0], np.float64)
        r = np.asarray(n.rotation or [0, 0, 0, 1], np.float64)
        s = np.asarray(n.scale or [1, 1, 1], np.float64)
        m = np.eye(4)
        m[:3, :3] = quat_to_matrix(r) * s[None, :]
        m[:3, 3] = t
        return m

    def world_matrices(self) -> np.ndarray:
        """(nodes, 4, 4) rest-pose world transforms (row-major, column vectors)."""
        par = self.parents()
        out = np.zeros((len(self.gltf.nodes), 4, 4))
        done = [False] * len(out)

        def world(i: int, depth: int = 0) -> np.ndarray:
            if done[i]:
                return out[i]
            if depth > len(out):
                raise ModelError(f"{self.path}: the node hierarchy has a cycle at node #{i}")
            m = self.local_matrix(i)
            if par[i] is not None:
                m = world(par[i], depth + 1) @ m
            out[i], done[i] = m, True
            return m

        for i in range(len(out)):
            world(i)
        return out

    def mesh_instances(self) -> list[tuple[int, int, np.ndarray]]:
        """(node, mesh, world 4x4) for every node that places a mesh."""
        w = self.world_matrices()
        return [(n, node.mesh, w[n]) for n, node in enumerate(self.gltf.nodes) if node.mesh is not None]

    @cached_property
    def head_node(self) -> int | None:
        """`find_head_node` for the meshes the automatic rig match drives."""
        return self.find_head_node()

    def find_head_node(self, face_nodes: list[int] | None = None) -> int | None:
        """The node head rotation drives.

        The VRM humanoid head; else, with a skeleton, the skin joint with the best head-bone
        name (None without one); else, for a model without skeleton, the node holding the face:
        the head-named node, or the common parent of the face's meshes.  The face is
        ``face_nodes`` (the nodes whose meshes the animation drives; default: those the
        automatic rig match drives) plus the meshes that sit inside it (eyes, teeth), so they
        turn with it; a body beside it does not."""
        if self.vrm is not None and self.vrm.head_node is not None:
            return self.vrm.head_node
        joints = sorted({j for s in self.gltf.skins for j in (s.joints or []) if 0 <= j < len(self.gltf.nodes)})
        if joints:
            return _best_head_name(self.gltf.nodes, joints)
        parts = self._face_parts(face_nodes or self._face_nodes())
        named = _best_head_name(self.gltf.nodes, range(len(self.gltf.nodes)))
        if named is not None:
            # facecap.glb: "head" holds only the face mesh, the eyes and teeth are its siblings
            parts = [named] + [n for n in parts if named not in self.ancestors(n)]
        return _common_ancestor(parts, self.parents()) if parts else None

    def ancestors(self, node: int) -> list[int]:
        """``node`` and its parents up to the root."""
        return _chain(node, self.parents())

    def _face_nodes(self) -> list[int]:
        """Nodes whose meshes the automatic rig match drives; else every node placing morph targets."""
        try:
            return list(model_morph_weights(_still_animation(), self).weights)
        except (ModelError, rigs.RigError):
            return [n for m in self.meshes if m.n_targets for n in m.nodes] or \
                [n for n, node in enumerate(self.gltf.nodes) if node.mesh is not None]

    def _face_parts(self, face_nodes: list[int]) -> list[int]:
        """``face_nodes`` plus every other mesh node whose centre lies within their bounds."""
        world = self.world_matrices()
        boxes = [b for n in face_nodes if (b := self._world_bounds(n, world)) is not None]
        if not boxes:
            return list(face_nodes)
        lo, hi = np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)
        out = list(face_nodes)
        for n, node in enumerate(self.gltf.nodes):
            b = self._world_bounds(n, world) if node.mesh is not None and n not in out else None
            if b is not None and np.all((b[0] + b[1]) / 2 >= lo) and np.all((b[0] + b[1]) / 2 <= hi):
                out.append(n)
        return out

    def _world_bounds(self, node: int, world: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """World-space bounding box of the mesh ``node`` places, from the POSITION min/max (None without)."""
        corners = []
        for prim in self.meshes[self.gltf.nodes[node].mesh].primitives:
            i = prim.attributes.get("POSITION")
            acc = self.gltf.accessors[i] if i is not None and i < len(self.gltf.accessors) else None
            if acc is None or not acc.min or not acc.max or len(acc.min) != 3 or len(acc.max) != 3:
                continue
            box = np.array([acc.min, acc.max], np.float64)
            corners += [[box[a, 0], box[b, 1], box[c, 2]] for a in (0, 1) for b in (0, 1) for c in (0, 1)]
        if not corners:
            return None
        pts = np.c_[np.asarray(corners), np.ones(len(corners))] @ world[node].T
        return pts[:, :3].min(axis=0), pts[:, :3].max(axis=0)

    # -- materials ----------------------------------------------------------------
    def base_color(self, material: int | None) -> tuple[np.ndarray, int | None, int]:
        """(rgba factor, image index or None, texcoord set) of a material's base colour."""
        if material is None or material >= len(self.gltf.materials):
            return np.ones(4, np.float32), None, 0
        pbr = self.gltf.materials[material].pbrMetallicRoughness
        factor = np.asarray((pbr.baseColorFactor if pbr and pbr.baseColorFactor else [1, 1, 1, 1]), np.float32)
        tex = pbr.baseColorTexture if pbr else None
        if tex is None or tex.index is None or tex.index >= len(self.gltf.textures):
            return factor, None, 0
        t = self.gltf.textures[tex.index]
        src = t.source
        if src is None:  # KHR_texture_basisu / EXT_texture_webp keep the image in the extension
            for e in (t.extensions or {}).values():
                if isinstance(e, dict) and "source" in e:
                    src = e["source"]
        return factor, src, tex.texCoord or 0

    def image_bytes(self, i: int) -> tuple[bytes, str]:
        img = self.gltf.images[i]
        if img.bufferView is not None:
            return self.view_bytes(img.bufferView), img.mimeType or ""
        if img.uri is None:
            raise ModelError(f"{self.path}: image #{i} has neither uri nor bufferView")
        data = self._read_uri(img.uri, f"image #{i}")
        mime = img.mimeType or ("image/png" if img.uri.lower().endswith(".png") else
                                "image/jpeg" if img.uri.lower().endswith((".jpg", ".jpeg")) else "")
        return data, mime

    def base_color_image(self, material: int | None) -> np.ndarray | None:
        """Decoded base-colour texture, uint8 (h, w, 4); None without one or for formats
        Pillow cannot decode (KTX2/Basis)."""
        _, img, _ = self.base_color(material)
        if img is None:
            return None
        import io

        from PIL import Image, UnidentifiedImageError

        data, _ = self.image_bytes(img)
        try:
            return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))
        except (UnidentifiedImageError, OSError):
            return None


def quat_to_matrix(q) -> np.ndarray:
    x, y, z, w = np.asarray(q, np.float64) / max(1e-12, float(np.linalg.norm(q)))
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrix (3x3, no scale) -> quaternion (x, y, z, w)."""
    m = np.asarray(m, np.float64)
    tr = np.trace(m)
    if tr > 0:
        s = np.sqrt(tr + 1.0) * 2
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    q = np.asarray(q)
    return q / np.linalg.norm(q)


def _dequantize(arr: np.ndarray) -> np.ndarray:
    # glTF normalized integers: unsigned v/max, signed max(v/max, -1)
    info = np.iinfo(arr.dtype)
    out = arr.astype(np.float32) / float(info.max)
    return np.maximum(out, -1.0) if info.min < 0 else out


def _target_names(mesh, n: int) -> list[str | None]:
    """Morph target names from mesh.extras.targetNames (the de-facto convention), or the first
    primitive's extras, else None each."""
    for holder in [mesh] + list(mesh.primitives[:1]):
        extras = holder.extras if isinstance(holder.extras, dict) else {}
        names = extras.get("targetNames")
        if isinstance(names, list) and len(names) == n:
            return [str(x) if x not in (None, "") else None for x in names]
    return [None] * n


def _as_index(x) -> int | None:
    """A JSON index (3, or 3.0 as some exporters write it) as an int; None if it is no index."""
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    return x if isinstance(x, int) and not isinstance(x, bool) and x >= 0 else None


def _head_rank(name: str | None) -> int | None:
    """0 for a plain "head", 1 for another head-bone name, None for anything else."""
    n = rigs.normalize_name(name)
    if n == "head":
        return 0
    return 1 if _HEAD_NAME.search(n) and not n.endswith("forehead") else None


def _best_head_name(nodes, candidates) -> int | None:
    """The candidate node with the best head name (the first of equals), or None."""
    ranked = [(r, i) for i in candidates if (r := _head_rank(nodes[i].name)) is not None]
    return min(ranked)[1] if ranked else None


def _still_animation() -> Animation:
    """One frame of rest: enough to ask what an animation would drive."""
    return empty_animation(1, fps=30)


def _chain(node: int, parents: list[int | None]) -> list[int]:
    """``node`` and its parents up to the root (a cycle stops after every node)."""
    out = [node]
    while parents[out[-1]] is not None and len(out) <= len(parents):
        out.append(parents[out[-1]])
    return out


def _common_ancestor(nodes: list[int], parents: list[int | None]) -> int:
    chains = [_chain(n, parents) for n in nodes]
    common = set(chains[0]).intersection(*map(set, chains[1:]))
    return next((n for n in chains[0] if n in common), chains[0][-1])


# -- loading --------------------------------------------------------------------
def _parse_glb(data: bytes, source: str) -> tuple[dict, bytes | None]:
    import json

    if len(data) < 20:
        raise ModelError(f"{source}: truncated GLB ({len(data)} bytes)")
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    if version != 2:
        raise ModelError(f"{source}: GLB version {version}; only glTF 2.0 is supported")
    if length > len(data):
        raise ModelError(f"{source}: GLB header says {length} bytes, the file has {len(data)} (truncated)")
    off, js, bin_chunk = 12, None, None
    while off + 8 <= length:
        clen, ctype = struct.unpack_from("<II", data, off)
        chunk = data[off + 8: off + 8 + clen]
        if len(chunk) < clen:
            raise ModelError(f"{source}: GLB chunk at byte {off} runs past the end of the file (truncated)")
        if ctype == 0x4E4F534A:
            js = chunk
        elif ctype == 0x004E4942 and bin_chunk is None:
            bin_chunk = chunk
        off += 8 + clen
    if js is None:
        raise ModelError(f"{source}: GLB has no JSON chunk")
    try:
        return json.loads(js.decode("utf-8")), bin_chunk
    except (UnicodeDecodeError, ValueError) as e:
        raise ModelError(f"{source}: GLB JSON chunk is broken ({e})") from None


def load_model_bytes(data: bytes, name: str = "<model>", base_dir: Path | None = None) -> Model:
    """A Model from the bytes of a .glb/.vrm or a .gltf JSON text."""
    import json

    if data[:4] == b"glTF":
        doc, bin_chunk = _parse_glb(data, name)
        is_glb = True
    else:
        try:
            doc = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ModelError(f"{name}: neither a GLB nor glTF JSON ({e})") from None
        bin_chunk, is_glb = None, False
    if not isinstance(doc, dict) or not str((doc.get("asset") or {}).get("version", "")).startswith("2"):
        raise ModelError(f"{name}: not a glTF 2.0 file (asset.version is "
                         f"{(doc.get('asset') or {}).get('version') if isinstance(doc, dict) else None!r})")
    try:
        with warnings.catch_warnings():  # dataclasses_json warns about optional fields left out
            warnings.simplefilter("ignore")
            gltf = pygltflib.GLTF2.from_dict(doc)
    except Exception as e:  # pygltflib raises assorted types on malformed documents
        raise ModelError(f"{name}: malformed glTF document ({type(e).__name__}: {e})") from None
    return Model(gltf, name, base_dir, bin_chunk, is_glb, doc)


def load_model(path: str | Path) -> Model:
    """Parse a .gltf/.glb/.vrm file (buffers are read on demand); ModelError names the problem.

    >>> load_model("missing.glb")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ...
    toolkit.gltf_io.ModelError: missing.glb: cannot read model (No such file or directory)
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ModelError(f"{path}: cannot read model ({e.strerror})") from None
    return load_model_bytes(data, str(path), p.resolve().parent)


# -- weights for a model ------------------------------------------------------
@dataclass
class MorphDrive:
    """What an animation does to one model, per node that places a mesh with morph targets.

    ``weights[node]`` frames x targets (targets the animation does not move hold the mesh's
    default weight); ``driven[node]`` the target indices it moves; ``match`` the rig match;
    ``via`` a one-line summary; ``expression_weights`` VRM expression curves (VRM only);
    ``stepped`` whether keys should hold (2D mouth charts); ``warnings`` what the user should know
    (a VRM driven through its target names because its expressions move no mouth)."""

    weights: dict[int, np.ndarray]
    driven: dict[int, list[int]]
    match: "rigs.RigMatch | None"
    via: str
    expression_weights: dict[str, np.ndarray] = field(default_factory=dict)
    stepped: bool = False
    warnings: list[str] = field(default_factory=list)


def _union_names(model: Model) -> list[str | None]:
    seen: list[str | None] = []
    for m in model.meshes:
        for n in m.target_names:
            if n and n not in seen:
                seen.append(n)
    return seen


def _describe_found(model: Model) -> str:
    parts = []
    for m in model.meshes:
        if m.n_targets:
            named = [n for n in m.target_names if n]
            parts.append(f"{m.label}: {m.n_targets} targets" + (f" ({', '.join(named[:12])}"
                         + (" ..." if len(named) > 12 else "") + ")" if named else " (unnamed)"))
    if model.vrm:
        ex = [f"{k}{'' if v else ' (no morph binds)'}" for k, v in model.vrm.expressions.items()]
        parts.append(f"VRM {model.vrm.version} expressions: {', '.join(ex) or 'none'}")
    return "; ".join(parts) or "no morph targets and no expressions"


def model_morph_weights(anim: Animation, model: Model, profile=None) -> MorphDrive:
    """Weights that make ``model`` perform ``anim``, for every mesh that shares the face targets.

    VRM models go through their expressions (VRM 0.x blendShapeGroups or VRM 1.0
    expressions) and the expression binds; other models match target names against
    the rig profiles (or ``profile``: a name, JSON path or Profile); a VRM whose bound
    expressions move no mouth falls back to its target names (with a warning).  Raises
    ModelError listing what was found when nothing can move the mouth, and for a broken
    VRM bind of an expression the animation drives.
    """
    if not any(m.n_targets and m.nodes for m in model.meshes):
        raise ModelError(f"{model.path}: the model has no morph targets (blendshapes), so nothing can move its face; "
                         f"found {len(model.meshes)} mesh(es): "
                         f"{', '.join(m.label for m in model.meshes) or 'none'}")
    prof = rigs.load_profile(profile) if profile is not None else None
    errors = []
    if model.vrm is not None and (prof is None or prof.kind == model.vrm.kind):
        try:
            return _vrm_weights(anim, model, prof)
        except rigs.RigError as e:  # (a broken bind is a ModelError: reported, never worked around)
            errors.append(str(e))
    if prof is None or prof.kind == "morph":
        try:
            drive = _morph_name_weights(anim, model, prof)
        except rigs.RigError as e:
            errors.append(str(e))
        else:
            drive.warnings += [f"{e.rstrip('.')}. Driving the mesh target names instead." for e in errors]
            return drive
    elif not errors:
        errors.append(f"profile {prof.name!r} is for {prof.kind} expressions but the model is not "
                      f"{'a VRM' if model.vrm is None else 'VRM ' + model.vrm.version}")
    raise ModelError(f"{model.path}: cannot drive this model. Found {_describe_found(model)}. "
                     + " ".join(e.rstrip(".") + "." for e in errors))


def _morph_name_weights(anim: Animation, model: Model, prof) -> MorphDrive:
    union = _union_names(model)
    if prof is None:
        if not union:
            raise rigs.RigError("all morph targets are unnamed: give a rig file with 'targets_by_index'")
        prof = rigs.match_profile(union).profile
    weights, driven, matches = {}, {}, []
    for m in model.meshes:
        if not m.n_targets or not m.nodes:
            continue
        mm = rigs.match_one(prof, m.target_names)
        if not mm.n_matched:
            continue
        matches.append(mm)
        w = rigs.retarget(anim, m.target_names, mm)
        idx = [i for i, k in enumerate(mm.target_keys) if k]
        full = np.repeat(m.default_weights[None, :], anim.n_frames, axis=0)
        full[:, idx] = w[:, idx]
        for node in m.nodes:
            weights[node], driven[node] = full, idx
    if not weights:
        raise rigs.RigError(f"rig profile {prof.name!r} drives none of the model's morph targets")
    mouth = {k for m in matches for k in m.mouth_keys}
    if not mouth:  # only an explicit profile gets here: an automatic match needs a mouth target
        found = sorted({k for m in matches for k in m.target_keys if k})
        raise rigs.RigError(f"rig profile {prof.name!r} drives no mouth target (viseme, jaw, mouth or tongue "
                            f"shape), only {', '.join(found)}; map a mouth target in the rig file")
    n_meshes = len({model.gltf.nodes[n].mesh for n in weights})
    n = sum(len(driven[next(x for x in weights if model.gltf.nodes[x].mesh == mi)])
            for mi in {model.gltf.nodes[x].mesh for x in weights})
    return MorphDrive(weights, driven, rigs.match_one(prof, union if union else model.meshes[0].target_names),
                      f"morph target names -> profile {prof.name} ({n} targets on {n_meshes} mesh(es))",
                      stepped=prof.stepped)


def _vrm_weights(anim: Animation, model: Model, prof) -> MorphDrive:
    vrm = model.vrm
    bound = vrm.bound
    if not bound:
        raise rigs.RigError(f"VRM {vrm.version} expressions have no morph target binds "
                            f"({', '.join(vrm.expressions) or 'no expressions at all'})")
    # a VRM's expression names are standard: use the VRM profile even if only some presets are bound
    profiles = [prof] if prof is not None else None
    match = rigs.match_profile(bound, profiles=profiles, kind=vrm.kind, strict=False)
    if not match.mouth_keys:
        raise rigs.RigError(f"the VRM {vrm.version} expressions bound to morph targets ({', '.join(bound)}) move "
                            f"no mouth (profile {match.profile.name} needs one of "
                            f"{', '.join(k for k in match.profile.targets if match.profile.drives_mouth(k))})")
    used = [(j, name) for j, (name, key) in enumerate(zip(bound, match.target_keys)) if key]
    _check_binds(model, [name for _, name in used])
    ew = rigs.retarget(anim, bound, match)
    weights: dict[int, np.ndarray] = {}
    driven: dict[int, list[int]] = {}
    for j, name in used:
        for node, target, bw in vrm.expressions[name]:
            m = model.meshes[model.gltf.nodes[node].mesh]
            if node not in weights:
                weights[node] = np.repeat(m.default_weights[None, :], anim.n_frames, axis=0)
                driven[node] = []
            if target not in driven[node]:
                driven[node].append(target)
                weights[node][:, target] = m.default_weights[target]
            # VRM: a target's weight is the sum over expressions of expression weight x bind weight
            weights[node][:, target] += ew[:, j] * bw
    expr_w = {name: ew[:, j] for j, name in used}
    return MorphDrive(weights, driven, match, f"VRM {vrm.version} expressions -> profile {match.profile.name} "
                      f"({len(expr_w)} expressions: {', '.join(expr_w)})", expression_weights=expr_w,
                      stepped=match.profile.stepped)


def _check_binds(model: Model, names: list[str]) -> None:
    """A broken bind of an expression the animation drives is an error, not a silently still mouth."""
    bad = [f"VRM expression {n!r} {why}" for n in names for why in model.vrm.broken.get(n, [])]
    if bad:
        # a broken VRM is reported as such, not papered over by guessing from target names
        raise ModelError(f"{model.path}: {'; '.join(bad)} (broken bind); fix the VRM's expressions")


def check_model(path: str | Path, profile=None) -> Model:
    """Load a model and check everything an animated output needs: its buffers can be read and
    an animation can drive its mouth (with ``profile``, or the matched one).  Raises ModelError /
    RigError naming the file and the problem; cheap enough to call before any long work."""
    model = load_model(path)
    model.read_buffers()
    model_morph_weights(_still_animation(), model, profile)
    return model


# -- inspection ---------------------------------------------------------------
def _inspect_header(model: Model) -> list[str]:
    g = model.gltf
    lines = [f"{model.path}: glTF {g.asset.version}" + (f", VRM {model.vrm.version}" if model.vrm else "")
             + f", {len(model.meshes)} mesh(es), {len(g.nodes)} node(s), {len(g.skins)} skin(s), "
             f"{len(g.animations)} animation(s)"]
    if model.extensions_required:
        lines.append(f"extensions required: {', '.join(model.extensions_required)}")
    lines += [f"warning: {e}" for e in model.unreadable_images()]
    return lines


def _inspect_meshes(model: Model) -> list[str]:
    g, lines = model.gltf, []
    for m in model.meshes:
        nodes = ", ".join(f"#{n} {g.nodes[n].name or ''}".strip() for n in m.nodes) or "no node"
        lines.append(f"mesh #{m.index} {m.name or '(unnamed)'}: {len(m.primitives)} primitive(s), "
                     f"{m.n_targets} morph target(s), placed by {nodes}")
        for p in m.primitives:
            try:
                nv = g.accessors[p.attributes["POSITION"]].count
            except (KeyError, IndexError):
                nv = "?"
            lines.append(f"  primitive {p.index}: {nv} vertices, {len(p.targets)} targets, material {p.material}")
        if m.n_targets:
            names = [f"{i}:{n if n else '(unnamed)'}" for i, n in enumerate(m.target_names)]
            for k in range(0, len(names), 8):
                lines.append("    " + "  ".join(names[k:k + 8]))
    return lines


def _bind_label(model: Model, node: int, t: int, w: float) -> str:
    m = model.meshes[model.gltf.nodes[node].mesh]
    return f"node #{node} {m.label}[{t}:{m.target_names[t]}]*{w:g}" if m.target_names[t] else \
        f"node #{node} {m.label}[{t}]*{w:g}"


def _inspect_vrm(model: Model) -> list[str]:
    vrm = model.vrm
    lines = [f"VRM {vrm.version} expressions:"]
    for k, v in vrm.expressions.items():
        desc = [_bind_label(model, n, t, w) for n, t, w in v] + [f"BROKEN: {why}" for why in vrm.broken.get(k, [])]
        lines.append(f"  {k}: {', '.join(desc) or vrm.other_binds.get(k, 'no binds')}")
    return lines


def _inspect_rig(model: Model, prof) -> list[str]:
    """How the automatic match (or the profile ``prof``) maps the expressions or target names."""
    union = _union_names(model)
    lines = []
    if model.vrm and model.vrm.bound and (prof is None or prof.kind == model.vrm.kind):
        m = rigs.match_profile(model.vrm.bound, profiles=[prof] if prof else None, kind=model.vrm.kind,
                               strict=False)
        # the VRM presets are standard names: any bound mouth expression is used, whatever the score
        lines.append("rig (VRM expressions, used when a mouth expression is bound): "
                     + m.describe().replace(" (below threshold)", "").replace("\n", "\n  "))
    if prof is not None and prof.kind == "morph":
        for mesh in model.meshes:
            if mesh.n_targets:
                lines.append(f"rig {prof.name} ({prof.path or 'given'}) on {mesh.label}: "
                             + rigs.match_one(prof, mesh.target_names).describe().replace("\n", "\n  "))
    elif prof is None and union:
        m = rigs.match_profile(union, strict=False)
        lines.append(("rig (morph target names): " if m.ok else "no rig profile matches the target names; closest: ")
                     + m.describe().replace("\n", "\n  "))
        lines.append("profile scores: " + ", ".join(f"{n} {s:.0%}" for n, s in m.candidates))
    elif prof is None and any(m.n_targets for m in model.meshes) and not (model.vrm and model.vrm.bound):
        lines.append("all morph targets are unnamed: map them with a rig file using 'targets_by_index'")
    return lines


def _inspect_drive(model: Model, prof) -> list[str]:
    """What an animation would drive (or why it cannot) and the node head rotation would turn."""
    try:
        drive = model_morph_weights(_still_animation(), model, prof)
    except (ModelError, rigs.RigError) as e:
        lines, head = [f"cannot animate: {e}"], model.head_node
    else:
        lines = [f"animates: {drive.via}"] + [f"warning: {w}" for w in drive.warnings]
        head = model.find_head_node(list(drive.weights))
    name = model.gltf.nodes[head].name if head is not None else None
    return lines + ["head rotation node: " + (f"#{head} {name or ''}".strip() if head is not None
                                              else "none found (no head bone in the skeleton)")]


def inspect_model(path: str | Path, profile=None) -> str:
    """Human-readable report: meshes, primitives, every morph target, VRM expressions and binds,
    the rig profile that matches (or how ``profile`` maps), what it misses, what an animation
    would drive and the head node.  Raises ModelError for a model whose buffers cannot be read."""
    model = load_model(path)
    model.read_buffers()  # a missing or short .bin is an error, not a report of a model that cannot work
    prof = rigs.load_profile(profile) if profile is not None else None
    lines = _inspect_header(model) + _inspect_meshes(model)
    if model.vrm:
        lines += _inspect_vrm(model)
    return "\n".join(lines + _inspect_rig(model, prof) + _inspect_drive(model, prof))
