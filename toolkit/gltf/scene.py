"""Where a character's head is: the node head rotation turns, and the parts that turn with it.

The VRM humanoid head when the file has one; else, with a skeleton, the joint with
the best head-bone name (`toolkit.rigs.head_bone_rank`, the one table of head-bone
names); else, for a model without a skeleton, the node holding the face.

Example
-------
>>> from toolkit.gltf.read import load_model                         # doctest: +SKIP
>>> m = load_model("avatar.vrm")                                     # doctest: +SKIP
>>> find_head_node(m, face_nodes=[3])                                # doctest: +SKIP
41
"""
from __future__ import annotations

import numpy as np

from toolkit import rigs
from toolkit.gltf.read import chain


def find_head_node(model, face_nodes: list[int]) -> int | None:
    """The node head rotation drives in ``model`` (a `toolkit.gltf.read.Model`).

    The VRM humanoid head; else, with a skeleton, the skin joint with the best head-bone
    name (None without one); else, for a model without skeleton, the node holding the face:
    the head-named node, or the common parent of the face's meshes.  The face is
    ``face_nodes`` (the nodes whose meshes the animation drives) plus the meshes that sit
    inside it (eyes, teeth), so they turn with it; a body beside it does not."""
    nodes = model.gltf.nodes
    if model.vrm is not None and model.vrm.head_node is not None:
        return model.vrm.head_node
    joints = sorted({j for s in model.gltf.skins for j in (s.joints or []) if 0 <= j < len(nodes)})
    if joints:
        return _best_head_name(nodes, joints)
    parts = face_parts(model, face_nodes)
    named = _best_head_name(nodes, range(len(nodes)))
    if named is not None:
        # facecap.glb: "head" holds only the face mesh, the eyes and teeth are its siblings
        parts = [named] + [n for n in parts if named not in model.ancestors(n)]
    return _common_ancestor(parts, model.parents()) if parts else None


def face_parts(model, face_nodes: list[int]) -> list[int]:
    """``face_nodes`` plus every other mesh node whose centre lies within their bounds."""
    world = model.world_matrices()
    boxes = [b for n in face_nodes if (b := world_bounds(model, n, world)) is not None]
    if not boxes:
        return list(face_nodes)
    lo, hi = np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)
    out = list(face_nodes)
    for n, node in enumerate(model.gltf.nodes):
        b = world_bounds(model, n, world) if node.mesh is not None and n not in out else None
        if b is not None and np.all((b[0] + b[1]) / 2 >= lo) and np.all((b[0] + b[1]) / 2 <= hi):
            out.append(n)
    return out


def world_bounds(model, node: int, world: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """World-space bounding box of the mesh ``node`` places, from the POSITION min/max (None without)."""
    corners = []
    for prim in model.meshes[model.gltf.nodes[node].mesh].primitives:
        i = prim.attributes.get("POSITION")
        acc = model.gltf.accessors[i] if i is not None and i < len(model.gltf.accessors) else None
        if acc is None or not acc.min or not acc.max or len(acc.min) != 3 or len(acc.max) != 3:
            continue
        box = np.array([acc.min, acc.max], np.float64)
        corners += [[box[a, 0], box[b, 1], box[c, 2]] for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    if not corners:
        return None
    pts = np.c_[np.asarray(corners), np.ones(len(corners))] @ world[node].T
    return pts[:, :3].min(axis=0), pts[:, :3].max(axis=0)


def _best_head_name(nodes, candidates) -> int | None:
    """The candidate node with the best head name (the first of equals), or None."""
    ranked = [(r, i) for i in candidates if (r := rigs.head_bone_rank(nodes[i].name)) is not None]
    return min(ranked)[1] if ranked else None


def _common_ancestor(nodes: list[int], parents: list[int | None]) -> int:
    chains = [chain(n, parents) for n in nodes]
    common = set(chains[0]).intersection(*map(set, chains[1:]))
    return next((n for n in chains[0] if n in common), chains[0][-1])


def turning_with(model, node: int) -> set[int]:
    """``node`` and every node below it: what turns when it turns (the head bone's subtree: the head,
    its eyes, jaw, hair bones and anything parented to them)."""
    out, stack = set(), [node]
    nodes = model.gltf.nodes
    while stack:
        n = stack.pop()
        if n in out or not 0 <= n < len(nodes):
            continue
        out.add(n)
        stack.extend(nodes[n].children or [])
    return out
