"""A strict reader of Godot 4's text resource grammar (.tres / .tscn), for the tests.

Follows Godot's ResourceFormatLoaderText (scene/resources/resource_format_text.cpp) and its
VariantParser: ``[tag key=value ...]`` headers, then ``key = value`` lines; values are numbers,
"strings", &"string names", true/false/null, constructors ``Name(args)`` (NodePath, Vector3,
PackedFloat32Array, SubResource...), ``[arrays]`` and ``{"dictionaries": ...}``, possibly over
several lines.  Anything else raises ValueError naming the line: a writer's slip fails the test.

>>> parse('[gd_resource type="Animation" format=3]\\n\\n[resource]\\nlength = 2.0\\n'
...       'tracks/0/path = NodePath("A:b")\\n')[1]
('resource', {}, {'length': 2.0, 'tracks/0/path': ('NodePath', ['A:b'])})
"""
from __future__ import annotations

import re

_TOKEN = re.compile(r'''
    (?P<ws>[ \t\r\n]+) |
    (?P<comment>;[^\n]*) |
    (?P<string>&?"(?:[^"\\]|\\.)*") |
    (?P<number>[-+]?(?:\d+\.?\d*(?:e[-+]?\d+)?|\.\d+(?:e[-+]?\d+)?|inf|nan)\b) |
    (?P<ident>[A-Za-z_][A-Za-z0-9_/]*) |
    (?P<punct>[\[\]{}(),:=])
''', re.X | re.I)

CONSTRUCTORS = {"NodePath", "Vector2", "Vector2i", "Vector3", "Vector3i", "Vector4", "Quaternion", "Color",
                "Transform3D", "Transform2D", "Basis", "AABB", "Rect2", "Plane", "StringName", "SubResource",
                "ExtResource", "PackedFloat32Array", "PackedFloat64Array", "PackedInt32Array", "PackedInt64Array",
                "PackedStringArray", "PackedVector2Array", "PackedVector3Array", "PackedColorArray",
                "PackedByteArray", "Array", "Dictionary", "Resource", "Object"}
HEADERS = {"gd_resource", "gd_scene", "ext_resource", "sub_resource", "resource", "node", "connection",
           "editable"}


def _tokens(text: str):
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"line {line}: unexpected {text[pos:pos + 20]!r}")
        kind = m.lastgroup
        if kind not in ("ws", "comment"):
            yield kind, m.group(), line
        line += m.group().count("\n")
        pos = m.end()


class _Parser:
    def __init__(self, text: str):
        self.toks = list(_tokens(text))
        self.i = 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else ("eof", "", -1)

    def take(self, value: str | None = None, kind: str | None = None):
        tok = self.peek()
        if (value is not None and tok[1] != value) or (kind is not None and tok[0] != kind):
            raise ValueError(f"line {tok[2]}: expected {value or kind}, found {tok[1]!r}")
        self.i += 1
        return tok

    def value(self):
        kind, text, line = self.peek()
        if kind == "string":
            self.i += 1
            return _unquote(text)
        if kind == "number":
            self.i += 1
            return float(text) if re.search(r"[.eEn]", text) else int(text)
        if text == "[":
            return self._list("[", "]")
        if text == "{":
            self.take("{")
            out = {}
            while self.peek()[1] != "}":
                k = self.value()
                self.take(":")
                out[k] = self.value()
                if self.peek()[1] == ",":
                    self.take(",")
            self.take("}")
            return out
        if kind == "ident":
            self.i += 1
            if text in ("true", "false"):
                return text == "true"
            if text == "null":
                return None
            if text not in CONSTRUCTORS:
                raise ValueError(f"line {line}: unknown value {text!r}")
            return text, self._list("(", ")")
        raise ValueError(f"line {line}: unexpected {text!r}")

    def _list(self, open_: str, close: str) -> list:
        self.take(open_)
        out = []
        while self.peek()[1] != close:
            out.append(self.value())
            if self.peek()[1] == ",":
                self.take(",")
            elif self.peek()[1] != close:
                raise ValueError(f"line {self.peek()[2]}: expected ',' or {close!r}, found {self.peek()[1]!r}")
        self.take(close)
        return out


