"""Reading glTF 2.0 models (.gltf, .glb, .vrm): the one place that parses a user's character.

Every other part (the writer, the renderer, the Blender exporter, `viseme rig inspect`)
reads models through this module.  It keeps pygltflib's document untouched (so a
writer can hand the model back unchanged) and decodes geometry on demand:
binary (GLB), embedded (data URI) and external buffers, sparse accessors,
normalized/quantized attributes (KHR_mesh_quantization) and
EXT_meshopt_compression (through the ``meshopt`` package).  Any other
*required* extension that changes how buffers are stored (e.g. Draco) is
refused with a message naming it when geometry is read.

    load_model(path) -> Model                 parse a .gltf/.glb/.vrm (ModelError on bad input)
    load_model_bytes(data, name) -> Model     the same from GLB bytes in memory

    Model.meshes[i]          MeshInfo: name, target_names (None = unnamed), default_weights, primitives, nodes
    MeshInfo.primitives[j]   Primitive: positions (n,3) float32, normals, texcoord(0), indices/triangles()
                             (uint32), target_deltas("POSITION"|"NORMAL") (targets, n, 3), material
    Model.accessor(i)        any accessor as a float/int numpy array (sparse, quantization, meshopt decoded)
    Model.world_matrices()   (nodes, 4, 4) rest world transforms;  Model.mesh_instances(): (node, mesh, 4x4)
    Model.base_color(mat)    (rgba factor, image index or None, texcoord set)
    Model.image_bytes(i)     (bytes, mime type);  Model.base_color_image(mat) -> uint8 (h, w, 4) or None
    Model.vrm                `toolkit.gltf.vrm.VrmInfo` or None
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
import json
import struct
import urllib.parse
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pygltflib

from toolkit.gltf.check import check_document
from toolkit.gltf.errors import ModelError
from toolkit.gltf.materials import surface
from toolkit.rotation import quat_to_matrix
from toolkit.gltf.vrm import read_vrm

_COMPONENT = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_NCOMP = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
# required extensions whose data this reader understands (the rest only change materials or
# are kept verbatim by the writer; those that change buffer storage are refused when read)
_GEOMETRY_EXTENSIONS_READ = {"KHR_mesh_quantization", "EXT_meshopt_compression"}
_GEOMETRY_EXTENSIONS_REFUSED = {"KHR_draco_mesh_compression", "EXT_mesh_gpu_instancing_compressed"}

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
            return np.arange(len(self.vertices()), dtype=np.uint32)
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
        n = len(self.vertices())
        out = np.zeros((len(self.targets), n, 3), np.float32)
        for t, tgt in enumerate(self.targets):
            if attribute in tgt:
                d = self.model.accessor(tgt[attribute]).astype(np.float32)
                if d.size != n * 3:
                    raise ModelError(f"{self.model.path}: mesh #{self.mesh} primitive {self.index}: morph target {t} "
                                     f"moves {d.size // 3} vertices, the primitive has {n}")
                out[t] = d.reshape(n, 3)
        return out

    def vertices(self) -> np.ndarray:
        """The positions, which a primitive that is drawn or morphed must have (ModelError without)."""
        pos = self.positions
        if pos is None or pos.ndim != 2 or pos.shape[1] != 3:
            raise ModelError(f"{self.model.path}: mesh #{self.mesh} primitive {self.index} has no "
                             f"{'POSITION attribute' if pos is None else 'VEC3 positions'}")
        return pos


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
        self.vrm = read_vrm(self)

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
            return self._accessor(i)
        except (ValueError, TypeError, OverflowError, MemoryError) as e:
            if isinstance(e, ModelError):
                raise
            raise ModelError(f"{self.path}: accessor #{i} is broken ({e})") from None

    def _accessor(self, i: int) -> np.ndarray:
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


    def ancestors(self, node: int) -> list[int]:
        """``node`` and its parents up to the root."""
        return chain(node, self.parents())


    # -- materials ----------------------------------------------------------------
    def base_color(self, material: int | None) -> tuple[np.ndarray, int | None, int]:
        """(rgba factor, image index or None, texcoord set) of a material's base colour
        (`toolkit.gltf.materials.surface` has the rest: texture transform, alpha, sides)."""
        s = surface(self, material)
        return s.color, s.image, s.texcoord

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
        return None if img is None else self.image_rgba(img)

    def image_rgba(self, i: int) -> np.ndarray | None:
        """Image ``i`` decoded, uint8 (h, w, 4) (PNG, JPEG, WebP...); None for formats Pillow cannot
        decode (KTX2/Basis); ModelError for an image whose bytes cannot be read."""
        import io

        from PIL import Image, UnidentifiedImageError

        data, _ = self.image_bytes(i)
        try:
            return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))
        except (UnidentifiedImageError, OSError):
            return None



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


def chain(node: int, parents: list[int | None]) -> list[int]:
    """``node`` and its parents up to the root (a cycle stops after every node)."""
    out = [node]
    while parents[out[-1]] is not None and len(out) <= len(parents):
        out.append(parents[out[-1]])
    return out



# -- loading --------------------------------------------------------------------
def _parse_glb(data: bytes, source: str) -> tuple[dict, bytes | None]:
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
        return _json(js.decode("utf-8")), bin_chunk
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ModelError(f"{source}: GLB JSON chunk is broken ({e})") from None


def _json(text: str):
    """JSON as the standard has it: NaN and Infinity (which Python would accept) are errors."""
    def constant(name):
        raise ValueError(f"{name} is not a JSON number")

    return json.loads(text, parse_constant=constant)


def load_model_bytes(data: bytes, name: str = "<model>", base_dir: Path | None = None) -> Model:
    """A Model from the bytes of a .glb/.vrm or a .gltf JSON text."""
    if data[:4] == b"glTF":
        doc, bin_chunk = _parse_glb(data, name)
        is_glb = True
    else:
        try:
            doc = _json(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise ModelError(f"{name}: neither a GLB nor glTF JSON ({e})") from None
        bin_chunk, is_glb = None, False
    check_document(doc, name)  # types, indices and enums of every field read below: one line, not a traceback
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
    toolkit.gltf.errors.ModelError: missing.glb: cannot read model (No such file or directory)
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ModelError(f"{path}: cannot read model ({e.strerror})") from None
    return load_model_bytes(data, str(path), p.resolve().parent)

