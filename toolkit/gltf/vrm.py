"""VRM 0.x and 1.0 expressions, resolved to the morph targets they bind.

A VRM character says which morph targets make each expression (``aa``, ``blink``...):
VRM 1.0 in ``VRMC_vrm.expressions`` (binds name a node), VRM 0.x in
``VRM.blendShapeMaster.blendShapeGroups`` (binds name a mesh, weights 0-100).
`read_vrm` turns both into one `VrmInfo`, keeping binds that point nowhere apart
(``broken``) so driving them fails loudly instead of leaving the mouth still.

Example
-------
>>> from toolkit.gltf.read import load_model                       # doctest: +SKIP
>>> load_model("avatar.vrm").vrm.expressions["aa"]                 # doctest: +SKIP
[(3, 12, 1.0)]
"""
from __future__ import annotations

from dataclasses import dataclass, field


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


def read_vrm(model) -> VrmInfo | None:
    """VRM 1.0 (VRMC_vrm) or 0.x (VRM) expressions of a `toolkit.gltf.read.Model` with their binds
    checked; None for plain glTF."""
    ext = model.gltf.extensions or {}
    if "VRMC_vrm" in ext:
        v = ext["VRMC_vrm"] or {}
        info = VrmInfo("1.0", {}, ((v.get("humanoid") or {}).get("humanBones") or {}).get("head", {}).get("node"))
        groups = (v.get("expressions") or {})
        for group in ("preset", "custom"):
            for name, e in (groups.get(group) or {}).items():
                _add_expression(info, name, [_vrm1_bind(model, b) for b in e.get("morphTargetBinds") or []],
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
                binds = [x for b in grp.get("binds") or [] for x in _vrm0_bind(model, b)]
                _add_expression(info, name, binds, grp.get("materialValues"))
        return info
    return None


def _add_expression(info: VrmInfo, name: str, binds: list, other_binds) -> None:
    # binds are (node, target, weight) or a string saying why the bind is broken; broken ones
    # are kept apart so that driving the expression fails loudly instead of dropping the mouth
    info.expressions[name] = [b for b in binds if not isinstance(b, str)]
    broken = [b for b in binds if isinstance(b, str)]
    if broken:
        info.broken[name] = broken
    elif not info.expressions[name] and other_binds:
        info.other_binds[name] = "material/texture binds only"


def _bind_target(model, node: int, index) -> "tuple[int, int] | str":
    """(node, target) of a bind to a morph target of the mesh ``node`` places, or what is wrong."""
    mesh = model.gltf.nodes[node].mesh
    if mesh is None:
        label = " ".join(x for x in (f"#{node}", model.gltf.nodes[node].name) if x)
        return f"binds node {label}, which places no mesh"
    m = model.meshes[mesh]
    i = as_index(index)
    if i is None or i >= m.n_targets:
        return f"binds morph target #{index} of {m.label}, which has only {m.n_targets} targets"
    return node, i


def _vrm1_bind(model, b: dict) -> "tuple[int, int, float] | str":
    node = as_index(b.get("node"))
    if node is None or node >= len(model.gltf.nodes):
        return f"binds node #{b.get('node')}, which does not exist (the file has {len(model.gltf.nodes)} nodes)"
    t = _bind_target(model, node, b.get("index", 0))
    return t if isinstance(t, str) else (*t, float(b.get("weight", 1.0)))


def _vrm0_bind(model, b: dict) -> "list[tuple[int, int, float] | str]":
    """A VRM 0.x bind names a mesh: one bind per node placing it; weights 0-100 become 0-1."""
    mesh = as_index(b.get("mesh"))
    if mesh is None or mesh >= len(model.meshes):
        return [f"binds mesh #{b.get('mesh')}, which does not exist (the file has {len(model.meshes)} meshes)"]
    if not model.meshes[mesh].nodes:
        return [f"binds mesh #{mesh} {model.meshes[mesh].label}, which no node places"]
    out = []
    for node in model.meshes[mesh].nodes:
        t = _bind_target(model, node, b.get("index", 0))
        out.append(t if isinstance(t, str) else (*t, float(b.get("weight", 100.0)) / 100.0))
    # every node places the same mesh, so a bad target index is bad for all of them: say it once
    return out[:1] if isinstance(out[0], str) else out


def as_index(x) -> int | None:
    """A JSON index (3, or 3.0 as some exporters write it) as an int; None if it is no index.

    >>> as_index(3.0), as_index(-1), as_index(True)
    (3, None, None)
    """
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    return x if isinstance(x, int) and not isinstance(x, bool) and x >= 0 else None
