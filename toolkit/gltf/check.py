"""The shape of a glTF document, checked before anything reads it.

`check_document` walks the JSON of a .gltf/.glb/.vrm against `SCHEMA`: every field the
toolkit reads (the reader, the VRM expressions, the head finder, the writer, the renderer)
must have the right type, every index must point at something that exists, and enums
must hold a value glTF defines.  A broken file is then one `ModelError` naming the file,
the field and what is wrong (``nodes[3].mesh is 7, but the file has 2 meshes``), never
a traceback from deep inside a consumer.  Fields nobody reads are not checked (a writer
hands them back unchanged).  Whole-number floats (``3.0``, as some exporters write
indices) are turned into ints in place.

What needs the buffers (byte ranges, sparse indices) is checked when they are read
(`toolkit.gltf.read`); VRM expression binds that point nowhere are kept apart by
`toolkit.gltf.vrm` and refused when an animation drives them.

Example
-------
>>> check_document({"asset": {"version": "2.0"}, "nodes": [{"mesh": 0}]}, "a.gltf")
Traceback (most recent call last):
...
toolkit.gltf.errors.ModelError: a.gltf: malformed glTF: nodes[0].mesh is 0, but the file has no meshes
"""
from __future__ import annotations

import math

from toolkit.gltf.errors import ModelError

COMPONENT_TYPES = (5120, 5121, 5122, 5123, 5125, 5126)
ACCESSOR_TYPES = ("SCALAR", "VEC2", "VEC3", "VEC4", "MAT2", "MAT3", "MAT4")

# Field specs: "int" (whole number >= 0), "num" (finite), "str", "bool", "obj" (any object),
# "any"; "@name" an index into the top-level array ``name``; "num*N" N numbers; [spec] a list of
# them; {field: spec} an object ("*" stands for any key); a trailing "!" on a spec or on a field's
# name marks a required field.
_TEXTURE_INFO = {"index": "@textures!", "texCoord": "int", "extensions": {
    "*": "obj", "KHR_texture_transform": {"offset": "num*2", "scale": "num*2", "rotation": "num", "texCoord": "int"}}}
_BINDS_1 = [{"node": "any", "index": "any", "weight": "num"}]   # broken binds: see toolkit.gltf.vrm
_EXPRESSION_1 = {"morphTargetBinds": _BINDS_1, "materialColorBinds": ["obj"], "textureTransformBinds": ["obj"]}

SCHEMA: dict = {
    "asset": {"version": "str!"},
    "scene": "@scenes",
    "extensionsUsed": ["str"],
    "extensionsRequired": ["str"],
    "buffers": [{"byteLength": "int!", "uri": "str", "extensions": {
        "EXT_meshopt_compression": {"fallback": "bool"}}}],
    "bufferViews": [{"buffer": "@buffers!", "byteOffset": "int", "byteLength": "int!", "byteStride": "int",
                     "target": "int", "extensions": {"EXT_meshopt_compression": {
                         "buffer": "@buffers!", "byteOffset": "int", "byteLength": "int!", "byteStride": "int!",
                         "count": "int!", "mode": "str!", "filter": "str"}}}],
    "accessors": [{"bufferView": "@bufferViews", "byteOffset": "int", "componentType": "int!", "normalized": "bool",
                   "count": "int!", "type": "str!", "min": ["num"], "max": ["num"],
                   "sparse": {"count": "int!", "indices!": {"bufferView": "@bufferViews!", "byteOffset": "int",
                                                           "componentType": "int!"},
                              "values!": {"bufferView": "@bufferViews!", "byteOffset": "int"}}}],
    "meshes": [{"name": "str", "weights": ["num"], "extras": "any",
                "primitives": [{"attributes!": {"*": "@accessors"}, "indices": "@accessors", "material": "@materials",
                                "mode": "int", "targets": [{"*": "@accessors"}], "extras": "any"}]}],
    "nodes": [{"name": "str", "children": ["@nodes"], "mesh": "@meshes", "skin": "@skins", "camera": "@cameras",
               "matrix": "num*16", "rotation": "num*4", "translation": "num*3", "scale": "num*3",
               "weights": ["num"]}],
    "scenes": [{"nodes": ["@nodes"]}],
    "skins": [{"joints": ["@nodes"], "inverseBindMatrices": "@accessors", "skeleton": "@nodes"}],
    "images": [{"uri": "str", "bufferView": "@bufferViews", "mimeType": "str"}],
    "textures": [{"source": "@images", "sampler": "@samplers", "extensions": {"*": {"source": "@images"}}}],
    "materials": [{"name": "str", "pbrMetallicRoughness": {"baseColorFactor": "num*4", "baseColorTexture": _TEXTURE_INFO},
                   "doubleSided": "bool", "alphaMode": "str", "alphaCutoff": "num", "extensions": {"*": "obj"}}],
    "animations": [{"name": "str", "channels": [{"sampler": "int!", "target!": {"node": "@nodes", "path": "str!"}}],
                    "samplers": [{"input": "@accessors!", "output": "@accessors!", "interpolation": "str"}]}],
    "samplers": [{"wrapS": "int", "wrapT": "int", "magFilter": "int", "minFilter": "int"}],
    "cameras": ["obj"],
    "extensions": {
        "VRMC_vrm": {"humanoid": {"humanBones": {"*": {"node": "@nodes!"}}},
                     "expressions": {"preset": {"*": _EXPRESSION_1}, "custom": {"*": _EXPRESSION_1}}},
        "VRM": {"humanoid": {"humanBones": [{"bone": "str", "node": "@nodes"}]},
                "materialProperties": [{"name": "str", "shader": "str", "floatProperties": {"*": "num"},
                                        "vectorProperties": {"*": ["num"]}, "tagMap": {"*": "str"}}],
                "blendShapeMaster": {"blendShapeGroups": [{
                    "name": "str", "presetName": "str", "materialValues": ["obj"],
                    "binds": [{"mesh": "any", "index": "any", "weight": "num"}]}]}},
    },
}