def _unquote(s: str) -> str:
    s = s[1:] if s.startswith("&") else s
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), s[1:-1])


def parse(text: str) -> list[tuple[str, dict, dict]]:
    """The sections of a text resource: [(tag, header attributes, properties)], in file order."""
    p = _Parser(text)
    sections = []
    while p.peek()[0] != "eof":
        p.take("[")
        tag = p.take(kind="ident")[1]
        if tag not in HEADERS:
            raise ValueError(f"unknown section [{tag}]")
        attrs = {}
        while p.peek()[1] != "]":
            key = p.take(kind="ident")[1]
            p.take("=")
            attrs[key] = p.value()
        p.take("]")
        props = {}
        while p.peek()[1] not in ("[", "") and p.peek()[0] != "eof":
            key = p.take(kind="ident")[1]
            p.take("=")
            if key in props:
                raise ValueError(f"property {key!r} set twice in [{tag}]")
            props[key] = p.value()
        sections.append((tag, attrs, props))
    if not sections or sections[0][0] not in ("gd_resource", "gd_scene") or sections[0][1].get("format") != 3:
        raise ValueError("not a Godot 4 text resource (first section must be [gd_resource/gd_scene ... format=3])")
    return sections


# Floats per key of the tracks whose keys are a flat PackedFloat32Array (Godot's animation.cpp:
# POSITION_TRACK_SIZE, ROTATION_TRACK_SIZE, SCALE_TRACK_SIZE, BLEND_SHAPE_TRACK_SIZE)
KEY_SIZE = {"position_3d": 5, "rotation_3d": 6, "scale_3d": 5, "blend_shape": 3}


def animation_tracks(props: dict) -> list[dict]:
    """The tracks of an Animation's properties, checked as Animation::_set would: types, index order,
    key array sizes, times in order.  Each: {type, path, interp, ..., keys: [[time, transition, v...]]}."""
    tracks: dict[int, dict] = {}
    for key, value in props.items():
        m = re.fullmatch(r"tracks/(\d+)/(\w+)", key)
        if m:
            tracks.setdefault(int(m.group(1)), {})[m.group(2)] = value
        elif key not in ("resource_name", "length", "step", "loop_mode", "capture_included", "_compression"):
            raise ValueError(f"unknown Animation property {key!r}")
    if sorted(tracks) != list(range(len(tracks))):
        raise ValueError(f"track indices are not 0..n-1: {sorted(tracks)}")
    out = []
    for i in range(len(tracks)):
        t = tracks[i]
        kind = t.get("type")
        if kind not in KEY_SIZE and kind not in ("value", "method", "bezier", "audio", "animation"):
            raise ValueError(f"track {i}: unknown type {kind!r}")
        path = t.get("path")
        if not (isinstance(path, tuple) and path[0] == "NodePath" and len(path[1]) == 1):
            raise ValueError(f"track {i}: path is not a NodePath: {path!r}")
        if kind in KEY_SIZE:
            arr = t["keys"]
            if not (isinstance(arr, tuple) and arr[0] == "PackedFloat32Array"):
                raise ValueError(f"track {i}: {kind} keys must be a PackedFloat32Array")
            vals, size = arr[1], KEY_SIZE[kind]
            if len(vals) % size:
                raise ValueError(f"track {i}: {len(vals)} floats is not a whole number of {size}-float keys")
            t = dict(t, keys=[vals[k:k + size] for k in range(0, len(vals), size)])
            times = [k[0] for k in t["keys"]]
            if times != sorted(times):
                raise ValueError(f"track {i}: key times out of order")
        out.append(t)
    return out