# Values glTF defines for a field (checked after the types).
_ENUMS = {
    ("accessors", "componentType"): COMPONENT_TYPES,
    ("accessors", "type"): ACCESSOR_TYPES,
    ("indices", "componentType"): (5121, 5123, 5125),
    ("primitives", "mode"): tuple(range(7)),
    ("EXT_meshopt_compression", "mode"): ("ATTRIBUTES", "TRIANGLES", "INDICES"),
    ("EXT_meshopt_compression", "filter"): ("NONE", "OCTAHEDRAL", "QUATERNION", "EXPONENTIAL"),
}
_STRIDE = (4, 252)  # bufferView.byteStride, bytes
# The accessor types glTF allows for each vertex attribute (name prefix for the numbered ones).
_ATTRIBUTE_TYPES = {"POSITION": ("VEC3",), "NORMAL": ("VEC3",), "TANGENT": ("VEC4", "VEC3"), "TEXCOORD_": ("VEC2",),
                    "COLOR_": ("VEC3", "VEC4"), "JOINTS_": ("VEC4",), "WEIGHTS_": ("VEC4",)}
_INDEX_COMPONENTS = (5121, 5123, 5125)


def check_document(doc, name: str) -> dict:
    """Check ``doc`` (a parsed glTF JSON) against `SCHEMA`; returns it (whole-number floats made ints).

    Raises `ModelError` "``name``: malformed glTF: <field> ..." at the first problem."""
    if not isinstance(doc, dict):
        raise ModelError(f"{name}: malformed glTF: the document is {_kind(doc)}, not a JSON object")
    asset = doc.get("asset")
    if not isinstance(asset, dict) or not str(asset.get("version", "")).startswith("2"):
        version = asset.get("version") if isinstance(asset, dict) else None
        raise ModelError(f"{name}: not a glTF 2.0 file (asset.version is {version!r})")
    _Checker(doc, name).object(doc, SCHEMA, "", "")
    _check_animation_samplers(doc, name)
    _check_vertex_accessors(doc, name)
    return doc


class _Checker:
    def __init__(self, doc: dict, name: str):
        self.doc, self.name = doc, name

    def fail(self, where: str, what: str):
        raise ModelError(f"{self.name}: malformed glTF: {where} {what}")

    def object(self, value, spec: dict, where: str, key: str) -> None:
        if not isinstance(value, dict):
            self.fail(where or "the document", f"is {_kind(value)}, not an object")
        for field, sub in spec.items():
            if field == "*":
                for k in list(value):
                    self.value(value, k, sub, where, key)
                continue
            required = field.endswith("!") or (isinstance(sub, str) and sub.endswith("!"))
            field = field.rstrip("!")
            if field not in value:
                if required:
                    self.fail(f"{where}.{field}".lstrip("."), "is missing")
                continue
            self.value(value, field, sub.rstrip("!") if isinstance(sub, str) else sub, where, key)

    def value(self, holder, field, spec, where: str, parent: str) -> None:
        at = f"{where}.{field}".lstrip(".") if isinstance(field, str) else f"{where}[{field}]"
        v = holder[field]
        if isinstance(spec, dict):
            self.object(v, spec, at, field if isinstance(field, str) else parent)
        elif isinstance(spec, list):
            if not isinstance(v, list):
                self.fail(at, f"is {_kind(v)}, not a list")
            for i in range(len(v)):
                self.value(v, i, spec[0], at, field if isinstance(field, str) else parent)
        else:
            self.leaf(holder, field, spec.rstrip("!"), at, parent)
            if isinstance(field, str):
                self.enum(holder[field], field, parent, at)

    def leaf(self, holder, field, spec: str, at: str, parent: str) -> None:
        v = holder[field]
        if spec == "any":
            return
        if spec in ("int",) or spec.startswith("@"):
            if isinstance(v, float) and v.is_integer():
                v = holder[field] = int(v)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                self.fail(at, f"is {_shown(v)}, not {'an index' if spec.startswith('@') else 'a whole number >= 0'}")
            if spec.startswith("@"):
                coll = spec[1:]
                n = len(self.doc.get(coll) or []) if isinstance(self.doc.get(coll), list) else 0
                if v >= n:
                    self.fail(at, f"is {v}, but the file has {n if n else 'no'} {coll}")
            if field == "byteStride" and parent != "EXT_meshopt_compression" and not _STRIDE[0] <= v <= _STRIDE[1]:
                self.fail(at, f"is {v}; glTF allows {_STRIDE[0]} to {_STRIDE[1]} bytes")
        elif spec == "num":
            if not _finite(v):
                self.fail(at, f"is {_shown(v)}, not a finite number")
        elif spec.startswith("num*"):
            n = int(spec[4:])
            if not isinstance(v, list) or len(v) != n or not all(_finite(x) for x in v):
                self.fail(at, f"is {_shown(v)}, not {n} finite numbers")
        elif spec == "str":
            if not isinstance(v, str):
                self.fail(at, f"is {_shown(v)}, not a string")
        elif spec == "bool":
            if not isinstance(v, bool):
                self.fail(at, f"is {_shown(v)}, not true or false")
        elif spec == "obj":
            if not isinstance(v, dict):
                self.fail(at, f"is {_kind(v)}, not an object")

    def enum(self, v, field: str, parent: str, at: str) -> None:
        allowed = _ENUMS.get((parent, field))
        if allowed is not None and v not in allowed:
            self.fail(at, f"is {_shown(v)}; glTF allows {', '.join(map(str, allowed))}")


def _check_animation_samplers(doc: dict, name: str) -> None:
    """A channel's sampler indexes its own animation's samplers (no top-level array)."""
    for a, anim in enumerate(doc.get("animations") or []):
        n = len(anim.get("samplers") or [])
        for c, ch in enumerate(anim.get("channels") or []):
            if ch["sampler"] >= n:
                raise ModelError(f"{name}: malformed glTF: animations[{a}].channels[{c}].sampler is {ch['sampler']}, "
                                 f"but the animation has {n} samplers")


def _check_vertex_accessors(doc: dict, name: str) -> None:
    """Vertex attributes and morph targets point at accessors of their type (POSITION at a VEC3...),
    indices at unsigned integer scalars: what the renderer and the writer take them for."""
    acc = doc.get("accessors") or []
    for m, mesh in enumerate(doc.get("meshes") or []):
        for p, prim in enumerate(mesh.get("primitives") or []):
            where = f"meshes[{m}].primitives[{p}]"
            attrs = [(f"{where}.attributes.{k}", k, i) for k, i in prim["attributes"].items()]
            attrs += [(f"{where}.targets[{t}].{k}", k, i) for t, tg in enumerate(prim.get("targets") or [])
                      for k, i in tg.items()]
            for at, key, i in attrs:
                allowed = next((v for k, v in _ATTRIBUTE_TYPES.items() if key == k or (k.endswith("_") and
                                                                                      key.startswith(k))), None)
                if allowed and acc[i]["type"] not in allowed:
                    raise ModelError(f"{name}: malformed glTF: {at} is accessor {i}, a {acc[i]['type']}; "
                                     f"{key} needs {' or '.join(allowed)}")
            counts = {acc[i]["count"] for _, _, i in attrs}
            if len(counts) > 1:   # glTF: one count for every attribute and morph target of a primitive
                raise ModelError(f"{name}: malformed glTF: {where}: its attributes and morph targets have "
                                 f"different vertex counts ({', '.join(map(str, sorted(counts)))})")
            i = prim.get("indices")
            if i is not None and (acc[i]["type"] != "SCALAR" or acc[i]["componentType"] not in _INDEX_COMPONENTS):
                raise ModelError(f"{name}: malformed glTF: {where}.indices is accessor {i}, which holds no "
                                 "unsigned integer scalars")
    for k, skin in enumerate(doc.get("skins") or []):
        i = skin.get("inverseBindMatrices")
        if i is not None and acc[i]["type"] != "MAT4":
            raise ModelError(f"{name}: malformed glTF: skins[{k}].inverseBindMatrices is accessor {i}, a "
                             f"{acc[i]['type']}; it needs MAT4")


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _kind(v) -> str:
    return {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(v), type(v).__name__)


def _shown(v) -> str:
    text = repr(v) if not isinstance(v, (dict, list)) else _kind(v)
    return "null" if v is None else text if len(text) <= 40 else text[:37] + "..."
